// CUDA bindings for the rank area: matrix_rank, erank, stable_rank, entropy_rank,
// relative_error.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cstdint>
#include <optional>
#include <string>

#include "cuda/device_arrays.hpp"
#include "cuda/register.hpp"
#include "lowrank/gpu/rank.hpp"

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
        [](const std::string& dtype, std::uintptr_t a, index batch, index rows, index cols,
           std::optional<std::uintptr_t> thresholds, bool relative, bool hermitian,
           std::uintptr_t out, int device, std::uintptr_t stream) {
            dispatch(dtype, [&](auto zero) {
                using T = decltype(zero);
                const Threshold kind = !thresholds ? Threshold::Default
                                       : relative  ? Threshold::Relative
                                                   : Threshold::Absolute;
                const double* values =
                    thresholds ? device_pointer<const double>(*thresholds) : nullptr;
                py::gil_scoped_release release;
                const gpu::Resources resources(device, stream_of(stream));
                gpu::matrix_rank_batched<T>(resources, device_pointer<const T>(a), batch, rows,
                                            cols, kind, values, hermitian,
                                            device_pointer<std::int64_t>(out));
            });
        },
        py::arg("dtype"), py::arg("A"), py::arg("batch"), py::arg("rows"), py::arg("cols"),
        py::arg("thresholds"), py::arg("relative"), py::arg("hermitian"), py::arg("out"),
        py::arg("device"), py::arg("stream"),
        "Numerical rank of each matrix of a C-contiguous (batch, m, n) stack into out "
        "(batch,) int64; thresholds: None or a device pointer to batch float64 values.");
    m.def(
        "rank_measure",
        [](const std::string& dtype, const std::string& measure, std::uintptr_t a, index batch,
           index rows, index cols, std::uintptr_t out, int device, std::uintptr_t stream) {
            const Measure which = measure_named(measure);
            dispatch(dtype, [&](auto zero) {
                using T = decltype(zero);
                py::gil_scoped_release release;
                const gpu::Resources resources(device, stream_of(stream));
                gpu::rank_measure_batched<T>(resources, device_pointer<const T>(a), batch, rows,
                                             cols, which, device_pointer<double>(out));
            });
        },
        py::arg("dtype"), py::arg("measure"), py::arg("A"), py::arg("batch"), py::arg("rows"),
        py::arg("cols"), py::arg("out"), py::arg("device"), py::arg("stream"),
        "erank, stable_rank or entropy_rank of each matrix of a stack into out (batch,) "
        "float64.");
    m.def(
        "relative_error",
        [](const std::string& dtype, const ViewArgs& a, const ViewArgs& b, const std::string& ord,
           int device, std::uintptr_t stream) {
            Norm norm;
            if (ord == "2") {
                norm = Norm::Spectral;
            } else if (ord == "fro") {
                norm = Norm::Frobenius;
            } else {
                throw std::invalid_argument("ord must be 2 or 'fro'");
            }
            return dispatch(dtype, [&](auto zero) {
                using T = decltype(zero);
                py::gil_scoped_release release;
                const gpu::Resources resources(device, stream_of(stream));
                return gpu::relative_error<T>(resources, view_of<T>(a), view_of<T>(b), norm);
            });
        },
        py::arg("dtype"), py::arg("A"), py::arg("B"), py::arg("ord"), py::arg("device"),
        py::arg("stream"), "||A - B|| / ||A|| with ord '2' or 'fro' (a Python float).");
}

}  // namespace lowrank::bindings
