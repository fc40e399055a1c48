#include "lowrank/runtime/thread_pool.hpp"

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <system_error>
#include <thread>
#include <vector>

#include <pthread.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

namespace lowrank {
namespace {

inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
    _mm_pause();
#elif defined(__aarch64__)
    asm volatile("yield");
#endif
}

using Clock = std::chrono::steady_clock;
// How long a worker (after its part) and a caller (for the workers) spin before
// they sleep: longer than the gaps between a small randomized SVD's dispatches (an
// orthonormalisation), short enough not to matter to anyone else.
constexpr auto kSpin = std::chrono::microseconds(200);
constexpr int kMostWorkers = 256;

// Spins until ready() (checking the clock every 64 turns), then sleeps on `wake`
// under `mutex` until it is.
template <class Ready>
void spin_then_wait(Ready ready, std::mutex& mutex, std::condition_variable& wake) {
    const auto until = Clock::now() + kSpin;
    for (unsigned turn = 1; !ready(); ++turn) {
        cpu_relax();
        if (turn % 64 == 0 && Clock::now() > until) {
            std::unique_lock<std::mutex> lock(mutex);
            wake.wait(lock, ready);
            return;
        }
    }
}

class Pool {
  public:
    explicit Pool(Pool* previous) : previous_(previous) {}

    bool run(int parts, PartTask task) {
        if (busy_.exchange(true, std::memory_order_acquire)) return false;
        struct Release {
            std::atomic<bool>& busy;
            ~Release() { busy.store(false, std::memory_order_release); }
        } release{busy_};
        const int workers = parts - 1;
        if (workers > kMostWorkers || !grow(workers)) return false;

        pending_.store(workers, std::memory_order_relaxed);
        const std::uint64_t generation = ++generation_;
        for (int i = 0; i < workers; ++i) {
            Slot& slot = *slots_[static_cast<std::size_t>(i)];
            slot.task = task;
            slot.part = i + 1;
            slot.posted.store(generation, std::memory_order_release);
        }
        // A worker between its last look and its wait holds the mutex: once we have
        // had it, the worker is waiting and the notification reaches it.
        { const std::lock_guard<std::mutex> lock(mutex_); }
        wake_.notify_all();

        task.call(task.context, 0);
        // Parts that no worker has begun yet are ours: a worker that is late (asleep
        // and slow to wake, or its core lent to another process) would otherwise hold
        // up the whole call by its lateness, where running its part here costs at
        // most the part (docs/benchmarks-history.md, "Randomized SVD: per-call
        // costs, threads and memory", "Late workers").
        for (int i = 0; i < workers; ++i) {
            Slot& slot = *slots_[static_cast<std::size_t>(i)];
            if (claim(slot, generation)) {
                task.call(task.context, i + 1);
                pending_.fetch_sub(1, std::memory_order_acq_rel);
            }
        }
        spin_then_wait([this] { return pending_.load(std::memory_order_acquire) == 0; }, mutex_,
                       done_);
        return true;
    }

  private:
    struct alignas(64) Slot {
        std::atomic<std::uint64_t> posted{0};  // the generation of the last part posted
        std::atomic<std::uint64_t> taken{0};   // that of the last part begun, here or by run
        PartTask task{};
        int part = 0;
    };

    // Whether this thread is the one to run the slot's part of run `generation`
    // (posted, and not yet begun by the worker or by the caller). Generations count
    // the pool's runs, so a slot's lag behind one run's (a slot that run did not use,
    // or a new one) is no matter.
    static bool claim(Slot& slot, std::uint64_t generation) {
        std::uint64_t before = slot.taken.load(std::memory_order_acquire);
        while (before < generation) {
            if (slot.taken.compare_exchange_weak(before, generation, std::memory_order_acq_rel))
                return true;
        }
        return false;
    }

    // Starts workers until there are `workers`; false when a thread cannot start.
    // (The room for the slots is made first: a worker must never outlive its slot.)
    bool grow(int workers) {
        slots_.reserve(static_cast<std::size_t>(workers));
        while (static_cast<int>(slots_.size()) < workers) {
            auto slot = std::make_unique<Slot>();
            Slot* const mine = slot.get();
            try {
                std::thread([this, mine] { work(*mine); }).detach();
            } catch (const std::system_error&) {
                return false;
            }
            slots_.push_back(std::move(slot));
        }
        return true;
    }

    [[noreturn]] void work(Slot& slot) {
        std::uint64_t seen = 0;
        for (;;) {
            spin_then_wait([&] { return slot.posted.load(std::memory_order_acquire) != seen; },
                           mutex_, wake_);
            // The latest part posted (an earlier one this worker slept through was
            // run by the caller: a part is posted only after the last one finished).
            seen = slot.posted.load(std::memory_order_acquire);
            if (!claim(slot, seen)) continue;
            slot.task.call(slot.task.context, slot.part);
            if (pending_.fetch_sub(1, std::memory_order_acq_rel) == 1) {
                { const std::lock_guard<std::mutex> lock(mutex_); }
                done_.notify_one();
            }
        }
    }

    // The parent's pool, in a forked child (kept reachable, never used).
    [[maybe_unused]] Pool* const previous_;
    std::atomic<bool> busy_{false};
    std::vector<std::unique_ptr<Slot>> slots_;  // changed only by the caller holding busy_
    std::uint64_t generation_ = 0;               // likewise: one per run
    alignas(64) std::atomic<int> pending_{0};
    std::mutex mutex_;
    std::condition_variable wake_, done_;
};

Pool* g_pool = nullptr;

Pool& pool() {
    static std::once_flag once;
    std::call_once(once, [] {
        g_pool = new Pool(nullptr);
        // The child of a fork has only the forking thread: its pool starts empty.
        pthread_atfork(nullptr, nullptr, [] { g_pool = new Pool(g_pool); });
    });
    return *g_pool;
}

}  // namespace

bool pool_run(int parts, PartTask task) {
    if (parts <= 1) {
        task.call(task.context, 0);
        return true;
    }
    return pool().run(parts, task);
}

}  // namespace lowrank
