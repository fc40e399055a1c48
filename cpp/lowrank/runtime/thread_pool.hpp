// The core's worker threads, kept between calls.
//
// run_parts (parallel.hpp) hands parts 1.. of its work to these threads. Starting
// and joining a thread costs ~35 us on the 2-core VM this was tuned on, and a
// randomized SVD of a 1000 x 1000 matrix dispatches 5 times in ~4.5 ms; a worker
// that has just finished waits for the next part spinning for a while (~200 us, a
// round trip of ~1-3 us) before it sleeps on a condition variable.
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
