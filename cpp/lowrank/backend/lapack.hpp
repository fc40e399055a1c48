// LAPACK's drivers on Matrix<T> (column-major, owned): the workspace queries, the
// info checks and the conventions the algorithms rely on, in one place. The
// routines themselves are reached through Blas<T> (blas_lapack.hpp).
#pragma once

#include <cmath>
#include <limits>

#include "lowrank/common/matrix.hpp"

namespace lowrank {

// Thin SVD of a column-major matrix that gesdd may overwrite.
// jobz 'S': U (m x p), S (p), VT (p x n), p = min(m, n); jobz 'N': S only.
template <class T>
void gesdd(char jobz, Matrix<T>& a, T* s, Matrix<T>* u, Matrix<T>* vt);

// Householder QR of the panel Y (m x l, m >= l): Y <- Q (geqrf, then orgqr).
template <class T>
void householder_orthonormalize(Matrix<T>& y);

// Whether A's largest |entry| puts a power iteration's A^T A W outside LAPACK's safe
// range in T (gesdd scales at the same bounds): then randomized_svd runs on a copy
// of A scaled by a power of two. Zero is safe (nothing to scale); NaN is not outside.
template <class T>
bool outside_safe_range(T largest) {
    const T safe_small = std::sqrt(std::numeric_limits<T>::min()) /
                         std::numeric_limits<T>::epsilon();
    return largest > 0 && (largest < safe_small || largest > 1 / safe_small);
}

}  // namespace lowrank
