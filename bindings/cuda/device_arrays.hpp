// Shared by the CUDA bindings: device arrays arrive as Python objects that export
// __cuda_array_interface__ (CuPy's, version 3; any exporter of version 2 or 3 does),
// together with the device they are on. The bindings read the interface here: data
// pointer, shape, strides, typestr, and the stream, which the call orders all of its
// work on (CuPy's current stream when the interface was read; the legacy default
// stream when the interface names none). Dtype, shape and layout are checked here
// against what each routine reads and writes; the Python layer has already made
// inputs C- or Fortran-contiguous and allocated the outputs.
#pragma once

#include <cuda_runtime_api.h>
#include <pybind11/pybind11.h>

#include <algorithm>
#include <cstdint>
#include <initializer_list>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

#include "common/array_layout.hpp"
#include "lowrank/common/matrix.hpp"
#include "lowrank/gpu/resources.hpp"

namespace lowrank::bindings {

namespace py = pybind11;

// What __cuda_array_interface__ says of one array.
struct DeviceArray {
    const char* name = "";      // the argument's name, for errors
    std::uintptr_t data = 0;
    std::vector<index> shape;
    std::vector<index> strides;  // in bytes; C-contiguous ones where the interface has none
    std::string typestr;         // "<f4", "<f8", "<i8", ...
    std::uintptr_t stream = 0;   // 0: none named (1 and 2: the legacy and per-thread defaults)
};

inline DeviceArray device_array(const py::handle& object, const char* name) {
    if (!py::hasattr(object, "__cuda_array_interface__")) {
        throw py::type_error(std::string(name) + " must be a device array (with "
                             "__cuda_array_interface__), got " +
                             std::string(py::str(py::type::of(object).attr("__name__"))));
    }
    const py::dict interface = object.attr("__cuda_array_interface__");
    if (interface.contains("mask") && !interface["mask"].is_none()) {
        throw std::invalid_argument(std::string(name) + " is a masked device array");
    }
    DeviceArray a;
    a.name = name;
    a.data = py::cast<std::uintptr_t>(py::tuple(interface["data"])[0]);
    a.typestr = py::cast<std::string>(interface["typestr"]);
    for (const py::handle extent : py::tuple(interface["shape"])) {
        a.shape.push_back(py::cast<index>(extent));
    }
    const index item = a.typestr.size() >= 3 ? std::stoll(a.typestr.substr(2)) : 0;
    if (item < 1) throw std::invalid_argument(std::string(name) + ": bad typestr " + a.typestr);
    if (interface.contains("strides") && !interface["strides"].is_none()) {
        for (const py::handle stride : py::tuple(interface["strides"])) {
            a.strides.push_back(py::cast<index>(stride));
        }
        if (a.strides.size() != a.shape.size()) {
            throw std::invalid_argument(std::string(name) + " has strides of another length "
                                        "than its shape");
        }
    } else {
        a.strides.assign(a.shape.size(), item);
        for (std::size_t d = a.shape.size(); d-- > 1;) {
            a.strides[d - 1] = a.strides[d] * std::max<index>(a.shape[d], 1);
        }
    }
    if (interface.contains("stream") && !interface["stream"].is_none()) {
        a.stream = py::cast<std::uintptr_t>(interface["stream"]);
    }
    return a;
}

inline cudaStream_t stream_of(const DeviceArray& a) {
    return reinterpret_cast<cudaStream_t>(a.stream);
}

inline cudaStream_t stream_of(std::uintptr_t stream) {
    return reinterpret_cast<cudaStream_t>(stream);
}

template <class T>
const char* typestr_of() {
    using U = std::remove_const_t<T>;
    static_assert(std::is_same_v<U, float> || std::is_same_v<U, double> ||
                  std::is_same_v<U, std::int64_t>);
    if constexpr (std::is_same_v<U, float>) return "<f4";
    else if constexpr (std::is_same_v<U, double>) return "<f8";
    else return "<i8";
}

// The array's data as T, checking its dtype, number of dimensions and alignment.
template <class T>
T* data_of(const DeviceArray& a, std::size_t ndim) {
    if (a.typestr != typestr_of<T>()) {
        throw py::type_error(std::string(a.name) + " must have typestr " + typestr_of<T>() +
                             ", got " + a.typestr);
    }
    if (a.shape.size() != ndim) {
        throw std::invalid_argument(std::string(a.name) + " must be " + std::to_string(ndim) +
                                    "-D");
    }
    if (a.data % alignof(T) != 0) {
        throw std::invalid_argument(std::string(a.name) + " is not aligned for its dtype");
    }
    return reinterpret_cast<T*>(a.data);
}

// A read-only view on a 2-D device array in either contiguous layout (the rule of
// array_layout.hpp, shared with the NumPy arrays of the CPU bindings).
template <class T>
ConstView<T> view_of(const DeviceArray& a) {
    const T* data = data_of<const T>(a, 2);
    return contiguous_view(data, a.shape[0], a.shape[1], a.strides[0], a.strides[1], a.name);
}

// Whether the strides are those of a C-ordered (or, `fortran`, Fortran-ordered) array
// of `item`-byte values; the strides of length-1 axes carry no meaning.
inline bool contiguous(const DeviceArray& a, bool fortran, index item) {
    const std::size_t n = a.shape.size();
    index expected = item;
    for (std::size_t i = 0; i < n; ++i) {
        const std::size_t d = fortran ? i : n - 1 - i;
        if (a.shape[d] > 1 && a.strides[d] != expected) return false;
        expected *= std::max<index>(a.shape[d], 1);
    }
    return true;
}

// The data of a C-contiguous (or, `fortran`, Fortran-contiguous) device array with
// `ndim` dimensions (a stack the routine reads), checked.
template <class T>
T* contiguous_with_ndim(const DeviceArray& a, std::size_t ndim, bool fortran) {
    T* data = data_of<T>(a, ndim);
    if (!contiguous(a, fortran, static_cast<index>(sizeof(T)))) {
        throw std::invalid_argument(std::string(a.name) + " must be " +
                                    (fortran ? "Fortran" : "C") + "-contiguous");
    }
    return data;
}

// The same for an array of exactly `shape` (an output the routine writes).
template <class T>
T* contiguous_of(const DeviceArray& a, std::initializer_list<index> shape, bool fortran) {
    T* data = contiguous_with_ndim<T>(a, shape.size(), fortran);
    if (a.shape != std::vector<index>(shape)) {
        std::string listed;
        for (const index extent : shape) {
            listed += (listed.empty() ? "" : ", ") + std::to_string(extent);
        }
        throw std::invalid_argument(std::string(a.name) + " must have shape (" + listed + ")");
    }
    return data;
}

// Calls f(T{}) for the dtype of a device array: float32 or float64.
template <class F>
auto dispatch(const DeviceArray& a, F&& f) {
    if (a.typestr == "<f4") return f(float{});
    if (a.typestr == "<f8") return f(double{});
    throw py::type_error(std::string(a.name) + " must be float32 or float64, got typestr " +
                         a.typestr);
}

}  // namespace lowrank::bindings
