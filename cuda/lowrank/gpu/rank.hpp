// How much rank a matrix carries, on the GPU: the CPU core's lowrank/spectrum/rank.hpp, name for
// name, on device memory (views and stacks as in svd.hpp). The same threshold
// rules as the CPU core; measures accumulated in double. All work is ordered on
// resources.stream(); each routine synchronises twice: after the NaN/Inf scan of its
// inputs (before any solver runs on them) and at its end.
#pragma once

#include <cstdint>

#include "lowrank/common/matrix.hpp"
#include "lowrank/gpu/resources.hpp"
#include "lowrank/common/rank_options.hpp"

namespace lowrank::gpu {

// Numerical rank of `batch` row-major (m x n) matrices stored one after another.
// `thresholds` (device, `batch` doubles) unless `kind` is Default; `out` (device,
// `batch` int64). `hermitian`: |eigenvalues| of the lower triangle (syevd).
template <class T>
void matrix_rank_batched(const Resources& resources, const T* a, index batch, index m, index n,
                         Threshold kind, const double* thresholds, bool hermitian,
                         std::int64_t* out);

// erank, stable rank or entropy rank of each matrix of a stack; `out` (device, `batch`).
template <class T>
void rank_measure_batched(const Resources& resources, const T* a, index batch, index m,
                          index n, Measure measure, double* out);

// ||A - B|| / ||A||: 0 when A == B == 0, +inf when only A is 0. Returned to the host.
template <class T>
double relative_error(const Resources& resources, const ConstView<T>& a, const ConstView<T>& b,
                      Norm norm);

}  // namespace lowrank::gpu
