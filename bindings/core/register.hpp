// What module.cpp calls, once each: one registration function per area, the
// _testing submodule's, and the installation of SciPy's BLAS/LAPACK.
#pragma once

#include <pybind11/pybind11.h>

namespace lowrank::bindings {

void register_svd(pybind11::module_& m);
void register_rank(pybind11::module_& m);
void register_bottleneck(pybind11::module_& m);
void register_blocks(pybind11::module_& m);
void register_sparse(pybind11::module_& m);
void register_testing(pybind11::module_& testing);

// Points the core's BLAS/LAPACK table at SciPy's (scipy_blas_lapack.cpp).
void install_scipy_blas_lapack();

}  // namespace lowrank::bindings
