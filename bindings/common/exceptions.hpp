// Shared by the CPU and CUDA modules: the exceptions every core throws, as Python
// errors. LinAlgError becomes numpy.linalg.LinAlgError; Interrupted leaves the error
// that stopped the core (KeyboardInterrupt from Ctrl-C) as it is. Others fall through
// to pybind11's own translation (std::invalid_argument: ValueError, and so on).
#pragma once

#include <pybind11/pybind11.h>

#include <exception>

#include "lowrank/common/errors.hpp"

namespace lowrank::bindings {

// Call once, at module initialisation.
inline void register_core_exceptions() {
    // Never destroyed: translators may run until the interpreter's last moment.
    static pybind11::object* lin_alg_error = new pybind11::object(
        pybind11::module_::import("numpy.linalg").attr("LinAlgError"));
    pybind11::register_exception_translator([](std::exception_ptr p) {
        try {
            if (p) std::rethrow_exception(p);
        } catch (const LinAlgError& e) {
            PyErr_SetString(lin_alg_error->ptr(), e.what());
        } catch (const Interrupted&) {
            if (!PyErr_Occurred()) PyErr_SetNone(PyExc_KeyboardInterrupt);
        }
    });
}

}  // namespace lowrank::bindings
