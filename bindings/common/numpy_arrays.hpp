// Shared by the CPU bindings: NumPy arrays <-> the core's views and matrices.
// Bindings only translate arrays and errors; the Python layer has already
// checked dtypes and made every array C- or Fortran-contiguous.
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "common/array_layout.hpp"
#include "lowrank/common/matrix.hpp"

namespace lowrank::bindings {

namespace py = pybind11;

// NumPy allows views whose data is not aligned for their dtype (a float64 view at
// an odd byte offset); the core reads T directly, so it refuses them. The Python
// layer copies such arrays before they get here.
template <class T>
void require_aligned(const py::array_t<T>& array, const char* name) {
    if (array.size() > 0 && reinterpret_cast<std::uintptr_t>(array.data()) % alignof(T) != 0) {
        throw std::invalid_argument(std::string(name) + " is not aligned for its dtype");
    }
}

// A read-only view on a 2-D array in either contiguous layout.
template <class T>
ConstView<T> view_of(const py::array_t<T>& array, const char* name) {
    if (array.ndim() != 2) {
        throw std::invalid_argument(std::string(name) + " must be 2-D");
    }
    require_aligned(array, name);
    return contiguous_view(array.data(), array.shape(0), array.shape(1), array.strides(0),
                           array.strides(1), name);
}

// Hands a vector (std::vector or a Matrix's AlignedVector) to NumPy without a copy;
// the array owns it from then on.
template <class Vector>
py::array_t<typename Vector::value_type> adopt(Vector&& values, std::vector<py::ssize_t> shape,
                                               std::vector<py::ssize_t> strides) {
    using Owned = std::decay_t<Vector>;
    auto* owned = new Owned(std::move(values));
    py::capsule owner(owned, [](void* p) { delete static_cast<Owned*>(p); });
    return py::array_t<typename Vector::value_type>(std::move(shape), std::move(strides),
                                                    owned->data(), owner);
}

// A column-major core matrix as a (rows, cols) Fortran-ordered NumPy array.
template <class T>
py::array_t<T> to_numpy(Matrix<T>&& m) {
    const auto rows = static_cast<py::ssize_t>(m.rows), cols = static_cast<py::ssize_t>(m.cols);
    const auto item = static_cast<py::ssize_t>(sizeof(T));
    return adopt(std::move(m.values), {rows, cols}, {item, item * std::max<py::ssize_t>(rows, 1)});
}

template <class T>
py::array_t<T> to_numpy(std::vector<T>&& v) {
    const auto n = static_cast<py::ssize_t>(v.size());
    return adopt(std::move(v), {n}, {static_cast<py::ssize_t>(sizeof(T))});
}

// A C-contiguous stack (batch, m, n), as the Python layer passes stacks.
template <class T>
struct Stack {
    const T* data;
    index batch, rows, cols;
};

template <class T>
Stack<T> stack_of(const py::array_t<T>& array, const char* name) {
    if (array.ndim() != 3 || !(array.flags() & py::array::c_style)) {
        throw std::invalid_argument(std::string(name) +
                                    " must be a C-contiguous (batch, m, n) stack");
    }
    require_aligned(array, name);
    return {array.data(), array.shape(0), array.shape(1), array.shape(2)};
}

}  // namespace lowrank::bindings
