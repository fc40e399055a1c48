// Large temporaries kept between calls, one slot per use: the float32 copy of
// float64 A (svd/mixed_precision.hpp) and the per-chunk sums of the large products
// (chunk_sums.hpp).
//
// The kernel zeroes every new page, a visible part of a float64 randomized_svd's
// time. So each use keeps one released buffer of at most
// 256 MiB for the next call that needs no more than it holds and at least half of it
// (repeated calls on same-sized inputs, the common case); it is freed when a larger
// one replaces it, or at exit. (OpenBLAS keeps its GEMM buffers likewise.)
//
// Buffers sit on 2 MiB boundaries but do not ask for transparent huge pages: in
// madvise mode the kernel then assembles huge pages on the first touch, compacting
// memory as it goes, and on a machine whose memory is full of page cache that made
// first calls several times slower; later calls whose buffer is kept do not touch
// new pages at all (docs/benchmarks-history.md, "Randomized SVD: per-call costs,
// threads and memory", "Huge pages and first calls").
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
