// Freed blocks of 64 KiB and more, kept for the next allocation of the same size
// (matrix.hpp's CacheAligned allocator: every Matrix and AlignedVector of the core).
//
// A randomized SVD allocates its panels and scratch afresh in every call. Blocks of
// 128 KiB and more come from the C library's mmap, and smaller ones from the top of
// its heap, which free() hands back to the kernel once more than 2-3 blocks' worth is
// free there: the next call then faults every page in again, and the kernel zeroes
// each. In a process that had made no larger allocation before (a script that loads
// its matrix from disk), that made every small randomized SVD fault hundreds of pages
// in (docs/benchmarks-history.md, "Randomized SVD: per-call costs, threads and
// memory", "Page faults and the block cache").
//
// So a freed block of at least kFrom bytes is kept, newest last, up to kEntries blocks
// and kBudget bytes together (the oldest go first), and an allocation of the same
// size (rounded up to 4 KiB) and alignment takes the newest such block back. Calls
// of one shape, the common case, then reuse their blocks call after call. At most
// kBudget bytes stay with the process between calls.
//
// The lock is only ever tried, never waited for: a thread that finds it held
// allocates or frees as if there were no cache (so a forked child whose parent held
// it simply runs without the cache). Under AddressSanitizer nothing is kept, so
// that a use after free of such a block is still caught.
#pragma once

#include <algorithm>
#include <cstddef>
#include <mutex>
#include <new>

namespace lowrank::block_cache {

#if defined(__SANITIZE_ADDRESS__)
#define LOWRANK_BLOCK_CACHE 0
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define LOWRANK_BLOCK_CACHE 0
#endif
#endif
#ifndef LOWRANK_BLOCK_CACHE
#define LOWRANK_BLOCK_CACHE 1
#endif

constexpr bool kEnabled = LOWRANK_BLOCK_CACHE;
constexpr std::size_t kFrom = std::size_t(64) << 10;
constexpr std::size_t kBudget = std::size_t(64) << 20;
constexpr int kEntries = 32;

// The size a block of `bytes` is allocated, kept and matched at.
inline std::size_t rounded(std::size_t bytes) {
    return bytes < kFrom ? bytes : (bytes + 4095) / 4096 * 4096;
}

class Cache {
  public:
    // A kept block of exactly `bytes` and `alignment`, or nullptr.
    void* take(std::size_t bytes, std::size_t alignment) {
        const std::unique_lock<std::mutex> lock(mutex_, std::try_to_lock);
        if (!lock.owns_lock()) return nullptr;
        for (int i = count_ - 1; i >= 0; --i) {
            if (entries_[i].bytes == bytes && entries_[i].alignment == alignment) {
                void* out = entries_[i].data;
                kept_ -= bytes;
                std::move(entries_ + i + 1, entries_ + count_, entries_ + i);
                --count_;
                return out;
            }
        }
        return nullptr;
    }

    // Keeps `data` (the oldest blocks freed to make room); false when the caller is
    // to free it: too large for the budget, or the cache busy.
    bool keep(void* data, std::size_t bytes, std::size_t alignment) {
        if (!kEnabled || bytes < kFrom || bytes > kBudget / 2) return false;
        const std::unique_lock<std::mutex> lock(mutex_, std::try_to_lock);
        if (!lock.owns_lock()) return false;
        while (count_ == kEntries || kept_ + bytes > kBudget) {
            ::operator delete(entries_[0].data, std::align_val_t(entries_[0].alignment));
            kept_ -= entries_[0].bytes;
            std::move(entries_ + 1, entries_ + count_, entries_);
            --count_;
        }
        entries_[count_++] = {data, bytes, alignment};
        kept_ += bytes;
        return true;
    }

    std::size_t kept_bytes() {
        const std::lock_guard<std::mutex> lock(mutex_);
        return kept_;
    }

  private:
    struct Entry {
        void* data;
        std::size_t bytes;
        std::size_t alignment;
    };
    std::mutex mutex_;
    Entry entries_[kEntries] = {};
    int count_ = 0;
    std::size_t kept_ = 0;
};

// The process's cache (one per extension module that uses it). Never destroyed, so
// that arrays freed during interpreter shutdown still find it; what it holds then is
// reachable from it, and the process's end returns it.
inline Cache& cache() {
    static Cache* const instance = new Cache;
    return *instance;
}

}  // namespace lowrank::block_cache
