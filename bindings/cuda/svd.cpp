// CUDA bindings for the SVD area: svd, randomized_svd, singular_values, gaussian_sketch.
// Outputs are caller-owned device arrays (allocated by lowrank_core._cuda_api).
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <algorithm>
#include <cstdint>
#include <optional>

#include "cuda/device_arrays.hpp"
#include "cuda/register.hpp"
#include "lowrank/gpu/svd.hpp"

namespace lowrank::bindings {

void register_cuda_svd(py::module_& m) {
    m.def(
        "svd",
        [](const py::object& a_array, index k, const py::object& u, const py::object& s,
           const py::object& vh, int device) {
            const DeviceArray a = device_array(a_array, "A");
            dispatch(a, [&](auto zero) {
                using T = decltype(zero);
                const ConstView<T> view = view_of<T>(a);
                T* U = contiguous_of<T>(device_array(u, "U"), {view.rows, k}, true);
                T* S = contiguous_of<T>(device_array(s, "S"), {k}, true);
                T* Vh = contiguous_of<T>(device_array(vh, "Vh"), {k, view.cols}, true);
                py::gil_scoped_release release;
                const gpu::Resources resources(device, stream_of(a));
                gpu::exact_svd<T>(resources, view, k, U, S, Vh);
            });
        },
        py::arg("A"), py::arg("k"), py::arg("U"), py::arg("S"), py::arg("Vh"), py::arg("device"),
        "Top-k SVD (cuSOLVER gesvd) into U (m, k), S (k,), Vh (k, n), Fortran-ordered, on\n"
        "A's stream; U's largest entries positive.");
    m.def(
        "randomized_svd",
        [](const py::object& a_array, const RandomizedSvdOptions& options,
           const py::object& sketch, const py::object& u, const py::object& s,
           const py::object& vh, int device) {
            const DeviceArray a = device_array(a_array, "A");
            std::optional<DeviceArray> omega;
            if (!sketch.is_none()) omega = device_array(sketch, "sketch");
            dispatch(a, [&](auto zero) {
                using T = decltype(zero);
                const ConstView<T> view = view_of<T>(a);
                std::optional<ConstView<T>> sketch_view;
                if (omega) sketch_view = view_of<T>(*omega);
                const index k = options.rank;
                T* U = contiguous_of<T>(device_array(u, "U"), {view.rows, k}, true);
                T* S = contiguous_of<T>(device_array(s, "S"), {k}, true);
                T* Vh = contiguous_of<T>(device_array(vh, "Vh"), {k, view.cols}, true);
                py::gil_scoped_release release;
                const gpu::Resources resources(device, stream_of(a));
                gpu::randomized_svd<T>(resources, view, options,
                                       sketch_view ? &*sketch_view : nullptr, U, S, Vh);
            });
        },
        py::arg("A"), py::arg("options"), py::arg("sketch"), py::arg("U"), py::arg("S"),
        py::arg("Vh"), py::arg("device"),
        "Randomized SVD (Halko-Martinsson-Tropp) as lowrank_core._core.RandomizedSvdOptions\n"
        "say, in A's precision throughout, with the Philox or a given sketch; outputs as svd's.");
    m.def(
        "singular_values",
        [](const py::object& a_array, const py::object& out, int device) {
            const DeviceArray a = device_array(a_array, "A");
            dispatch(a, [&](auto zero) {
                using T = decltype(zero);
                const T* data = contiguous_with_ndim<const T>(a, 3, false);
                const index batch = a.shape[0], rows = a.shape[1], cols = a.shape[2];
                T* values = contiguous_of<T>(device_array(out, "out"),
                                             {batch, std::min(rows, cols)}, false);
                py::gil_scoped_release release;
                const gpu::Resources resources(device, stream_of(a));
                gpu::singular_values_batched<T>(resources, data, batch, rows, cols, values);
            });
        },
        py::arg("A"), py::arg("out"), py::arg("device"),
        "Singular values of a C-contiguous (batch, m, n) stack into out (batch, min(m, n)),\n"
        "C-ordered.");
    m.def(
        "gaussian_sketch",
        [](index rows, index cols, std::uint64_t seed, const py::object& out, int device) {
            const DeviceArray o = device_array(out, "out");
            dispatch(o, [&](auto zero) {
                using T = decltype(zero);
                T* data = contiguous_of<T>(o, {rows, cols}, true);
                py::gil_scoped_release release;
                const gpu::Resources resources(device, stream_of(o));
                gpu::gaussian_sketch<T>(resources, rows, cols, seed, data);
            });
        },
        py::arg("rows"), py::arg("cols"), py::arg("seed"), py::arg("out"), py::arg("device"),
        "The Philox Gaussian sketch (rows, cols) into out (Fortran-ordered, its dtype), as\n"
        "randomized_svd draws it.");
}

}  // namespace lowrank::bindings
