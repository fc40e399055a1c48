// Singular value decompositions on the GPU: the CPU core's lowrank/svd/ and
// lowrank/spectrum/singular_values.hpp, name for name, on device memory. Matrices
// are `ConstView`s (lowrank/common/matrix.hpp) whose `data` is
// a device pointer: column-major, or row-major handed to cuBLAS as the transpose of a
// column-major matrix, so the layout of A never costs a copy. Outputs are caller-owned
// device arrays, column-major. All work is ordered on resources.stream() (see
// resources.hpp for the stream contract); each routine that reads a matrix synchronises
// after the NaN/Inf scan of its inputs (no solver is given NaN or Inf) and at its end,
// to check devInfo.
#pragma once

#include <cstdint>

#include "lowrank/common/matrix.hpp"
#include "lowrank/gpu/resources.hpp"
#include "lowrank/common/svd_options.hpp"

namespace lowrank::gpu {

// The top k singular triplets of a, exact (cuSOLVER gesvd, on A or A^T, whichever is
// tall). U: (m x k), ld m; S: k; Vh: (k x n), ld k. The largest-magnitude entry of
// each column of U is positive (the first such entry on ties).
template <class T>
void exact_svd(const Resources& resources, const ConstView<T>& a, index k, T* U, T* S, T* Vh);

// Randomized SVD, the steps of the CPU core's randomized_svd (the same Philox sketch
// for a seed, so the same result to rounding). `sketch` (n x l), if given, replaces
// the Philox test matrix. Outputs as exact_svd.
template <class T>
void randomized_svd(const Resources& resources, const ConstView<T>& a,
                    const RandomizedSvdOptions& options, const ConstView<T>* sketch, T* U,
                    T* S, T* Vh);

// All min(m, n) singular values, descending, of `batch` row-major (m x n) matrices
// stored one after another: out is (batch x min(m, n)), row-major. Matrices with
// m, n <= 32 use the batched Jacobi solver (gesvdjBatched); larger ones gesvd, one
// call per matrix, from one C++ loop and one workspace.
template <class T>
void singular_values_batched(const Resources& resources, const T* a, index batch, index m,
                             index n, T* out);

// The Gaussian sketch for a seed (lowrank/common/philox.hpp): (rows x cols), column-major, ld rows.
template <class T>
void gaussian_sketch(const Resources& resources, index rows, index cols, std::uint64_t seed,
                     T* out);

}  // namespace lowrank::gpu
