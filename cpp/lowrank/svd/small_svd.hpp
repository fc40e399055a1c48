// Step 4 of the randomized SVD (Halko, Martinsson, Tropp, SIAM Review 2011): the
// SVD of the small matrix B = Q^T A, taken as its transpose Bt = A^T Q (n x l).
#pragma once

#include "lowrank/common/matrix.hpp"
#include "lowrank/svd/result.hpp"

namespace lowrank {

// Step 4 of the randomized SVD: the thin SVD of the tall Bt (n x l), Bt = V diag(s)
// Ub^T (V n x l, Ub^T l x l). gesdd of the tall panel spends most of its time in its
// own Householder QR; instead Bt = Qb R by Cholesky-QR2 in float64, then the l x l
// R = Ur diag(s) Vr^T by gesdd, so V = Qb Ur and Ub^T = Vr^T, in less time than
// gesdd of the panel (docs/benchmarks-history.md, "Randomized SVD: per-call costs,
// threads and memory", "Small SVD, sketch and copies").
// Cholesky-QR2 is backward stable, Bt = Qb R + O(eps ||Bt||) with Qb orthonormal to
// rounding, while cond(Bt) stays well below 1 / sqrt(eps): the singular values then
// carry the same O(eps sigma_1) error as gesdd's. So it is taken only when a
// Cholesky step does not refuse and R's own singular values show cond(Bt) <= 1e5
// (1/i spectra give l, for instance); gesdd of Bt otherwise (rank-deficient or
// steeply decaying panels). A float32 Bt with cond <= 3e3 takes one step
// (one_cholesky_step_suffices), straight from the float32 panel: V = Bt (R^{-1} Ur)
// in float64 by one panel product, without the float64 copies.
template <class T>
void small_svd(Matrix<T>& bt, T* s, Matrix<T>& v, Matrix<T>& ub_t);

// Steps 4-5: the top k triplets of A from Q (m x l, orthonormal) and Bt = A^T Q
// (n x l, overwritten): the small SVD of Bt, U = Q Ub on up to `threads` of the
// core's threads, Vh = V^T, and the sign convention (result.hpp).
template <class T>
SvdResult<T> svd_from_range(const Matrix<T>& q, Matrix<T>& bt, index k, int threads);

}  // namespace lowrank
