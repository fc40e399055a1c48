// CUDA bindings for the rank area: matrix_rank, erank, stable_rank, entropy_rank,
// relative_error. Stacks are C-contiguous (batch, m, n) device arrays; outputs are
// caller-owned device arrays (allocated by lowrank_core._cuda_api).
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cstdint>
#include <optional>
#include <string>

#include "cuda/device_arrays.hpp"
#include "lowrank/gpu/rank.hpp"
#include "common/rank_options.hpp"
#include "cuda/register.hpp"

namespace lowrank::bindings {
namespace {

Measure measure_named(const std::string& name) {
    if (name == "erank") return Measure::Effective;
    if (name == "stable_rank") return Measure::Stable;
    if (name == "entropy_rank") return Measure::Entropy;
    throw std::invalid_argument("unknown rank measure " + name);
}

}  // namespace

void register_cuda_rank(py::module_& m) {
    m.def(
        "matrix_rank",
        [](const py::object& a_array, const py::object& thresholds, bool relative,
           bool hermitian, const py::object& out, int device) {
            const DeviceArray a = device_array(a_array, "A");
            dispatch(a, [&](auto zero) {
                using T = decltype(zero);
                const T* data = contiguous_with_ndim<const T>(a, 3, false);
                const index batch = a.shape[0], rows = a.shape[1], cols = a.shape[2];
                const Threshold kind = thresholds.is_none() ? Threshold::Default
                                       : relative           ? Threshold::Relative
                                                            : Threshold::Absolute;
                const double* values =
                    thresholds.is_none()
                        ? nullptr
                        : contiguous_of<const double>(device_array(thresholds, "thresholds"),
                                                      {batch}, false);
                std::int64_t* ranks =
                    contiguous_of<std::int64_t>(device_array(out, "out"), {batch}, false);
                py::gil_scoped_release release;
                const gpu::Resources resources(device, stream_of(a));
                gpu::matrix_rank_batched<T>(resources, data, batch, rows, cols, kind, values,
                                            hermitian, ranks);
            });
        },
        py::arg("A"), py::arg("thresholds"), py::arg("relative"), py::arg("hermitian"),
        py::arg("out"), py::arg("device"),
        "Numerical rank of each matrix of a C-contiguous (batch, m, n) stack into out (batch,)\n"
        "int64; thresholds: None or a (batch,) float64 device array.");
    m.def(
        "rank_measure",
        [](const std::string& measure, const py::object& a_array, const py::object& out,
           int device) {
            const Measure which = measure_named(measure);
            const DeviceArray a = device_array(a_array, "A");
            dispatch(a, [&](auto zero) {
                using T = decltype(zero);
                const T* data = contiguous_with_ndim<const T>(a, 3, false);
                const index batch = a.shape[0], rows = a.shape[1], cols = a.shape[2];
                double* measures = contiguous_of<double>(device_array(out, "out"), {batch}, false);
                py::gil_scoped_release release;
                const gpu::Resources resources(device, stream_of(a));
                gpu::rank_measure_batched<T>(resources, data, batch, rows, cols, which, measures);
            });
        },
        py::arg("measure"), py::arg("A"), py::arg("out"), py::arg("device"),
        "erank, stable_rank or entropy_rank of each matrix of a stack into out (batch,)\n"
        "float64.");
    m.def(
        "relative_error",
        [](const py::object& a_array, const py::object& b_array, const std::string& ord,
           int device) {
            const Norm norm = norm_named(ord);
            const DeviceArray a = device_array(a_array, "A"), b = device_array(b_array, "B");
            return dispatch(a, [&](auto zero) {
                using T = decltype(zero);
                const ConstView<T> va = view_of<T>(a), vb = view_of<T>(b);
                py::gil_scoped_release release;
                const gpu::Resources resources(device, stream_of(a));
                return gpu::relative_error<T>(resources, va, vb, norm);
            });
        },
        py::arg("A"), py::arg("B"), py::arg("ord"), py::arg("device"),
        "||A - B|| / ||A|| with ord '2' or 'fro' (a Python float); B of A's dtype.");
}

}  // namespace lowrank::bindings
