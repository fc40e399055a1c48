// Storage for the sums of a chunked product (parallel.hpp, run_chunks): one array
// of `count` values per chunk, which the chunk's thread fills and the caller then
// adds up in the chunks' order.
//
// When a product has more chunks than threads (the large products: chunk_count), the
// arrays lie one after another in a buffer kept between calls, process-wide: fresh
// pages for them each call cost about what balancing the threads won
// (docs/benchmarks-history.md, "Randomized SVD: per-call costs, threads and
// memory", "Chunks for a slow core"). Else
// (a chunk per thread) they lie likewise in one allocation of this call's, left
// uninitialised unless a chunk asks for zeros (the AMX product writes its sums whole;
// tests pass with fresh arrays filled with NaN): zeroing them would be work for
// nothing.
#pragma once

#include <algorithm>
#include <cstddef>
#include <new>

#include "lowrank/common/matrix.hpp"
#include "lowrank/runtime/kept_buffer.hpp"

namespace lowrank {

template <class T>
class ChunkSums {
  public:
    ChunkSums(int chunks, index count, bool kept) : count_(count) {
        const std::size_t n = static_cast<std::size_t>(chunks) * static_cast<std::size_t>(count);
        if (n == 0) return;
        if (kept) {
            data_ = static_cast<T*>(take_kept_buffer(KeptUse::chunk_sums, n * sizeof(T), &capacity_));
            if (!data_) throw std::bad_alloc();
        } else {
            data_ = CacheAligned<T>().allocate(n);
            owned_ = n;
        }
    }
    ~ChunkSums() {
        if (owned_) {
            CacheAligned<T>().deallocate(data_, owned_);
        } else if (data_) {
            give_kept_buffer(KeptUse::chunk_sums, data_, capacity_);
        }
    }
    ChunkSums(const ChunkSums&) = delete;
    ChunkSums& operator=(const ChunkSums&) = delete;

    // Chunk c's array for its thread to fill: uninitialised, or set to zero.
    T* get(int c, bool zeroed) {
        T* out = at(c);
        if (zeroed) std::fill(out, out + count_, T(0));
        return out;
    }

    // Chunk c's array, once filled.
    T* at(int c) { return data_ + static_cast<std::size_t>(c) * static_cast<std::size_t>(count_); }
    const T* at(int c) const { return const_cast<ChunkSums*>(this)->at(c); }

  private:
    index count_;
    std::size_t capacity_ = 0;  // of the kept buffer
    std::size_t owned_ = 0;     // values allocated here (not kept)
    T* data_ = nullptr;
};

}  // namespace lowrank
