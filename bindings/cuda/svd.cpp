// CUDA bindings for the SVD area: svd, randomized_svd, singular_values, gaussian_sketch.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <optional>
#include <string>

#include "cuda/device_arrays.hpp"
#include "cuda/register.hpp"
#include "lowrank/gpu/svd.hpp"

namespace lowrank::bindings {

void register_cuda_svd(py::module_& m) {
    m.def(
        "svd",
        [](const std::string& dtype, const ViewArgs& a, index k, std::uintptr_t u,
           std::uintptr_t s, std::uintptr_t vh, int device, std::uintptr_t stream) {
            dispatch(dtype, [&](auto zero) {
                using T = decltype(zero);
                py::gil_scoped_release release;
                const gpu::Resources resources(device, stream_of(stream));
                gpu::exact_svd<T>(resources, view_of<T>(a), k, device_pointer<T>(u),
                                  device_pointer<T>(s), device_pointer<T>(vh));
            });
        },
        py::arg("dtype"), py::arg("A"), py::arg("k"), py::arg("U"), py::arg("S"), py::arg("Vh"),
        py::arg("device"), py::arg("stream"),
        "Top-k SVD (cuSOLVER gesvd) into caller-owned U (m, k), S (k,), Vh (k, n), "
        "column-major; U's largest entries positive.");
    m.def(
        "randomized_svd",
        [](const std::string& dtype, const ViewArgs& a, index k, index sketch_columns,
           index power_iters, std::uint64_t seed, const std::optional<ViewArgs>& sketch,
           std::uintptr_t u, std::uintptr_t s, std::uintptr_t vh, int device,
           std::uintptr_t stream) {
            dispatch(dtype, [&](auto zero) {
                using T = decltype(zero);
                std::optional<ConstView<T>> sketch_view;
                if (sketch) sketch_view = view_of<T>(*sketch);
                const RandomizedSvdOptions options{k, sketch_columns, power_iters, seed};
                py::gil_scoped_release release;
                const gpu::Resources resources(device, stream_of(stream));
                gpu::randomized_svd<T>(resources, view_of<T>(a), options,
                                       sketch_view ? &*sketch_view : nullptr,
                                       device_pointer<T>(u), device_pointer<T>(s),
                                       device_pointer<T>(vh));
            });
        },
        py::arg("dtype"), py::arg("A"), py::arg("k"), py::arg("sketch_columns"),
        py::arg("power_iters"), py::arg("seed"), py::arg("sketch"), py::arg("U"), py::arg("S"),
        py::arg("Vh"), py::arg("device"), py::arg("stream"),
        "Randomized SVD (Halko-Martinsson-Tropp) with the Philox or a given sketch.");
    m.def(
        "singular_values",
        [](const std::string& dtype, std::uintptr_t a, index batch, index rows, index cols,
           std::uintptr_t out, int device, std::uintptr_t stream) {
            dispatch(dtype, [&](auto zero) {
                using T = decltype(zero);
                py::gil_scoped_release release;
                const gpu::Resources resources(device, stream_of(stream));
                gpu::singular_values_batched<T>(resources, device_pointer<T>(a), batch, rows,
                                                cols, device_pointer<T>(out));
            });
        },
        py::arg("dtype"), py::arg("A"), py::arg("batch"), py::arg("rows"), py::arg("cols"),
        py::arg("out"), py::arg("device"), py::arg("stream"),
        "Singular values of a C-contiguous (batch, m, n) stack into out (batch, min(m, n)).");
    m.def(
        "gaussian_sketch",
        [](const std::string& dtype, index rows, index cols, std::uint64_t seed,
           std::uintptr_t out, int device, std::uintptr_t stream) {
            dispatch(dtype, [&](auto zero) {
                using T = decltype(zero);
                py::gil_scoped_release release;
                const gpu::Resources resources(device, stream_of(stream));
                gpu::gaussian_sketch<T>(resources, rows, cols, seed, device_pointer<T>(out));
            });
        },
        py::arg("dtype"), py::arg("rows"), py::arg("cols"), py::arg("seed"), py::arg("out"),
        py::arg("device"), py::arg("stream"),
        "The Philox Gaussian sketch (rows, cols), column-major, as randomized_svd draws it.");
}

}  // namespace lowrank::bindings
