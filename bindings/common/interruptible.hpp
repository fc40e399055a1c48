// Ctrl-C for one long LAPACK call (an SVD of a large matrix), which has no loop of
// ours to poll in: the call runs on a thread of its own while the calling thread
// waits for it, checking Python's signals every 0.05 s. On Ctrl-C the calling
// thread raises KeyboardInterrupt at once and abandons the call: the thread runs it
// to its end into buffers it owns (its result and its own references to the input
// arrays, so nothing is freed under it), then drops them; its last references to
// Python objects are dropped by the interpreter (Py_AddPendingCall), since that
// thread never holds the GIL. The interpreter waits for abandoned calls at exit
// (wait_for_abandoned_calls, registered with atexit), as the BLAS's buffers must
// outlive them.
#pragma once

#include <pybind11/pybind11.h>

#include <chrono>
#include <condition_variable>
#include <exception>
#include <memory>
#include <mutex>
#include <optional>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

#include "lowrank/common/matrix.hpp"

namespace lowrank::bindings {

namespace detail {

// How many abandoned calls are still running, for wait_for_abandoned_calls.
struct Abandoned {
    std::mutex mutex;
    std::condition_variable finished;
    int running = 0;
};
inline Abandoned& abandoned_calls() {
    static Abandoned* instance = new Abandoned();  // never destroyed: threads may outlive exit
    return *instance;
}

inline int release_references(void* references) {  // run by the interpreter, GIL held
    auto* held = static_cast<std::vector<PyObject*>*>(references);
    for (PyObject* object : *held) Py_DECREF(object);
    delete held;
    return 0;
}

template <class Result>
struct Job {
    std::mutex mutex;
    std::condition_variable done_signal;
    bool done = false, abandoned = false;
    std::optional<Result> result;
    std::exception_ptr error;
    std::vector<PyObject*> references;  // owned; dropped by whoever finishes last

    void finish() {
        std::vector<PyObject*>* orphans = nullptr;
        {
            const std::lock_guard<std::mutex> lock(mutex);
            done = true;
            if (abandoned) orphans = new std::vector<PyObject*>(std::move(references));
        }
        done_signal.notify_all();
        if (orphans) {
            // Without a slot in the interpreter's queue the references leak (never freed
            // under anyone).
            if (Py_AddPendingCall(&release_references, orphans) != 0) delete orphans;
            Abandoned& a = abandoned_calls();
            {
                const std::lock_guard<std::mutex> lock(a.mutex);
                --a.running;
            }
            a.finished.notify_all();
        }
    }
};

}  // namespace detail

// Whether a call is long enough to be worth a thread of its own (starting one costs
// tens of microseconds): an SVD of about m n min(m, n) >= 2^24 multiply-adds.
inline bool worth_a_thread(index rows, index cols, index batch = 1) {
    const double p = static_cast<double>(std::min(rows, cols));
    return static_cast<double>(batch) * static_cast<double>(rows) * static_cast<double>(cols) * p >=
           16777216.0;
}

// work() -> Result, on a thread of its own when `threaded`, else here; with the GIL
// released either way. `keep` are the Python objects work reads (the input arrays):
// the thread holds them until it ends. work must own everything else it touches.
// Call with the GIL held; rethrows what work threw.
template <class Work>
auto run_interruptible(bool threaded, std::vector<pybind11::handle> keep, Work work)
    -> decltype(work()) {
    using Result = decltype(work());
    if (!threaded) {
        pybind11::gil_scoped_release release;
        return work();
    }
    auto job = std::make_shared<detail::Job<Result>>();
    for (const pybind11::handle& object : keep) {
        job->references.push_back(object.inc_ref().ptr());
    }
    try {
        std::thread([job, work = std::move(work)]() mutable {
            try {
                job->result.emplace(work());
            } catch (...) {
                job->error = std::current_exception();
            }
            job->finish();
        }).detach();
    } catch (const std::system_error&) {  // no thread to be had: run it here
        for (PyObject* object : job->references) Py_DECREF(object);
        job->references.clear();
        pybind11::gil_scoped_release release;
        return work();
    }
    for (;;) {
        bool finished;
        {
            pybind11::gil_scoped_release release;
            std::unique_lock<std::mutex> lock(job->mutex);
            finished = job->done_signal.wait_for(lock, std::chrono::milliseconds(50),
                                                 [&] { return job->done; });
        }
        if (finished) break;
        if (PyErr_CheckSignals() != 0) {
            const std::lock_guard<std::mutex> lock(job->mutex);
            if (!job->done) {
                job->abandoned = true;
                detail::Abandoned& a = detail::abandoned_calls();
                const std::lock_guard<std::mutex> count(a.mutex);
                ++a.running;
                throw pybind11::error_already_set();
            }
            // It finished meanwhile: the interrupt is still raised (the user asked to
            // stop), and the references are ours to drop.
            for (PyObject* object : job->references) Py_DECREF(object);
            job->references.clear();
            throw pybind11::error_already_set();
        }
    }
    for (PyObject* object : job->references) Py_DECREF(object);
    job->references.clear();
    if (job->error) std::rethrow_exception(job->error);
    return std::move(*job->result);
}

// How many abandoned calls are still running.
inline int abandoned_calls_running() {
    detail::Abandoned& a = detail::abandoned_calls();
    const std::lock_guard<std::mutex> lock(a.mutex);
    return a.running;
}

// Blocks (GIL released) until every abandoned call has ended, or until Ctrl-C.
inline void wait_for_abandoned_calls() {
    detail::Abandoned& a = detail::abandoned_calls();
    for (;;) {
        {
            pybind11::gil_scoped_release release;
            std::unique_lock<std::mutex> lock(a.mutex);
            if (a.finished.wait_for(lock, std::chrono::milliseconds(50),
                                    [&] { return a.running == 0; })) {
                return;
            }
        }
        if (PyErr_CheckSignals() != 0) throw pybind11::error_already_set();
    }
}

}  // namespace lowrank::bindings
