// Large temporaries kept between calls, one slot per use: the float32 copy of
// float64 A (svd.cpp) and the per-chunk sums of the large products (chunk_sums.hpp).
//
// The kernel zeroes every new page, which took 6-8 ms of CPU time in a 40 ms float64
// randomized_svd of 3000 x 2000. So each use keeps one released buffer of at most
// 256 MiB for the next call that needs no more than it holds and at least half of it
// (repeated calls on same-sized inputs, the common case); it is freed when a larger
// one replaces it, or at exit. (OpenBLAS keeps its GEMM buffers likewise.)
//
// Buffers sit on 2 MiB boundaries but do not ask for transparent huge pages: in
// madvise mode the kernel then assembles huge pages on the first touch, compacting
// memory as it goes, and on a machine whose memory is full of page cache that made
// first calls slow (a fresh 400 MB buffer: 0.83 s to touch in huge pages, 0.14 s in
// 4 KiB pages). Without the advice, first calls of float64 randomized_svd: 10000 x
// 3000, 0.32-0.43 -> 0.20-0.28 s; 20000 x 5000 (its 400 MB copy past the 256 MiB
// kept), 1.7-2.0 -> 1.16-1.6 s; later calls of 10000 x 3000 unchanged (0.16-0.18
// s: the buffer is kept), of 20000 x 5000 1.0-1.17 -> 1.15-1.30 s (it is not, and
// 4 KiB pages fault in more slowly than huge pages the previous call freed).
#pragma once

#include <cstddef>
#include <cstdint>

namespace lowrank {

enum class KeptUse { float32_copy, chunk_sums };

// A buffer of at least `bytes`: the kept one when it fits, else a new one; its size
// (a multiple of 2 MiB) in *capacity; nullptr when the memory cannot be had.
// Thread-safe.
void* take_kept_buffer(KeptUse use, std::size_t bytes, std::size_t* capacity);
// Gives a buffer from take_kept_buffer back: kept if it is larger than the one kept.
void give_kept_buffer(KeptUse use, void* data, std::size_t capacity);

// Uninitialised storage for `count` values of T from take_kept_buffer, given back on
// destruction. Empty (data() == nullptr) for no values or when the memory cannot be
// had.
template <class T>
class KeptBuffer {
  public:
    KeptBuffer(KeptUse use, std::ptrdiff_t count) : use_(use) {
        if (count <= 0) return;
        const double bytes = double(count) * double(sizeof(T));
        if (bytes > double(PTRDIFF_MAX / 2)) return;
        data_ = static_cast<T*>(take_kept_buffer(use, std::size_t(bytes), &capacity_));
    }
    ~KeptBuffer() {
        if (data_) give_kept_buffer(use_, data_, capacity_);
    }
    KeptBuffer(const KeptBuffer&) = delete;
    KeptBuffer& operator=(const KeptBuffer&) = delete;
    T* data() { return data_; }

  private:
    KeptUse use_;
    std::size_t capacity_ = 0;
    T* data_ = nullptr;
};

}  // namespace lowrank
