#include "lowrank/runtime/kept_buffer.hpp"

#include <cstdint>
#include <mutex>
#include <new>
#include <utility>

namespace lowrank {

namespace {

constexpr std::size_t kAlignment = std::size_t(2) << 20;
constexpr std::size_t kMaxKept = std::size_t(256) << 20;  // larger ones are freed

struct Slot {
    std::mutex mutex;
    void* data = nullptr;
    std::size_t capacity = 0;
    ~Slot() {
        if (data) ::operator delete(data, std::align_val_t(kAlignment));
    }
};

Slot& slot(KeptUse use) {
    static Slot slots[2];
    return slots[use == KeptUse::float32_copy ? 0 : 1];
}

}  // namespace

void* take_kept_buffer(KeptUse use, std::size_t bytes, std::size_t* capacity) {
    const std::size_t rounded = (bytes + kAlignment - 1) / kAlignment * kAlignment;
    {
        Slot& s = slot(use);
        std::lock_guard<std::mutex> lock(s.mutex);
        if (s.data && s.capacity >= rounded && s.capacity / 2 <= rounded) {
            void* out = s.data;
            *capacity = s.capacity;
            s.data = nullptr;
            s.capacity = 0;
            return out;
        }
    }
    void* fresh = ::operator new(rounded, std::align_val_t(kAlignment), std::nothrow);
    *capacity = fresh ? rounded : 0;
    return fresh;
}

void give_kept_buffer(KeptUse use, void* data, std::size_t capacity) {
    if (capacity <= kMaxKept) {
        Slot& s = slot(use);
        std::lock_guard<std::mutex> lock(s.mutex);
        if (capacity > s.capacity) {
            std::swap(data, s.data);
            std::swap(capacity, s.capacity);
        }
    }
    if (data) ::operator delete(data, std::align_val_t(kAlignment));
}

}  // namespace lowrank
