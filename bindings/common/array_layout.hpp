// Shared by the CPU and CUDA bindings: which core view a 2-D array is, from its data
// pointer, shape and byte strides (NumPy's, or those of __cuda_array_interface__).
#pragma once

#include <algorithm>
#include <stdexcept>
#include <string>

#include "lowrank/common/matrix.hpp"

namespace lowrank::bindings {

// A read-only view on a 2-D array in either contiguous layout: rows of `cols` values
// `s0` bytes apart (row-major), or columns of `rows` values `s1` bytes apart
// (column-major). Strides of length-1 axes carry no meaning and count as contiguous.
template <class T>
ConstView<T> contiguous_view(const T* data, index rows, index cols, index s0, index s1,
                             const char* name) {
    const index item = static_cast<index>(sizeof(T));
    const bool unit_cols = cols <= 1 || s1 == item;
    const bool unit_rows = rows <= 1 || s0 == item;
    if (unit_cols && (rows <= 1 || (s0 % item == 0 && s0 / item >= cols))) {
        return {data, rows, cols, rows <= 1 ? std::max<index>(cols, 1) : s0 / item, true};
    }
    if (unit_rows && (cols <= 1 || (s1 % item == 0 && s1 / item >= rows))) {
        return {data, rows, cols, cols <= 1 ? std::max<index>(rows, 1) : s1 / item, false};
    }
    throw std::invalid_argument(std::string(name) + " must be C- or Fortran-contiguous");
}

}  // namespace lowrank::bindings
