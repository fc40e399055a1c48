#include "chunk_sums.hpp"

#include <mutex>
#include <new>
#include <utility>

#include <sys/mman.h>

namespace lowrank {

namespace {

constexpr std::size_t kHugePage = std::size_t(2) << 20;
constexpr std::size_t kMaxKept = std::size_t(128) << 20;  // larger ones are freed

struct Kept {
    std::mutex mutex;
    void* data = nullptr;
    std::size_t capacity = 0;
    ~Kept() {
        if (data) ::operator delete(data, std::align_val_t(kHugePage));
    }
};

Kept& kept() {
    static Kept instance;
    return instance;
}

}  // namespace

void* take_kept_buffer(std::size_t bytes, std::size_t* capacity) {
    {
        Kept& k = kept();
        std::lock_guard<std::mutex> lock(k.mutex);
        if (k.data && k.capacity >= bytes && k.capacity / 2 <= bytes) {
            void* out = k.data;
            *capacity = k.capacity;
            k.data = nullptr;
            k.capacity = 0;
            return out;
        }
    }
    // On 2 MiB boundaries, in huge pages where the kernel gives them on request.
    const std::size_t rounded = (bytes + kHugePage - 1) / kHugePage * kHugePage;
    void* fresh = ::operator new(rounded, std::align_val_t(kHugePage), std::nothrow);
#ifdef MADV_HUGEPAGE
    if (fresh) madvise(fresh, rounded, MADV_HUGEPAGE);  // advice only
#endif
    *capacity = fresh ? rounded : 0;
    return fresh;
}

void give_kept_buffer(void* data, std::size_t capacity) {
    {
        Kept& k = kept();
        std::lock_guard<std::mutex> lock(k.mutex);
        if (capacity > k.capacity && capacity <= kMaxKept) {
            std::swap(data, k.data);
            std::swap(capacity, k.capacity);
        }
    }
    if (data) ::operator delete(data, std::align_val_t(kHugePage));
}

}  // namespace lowrank
