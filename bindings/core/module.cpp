// lowrank_core._core: the CPU core. Builds the module and registers each area:
// BLAS/LAPACK from SciPy (scipy_blas_lapack.cpp), the core's exceptions
// (exceptions.hpp), the public functions by area, and the private _testing submodule.
#include <pybind11/pybind11.h>

#include "lowrank/backend/blas_lapack.hpp"
#include "common/exceptions.hpp"
#include "common/interruptible.hpp"
#include "core/register.hpp"

namespace py = pybind11;

PYBIND11_MODULE(_core, m) {
    m.doc() = "lowrank_core's CPU core (C++, BLAS/LAPACK from SciPy). Use the lowrank_core API.";
    lowrank::bindings::install_scipy_blas_lapack();
    lowrank::bindings::register_core_exceptions();

    m.attr("blas_thread_control") =
        lowrank::blas_lapack::installed().set_num_threads_local != nullptr;
    lowrank::bindings::register_svd(m);
    lowrank::bindings::register_rank(m);
    lowrank::bindings::register_bottleneck(m);
    lowrank::bindings::register_blocks(m);
    lowrank::bindings::register_sparse(m);
    m.def("_wait_for_abandoned_calls", &lowrank::bindings::wait_for_abandoned_calls,
          "Blocks until the LAPACK calls that Ctrl-C abandoned have ended (or until the\n"
          "next Ctrl-C); registered with atexit (bindings/interruptible.hpp).");
    py::module_ testing = m.def_submodule(
        "_testing", "Switches and kernels for tests and benchmark studies; not an API.");
    lowrank::bindings::register_testing(testing);
}
