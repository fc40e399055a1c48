// lowrank_core._cuda: the CUDA core. Builds the module, maps the CUDA core's
// exceptions, and registers each area. Importing it needs no GPU (only the CUDA
// libraries); `device_count()` says whether one is usable.
#include <cuda_runtime_api.h>
#include <pybind11/pybind11.h>

#include <string>

#include "cuda/register.hpp"
#include "lowrank/common/errors.hpp"
#include "lowrank/gpu/errors.hpp"

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

    static py::object lin_alg_error = py::module_::import("numpy.linalg").attr("LinAlgError");
    py::register_exception_translator([](std::exception_ptr p) {
        try {
            if (p) std::rethrow_exception(p);
        } catch (const lowrank::gpu::OutOfMemory& e) {
            PyErr_SetString(PyExc_MemoryError, e.what());
        } catch (const lowrank::LinAlgError& e) {
            PyErr_SetString(lin_alg_error.ptr(), e.what());
        } catch (const lowrank::Interrupted&) {
            if (!PyErr_Occurred()) PyErr_SetNone(PyExc_KeyboardInterrupt);
        }
    });

    lowrank::bindings::register_cuda_svd(m);
    lowrank::bindings::register_cuda_rank(m);
    lowrank::bindings::register_cuda_bottleneck(m);
}
