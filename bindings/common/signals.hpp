// Ctrl-C for the core's long loops (see cpp/lowrank/common/interrupt.hpp). The check takes the GIL
// and runs Python's signal handlers; when one raised (KeyboardInterrupt for
// SIGINT), the error stays set and the core stops with Interrupted, which the
// module's translator leaves as that error. Python runs signal handlers on the
// main thread only, so a call from another thread is never interrupted this way.
#pragma once

#include <pybind11/pybind11.h>

#include "lowrank/common/interrupt.hpp"

namespace lowrank::bindings {

// Make it on the thread that calls the core, before releasing the GIL.
inline StopPoll python_signal_poll() {
    return StopPoll([] {
        pybind11::gil_scoped_acquire acquire;
        return PyErr_CheckSignals() != 0;
    });
}

}  // namespace lowrank::bindings
