// One registration function per area; module.cpp calls each once.
#pragma once

#include <pybind11/pybind11.h>

namespace lowrank::bindings {

void register_cuda_svd(pybind11::module_& m);
void register_cuda_rank(pybind11::module_& m);
void register_cuda_bottleneck(pybind11::module_& m);

}  // namespace lowrank::bindings
