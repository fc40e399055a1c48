// Running the core's own threads around single-threaded BLAS calls.
//
// Work made of many small independent LAPACK/BLAS calls (a stack of small
// matrices: singular values, ranks) runs one range of the stack per thread, each
// thread calling a single-threaded BLAS; the bottleneck's tiny products run with
// the BLAS single-threaded. This needs the BLAS to let a thread set its own thread
// count (OpenBLAS >= 0.3.27: openblas_set_num_threads_local); without it, one
// thread calls a threaded BLAS. The randomized SVD runs all of its products this
// way too, on the core's threads, with its own kernels or single-threaded BLAS
// per range of rows (svd/row_blocks.hpp; normal_product.hpp).
#pragma once

#include <algorithm>
#include <atomic>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

#include "lowrank/backend/blas_lapack.hpp"
#include "lowrank/common/matrix.hpp"
#include "lowrank/runtime/thread_pool.hpp"

namespace lowrank {

// While any instance is alive, the BLAS runs single-threaded. In OpenBLAS's pthreads
// builds (SciPy's), openblas_set_num_threads_local sets the process-wide count, so
// this is process-wide too: the first instance saves the count and sets 1, the last
// one restores it (a counter under a mutex, so overlapping scopes on several
// threads leave the count as they found it).
class SingleThreadedBlas {
  public:
    SingleThreadedBlas() {
        const auto& f = blas_lapack::installed();
        if (!f.set_num_threads_local) return;
        std::lock_guard<std::mutex> lock(state().mutex);
        if (state().holders++ == 0) state().saved = f.set_num_threads_local(1);
        active_ = true;
    }
    ~SingleThreadedBlas() {
        if (!active_) return;
        std::lock_guard<std::mutex> lock(state().mutex);
        if (--state().holders == 0) {
            blas_lapack::installed().set_num_threads_local(std::max(1, state().saved));
        }
    }
    SingleThreadedBlas(const SingleThreadedBlas&) = delete;
    SingleThreadedBlas& operator=(const SingleThreadedBlas&) = delete;

    // The BLAS's thread count as configured: the count saved by the first instance
    // while any is alive, else the current one. Another thread's instance must not
    // change how a call splits its work (core_threads), or its bits.
    static int configured_threads() {
        const auto& f = blas_lapack::installed();
        std::lock_guard<std::mutex> lock(state().mutex);
        if (state().holders > 0) return state().saved;
        return f.get_num_threads ? f.get_num_threads() : 1;
    }

  private:
    struct State {
        std::mutex mutex;
        int holders = 0;
        int saved = 1;
    };
    static State& state() {
        static State instance;
        return instance;
    }
    bool active_ = false;
};

// How many threads the core may run BLAS calls on: the BLAS's own thread count
// (so threadpoolctl's limits hold) when per-thread control exists, else 1. The
// count as configured, also while another call holds the BLAS single-threaded
// (SingleThreadedBlas): it sets how a call splits A into ranges and so the order
// of its sums, so the same call gives the same bits whatever runs beside it.
inline int core_threads() {
    const auto& f = blas_lapack::installed();
    if (!f.get_num_threads || !f.set_num_threads_local) return 1;
    return std::max(1, SingleThreadedBlas::configured_threads());
}

// Calls body(part, parts) for every part on up to `parts` threads (the caller's
// thread runs part 0, and any part the core's pool, thread_pool.hpp, has not begun
// by then; threads are started for this call when the pool is busy), the BLAS
// single-threaded meanwhile when parts > 1; rethrows the first exception after all
// have finished. Parts must not wait for one another.
template <class Body>
void run_parts(int parts, Body&& body) {
    if (parts <= 1) {
        body(0, 1);
        return;
    }
    const SingleThreadedBlas single;
    std::vector<std::exception_ptr> errors(static_cast<std::size_t>(parts));
    auto run = [&](int part) {
        try {
            body(part, parts);
        } catch (...) {
            errors[static_cast<std::size_t>(part)] = std::current_exception();
        }
    };
    using Run = decltype(run);
    const PartTask task{[](void* context, int part) { (*static_cast<Run*>(context))(part); },
                        &run};
    if (!pool_run(parts, task)) {  // the pool is busy: threads of this call's own
        std::vector<std::thread> workers;
        workers.reserve(static_cast<std::size_t>(parts - 1));
        for (int part = 1; part < parts; ++part) workers.emplace_back(run, part);
        run(0);
        for (auto& worker : workers) worker.join();
    }
    for (const auto& error : errors) {
        if (error) std::rethrow_exception(error);
    }
}

// The half-open range of [0, count) that part `part` of `parts` owns, in whole
// multiples of `granule` (the last part takes the remainder).
inline std::pair<index, index> part_range(index count, index granule, int part, int parts) {
    const index granules = (count + granule - 1) / granule;
    const index first = granules * part / parts, last = granules * (part + 1) / parts;
    return {std::min(count, first * granule), std::min(count, last * granule)};
}

// Calls body(chunk, part) for every chunk in [0, chunks), on `parts` threads
// (run_parts), each taking the next chunk not yet taken. A thread that the machine
// slows down (another tenant on its core, for minutes at a time on a shared VM) then
// takes fewer, where a fixed share per thread made the others wait for it
// (docs/benchmarks-history.md, "Randomized SVD: per-call costs, threads and
// memory", "Chunks for a slow core"). Which thread takes a chunk varies from
// run to run, so what a chunk computes must go to the chunk's own output (and
// per-thread scratch be fully rewritten per chunk): the result is then the same
// whichever thread ran it. After an exception no further chunks are taken.
template <class Body>
void run_chunks(int chunks, int parts, Body&& body) {
    std::atomic<int> next{0};
    run_parts(parts, [&](int part, int) {
        for (int c = next.fetch_add(1); c < chunks; c = next.fetch_add(1)) {
            try {
                body(c, part);
            } catch (...) {
                next.store(chunks);
                throw;
            }
        }
    });
}

// The size (2 m n l flops) from which a product gets more chunks than threads
// (chunk_count): 4e9 unless changed (process-wide; tests lower it to reach that path
// on small inputs).
inline std::atomic<double>& chunked_flops() {
    static std::atomic<double> value{4e9};
    return value;
}

// How many chunks `units` (blocks of rows) make for run_chunks on `parts` threads,
// for a product of `flops` (2 m n l) whose chunks each sum into `sum_bytes` of their
// own (chunk_sums.hpp). Products under chunked_flops() keep one chunk a thread (a
// fixed share each): there more chunks, with their own sums to allocate and add,
// cost more than the balance wins (docs/benchmarks-history.md, "Randomized SVD:
// per-call costs, threads and memory", "Chunks for a slow core"). Larger ones
// get about four a thread, of at least `least` units each, their sums at most 64 MiB
// together (or one a thread where a thread's own is larger).
inline int chunk_count(index units, index least, int parts, double flops, double sum_bytes) {
    if (parts <= 1) return 1;
    if (!(flops >= chunked_flops().load(std::memory_order_relaxed))) return parts;
    const double budget = double(std::size_t(64) << 20);
    const index by_memory = std::max<index>(parts, index(budget / std::max(sum_bytes, 1.0)));
    return static_cast<int>(std::clamp<index>(units / std::max<index>(least, 1), parts,
                                              std::min<index>(index(4) * parts, by_memory)));
}

// Calls body(first, last) on ranges of the `batch` matrices of a stack, one range
// per thread (LAPACK single-threaded inside), or on [0, batch) in the caller's
// thread when there is one matrix (LAPACK then uses the BLAS's threads).
template <class Body>
void for_each_matrix_range(index batch, Body&& body) {
    const int parts = batch > 1 ? static_cast<int>(std::min<index>(core_threads(), batch)) : 1;
    run_parts(parts, [&](int part, int count) {
        const auto [first, last] = part_range(batch, 1, part, count);
        if (first < last) body(first, last);
    });
}

}  // namespace lowrank
