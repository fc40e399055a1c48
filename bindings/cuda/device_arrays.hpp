// Shared by the CUDA bindings: device arrays arrive from lowrank_core._cuda_api as
// plain integers (CuPy's data pointers, shapes, the leading dimension and the layout)
// together with the device and CuPy's current stream. Bindings only translate these
// and the errors; the Python layer has already checked dtypes, shapes and layouts.
#pragma once

#include <pybind11/pybind11.h>

#include <cstdint>
#include <string>
#include <tuple>

#include "lowrank/common/matrix.hpp"
#include "lowrank/gpu/resources.hpp"

namespace lowrank::bindings {

namespace py = pybind11;

// (data pointer, rows, cols, leading dimension, row_major) of a 2-D device array.
using ViewArgs = std::tuple<std::uintptr_t, index, index, index, bool>;

template <class T>
ConstView<T> view_of(const ViewArgs& args) {
    const auto& [pointer, rows, cols, ld, row_major] = args;
    return {reinterpret_cast<const T*>(pointer), rows, cols, ld, row_major};
}

template <class T>
T* device_pointer(std::uintptr_t pointer) {
    return reinterpret_cast<T*>(pointer);
}

inline cudaStream_t stream_of(std::uintptr_t stream) {
    return reinterpret_cast<cudaStream_t>(stream);
}

// Calls f<float> or f<double> for a dtype name.
template <class F>
auto dispatch(const std::string& dtype, F&& f) {
    if (dtype == "float32") return f(float{});
    if (dtype == "float64") return f(double{});
    throw std::invalid_argument("dtype must be 'float32' or 'float64', got " + dtype);
}

}  // namespace lowrank::bindings
