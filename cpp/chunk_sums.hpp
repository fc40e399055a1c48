// Storage for the sums of a chunked product (parallel.hpp, run_chunks): one array
// of `count` values per chunk, which the chunk's thread fills and the caller then
// adds up in the chunks' order.
//
// When a product has more chunks than threads (the large products: chunk_count), the
// arrays lie one after another in a buffer kept between calls, process-wide: fresh
// pages for them each call (8 x 1.3 MB at 10000 x 3000, l = 110) cost about what
// balancing the threads won. Measured on 2 cores, the AMX product there, in the
// machine's quick spells: fixed halves 24.5-25.6 ms at best, chunks with fresh
// arrays 30-36 ms (medians), chunks with the kept buffer 24.2-25.8 ms at best. Else
// (a chunk per thread) each array is a vector of its own, as the per-thread sums
// were before chunks: small products keep their allocations as they were.
#pragma once

#include <algorithm>
#include <cstddef>
#include <new>
#include <vector>

#include "kept_buffer.hpp"
#include "matrix.hpp"

namespace lowrank {

template <class T>
class ChunkSums {
  public:
    ChunkSums(int chunks, index count, bool kept) : count_(count) {
        const std::size_t n = static_cast<std::size_t>(chunks) * static_cast<std::size_t>(count);
        if (kept && n > 0) {
            kept_ = static_cast<T*>(take_kept_buffer(KeptUse::chunk_sums, n * sizeof(T), &capacity_));
            if (!kept_) throw std::bad_alloc();
        } else {
            own_.resize(static_cast<std::size_t>(chunks));
        }
    }
    ~ChunkSums() {
        if (kept_) give_kept_buffer(KeptUse::chunk_sums, kept_, capacity_);
    }
    ChunkSums(const ChunkSums&) = delete;
    ChunkSums& operator=(const ChunkSums&) = delete;

    // Chunk c's array for its thread to fill: uninitialised, or set to zero.
    T* get(int c, bool zeroed) {
        if (kept_) {
            T* out = kept_ + static_cast<std::size_t>(c) * static_cast<std::size_t>(count_);
            if (zeroed) std::fill(out, out + count_, T(0));
            return out;
        }
        AlignedVector<T>& v = own_[static_cast<std::size_t>(c)];
        if (zeroed) {
            v.assign(static_cast<std::size_t>(count_), T(0));
        } else {
            v.resize(static_cast<std::size_t>(count_));
        }
        return v.data();
    }

    // Chunk c's array, once filled.
    T* at(int c) {
        if (kept_) return kept_ + static_cast<std::size_t>(c) * static_cast<std::size_t>(count_);
        return own_[static_cast<std::size_t>(c)].data();
    }
    const T* at(int c) const { return const_cast<ChunkSums*>(this)->at(c); }

  private:
    index count_;
    std::size_t capacity_ = 0;
    T* kept_ = nullptr;
    std::vector<AlignedVector<T>> own_;
};

}  // namespace lowrank
