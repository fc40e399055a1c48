// An SVD result as the Python layer receives it: (U, S, Vh) NumPy arrays.
#pragma once

#include <pybind11/pybind11.h>

#include <utility>

#include "common/numpy_arrays.hpp"
#include "lowrank/svd/result.hpp"

namespace lowrank::bindings {

template <class T>
py::tuple to_tuple(SvdResult<T>&& r) {
    return py::make_tuple(to_numpy(std::move(r.U)), to_numpy(std::move(r.S)),
                          to_numpy(std::move(r.Vh)));
}

}  // namespace lowrank::bindings
