// Singular values without vectors (and the eigenvalues of a symmetric matrix), as
// NumPy computes them, or faster by two-stage reduction for large matrices.
#pragma once

#include "lowrank/common/matrix.hpp"

namespace lowrank {

// All min(m, n) singular values of a, descending, written to `out`. Small matrices
// as NumPy computes them (gesdd, no vectors, on the column-major matrix); from
// two_stage_pays on (band_reduction.hpp) by two_stage_singular_values, faster from
// there (docs/benchmarks-history.md, "Rank and singular values"), with errors of the
// same size (not the same bits).
template <class T>
void singular_values(const ConstView<T>& a, T* out);

// The same by two-stage reduction whatever the size (band_reduction.hpp), on a copy
// of A or A^T, whichever has rows >= cols, scaled by a power of two outside LAPACK's
// safe range as gesdd scales.
template <class T>
void two_stage_singular_values(const ConstView<T>& a, T* out);

// The same by LAPACK gesdd whatever the size: numpy.linalg.svd's routine.
template <class T>
void gesdd_singular_values(const ConstView<T>& a, T* out);

// The same for `batch` row-major (m x n) matrices stored one after another.
template <class T>
void singular_values_batched(const T* a, index batch, index m, index n, T* out);

// The eigenvalues of the symmetric matrix in the lower triangle of `work` (n x n,
// overwritten), ascending, written to `out` (LAPACK syevd, no vectors, as
// numpy.linalg.eigvalsh computes them).
template <class T>
void symmetric_eigenvalues(Matrix<T>& work, T* out);

}  // namespace lowrank
