// The core's worker threads, kept between calls.
//
// run_parts (parallel.hpp) hands parts 1.. of its work to these threads. Starting
// and joining a thread per dispatch is a visible cost for a small randomized SVD,
// which dispatches several times (docs/benchmarks-history.md, "Randomized SVD:
// per-call costs, threads and memory", "Kept threads"); a worker that has just
// finished waits for the next part spinning for a while (kSpin, far longer than a
// round trip) before it sleeps on a condition variable.
//
// One caller at a time: a dispatch that finds the pool busy (another thread's call,
// or a run_parts inside a part) is refused, and run_parts starts threads of its own
// as before. After fork() the child gets a fresh pool (the parent's threads are not
// there).
#pragma once

namespace lowrank {

// A part to run: call(context, part).
struct PartTask {
    void (*call)(void* context, int part);
    void* context;
};

// Runs task for parts 1..parts-1 on the pool's workers and part 0 on the calling
// thread, and returns once all have returned; false (nothing run) when the pool is
// busy or cannot start its threads. Parts that no worker has begun when part 0 is
// done run on the calling thread too, after it: parts must not wait for one another
// (each runs once, on some thread). The task must not throw.
bool pool_run(int parts, PartTask task);

}  // namespace lowrank
