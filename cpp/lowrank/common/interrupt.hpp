// Letting a long computation stop early (Ctrl-C) without the core knowing Python.
//
// The caller hands the core a check (the binding's acquires the GIL and runs
// PyErr_CheckSignals). The core's loops call poll() between steps of bounded
// length: on the calling thread it runs the check at most once per interval; on
// the core's own worker threads it only reads the flag the calling thread set. A
// stop throws Interrupted on every thread, which the bindings turn into the
// Python error the check left set (KeyboardInterrupt).
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <thread>
#include <utility>

#include "lowrank/common/errors.hpp"

namespace lowrank {

class StopPoll {
  public:
    using Check = std::function<bool()>;  // true: stop now

    StopPoll() = default;
    explicit StopPoll(Check check, double interval_seconds = 0.05)
        : check_(std::move(check)),
          caller_(std::this_thread::get_id()),
          interval_(std::chrono::duration_cast<clock::duration>(
              std::chrono::duration<double>(interval_seconds))),
          next_(clock::now() + interval_) {}
    StopPoll(const StopPoll&) = delete;
    StopPoll& operator=(const StopPoll&) = delete;

    // Throws Interrupted once a stop was asked for; on the thread that made this
    // object, first runs the check when the interval has passed.
    void poll() {
        if (!check_) return;
        if (std::this_thread::get_id() == caller_ && !stopped_.load(std::memory_order_relaxed)) {
            const auto now = clock::now();
            if (now >= next_) {
                next_ = now + interval_;
                if (check_()) stopped_.store(true, std::memory_order_relaxed);
            }
        }
        if (stopped_.load(std::memory_order_relaxed)) throw Interrupted();
    }

  private:
    using clock = std::chrono::steady_clock;
    Check check_;
    std::thread::id caller_;
    clock::duration interval_{};
    clock::time_point next_{};
    std::atomic<bool> stopped_{false};
};

}  // namespace lowrank
