// lowrank_core._cuda: the CUDA core. Builds the module, maps the CUDA core's
// exceptions, and registers each area. Importing it needs no GPU (only the CUDA
// libraries); `device_count()` says whether one is usable.
#include <cuda_runtime_api.h>
#include <pybind11/pybind11.h>

#include <string>

#include "lowrank/gpu/errors.hpp"
#include "common/exceptions.hpp"
#include "cuda/register.hpp"

namespace py = pybind11;

PYBIND11_MODULE(_cuda, m) {
    m.doc() = "lowrank_core's CUDA core (cuBLAS, cuSOLVER, own kernels). Use the lowrank_core "
              "API with CuPy arrays.";
    m.attr("cuda_runtime_version") = CUDART_VERSION;  // the toolkit it was built with

    m.def(
        "device_count",
        []() {
            int count = 0;
            if (cudaGetDeviceCount(&count) != cudaSuccess) {
                cudaGetLastError();  // no driver or no device: clear, report none
                return 0;
            }
            return count;
        },
        "The number of usable CUDA devices (0 without a driver or a GPU); never raises.");

    // The types both cores take (RandomizedSvdOptions) are bound once, by _core; the
    // CUDA core's own exception comes on top of those every core throws.
    py::module_::import("lowrank_core._core");
    lowrank::bindings::register_core_exceptions();
    py::register_exception_translator([](std::exception_ptr p) {
        try {
            if (p) std::rethrow_exception(p);
        } catch (const lowrank::gpu::OutOfMemory& e) {
            PyErr_SetString(PyExc_MemoryError, e.what());
        }
    });

    lowrank::bindings::register_cuda_svd(m);
    lowrank::bindings::register_cuda_rank(m);
    lowrank::bindings::register_cuda_bottleneck(m);
}
