// The randomized SVD when the rank is not known: a basis grown a block at a time
// until the residual is below a tolerance (Yu, Gu, Li, "Efficient randomized
// algorithms for the fixed-precision low-rank matrix approximation", SIAM J. Matrix
// Anal. Appl. 39(4), 2018, randQB_EI; Martinsson, Voronin, SIAM J. Sci. Comput.
// 38(5), 2016, randQB_b), with the building blocks of the fixed-rank driver
// (randomized.hpp): the Philox sketch, the one-pass products, Cholesky-QR against
// the basis so far and the small SVD. Two uses: an SVD to a tolerance, and the
// numerical rank of a large matrix of low rank.
#pragma once

#include <cstdint>

#include "lowrank/common/interrupt.hpp"
#include "lowrank/common/matrix.hpp"
#include "lowrank/common/rank_options.hpp"
#include "lowrank/common/svd_options.hpp"
#include "lowrank/svd/result.hpp"

namespace lowrank {

template <class T>
struct ToleranceSvdResult {
    SvdResult<T> svd;          // rank k = svd.S.size()
    double error = 0;          // ||A - U S Vh|| in options.norm (spectral: from below)
    double error_bound = 0;    // spectral: certified upper bound (error_estimate.hpp)
    double norm = 0;           // ||A||_F exactly, or sigma_1 of the basis's B (<= ||A||_2)
    index basis_columns = 0;   // columns of the basis the SVD was taken from
    bool reached = false;      // error <= tol * norm
};

// The smallest rank k (at most options.max_rank) whose U S Vh from the grown basis
// has ||A - U S Vh|| <= tol ||A|| (Frobenius: by ||A||_F^2 - ||B||_F^2, recomputed
// by a pass over A where tol^2 is near T's rounding; spectral: checked by
// estimate_residual). With `sketch` (n x L) its columns, in order, replace the
// Philox blocks, and the basis stops at L columns.
template <class T>
ToleranceSvdResult<T> randomized_svd_to_tolerance(const ConstView<T>& a,
                                                  const ToleranceSvdOptions& options,
                                                  const ConstView<T>* sketch = nullptr,
                                                  StopPoll* stop = nullptr);

struct RankSearch {
    index rank = 0;
    bool certified = false;          // false: the caller must take the exact path
    index basis_columns = 0;
    double residual_bound = 0;       // HMT bound on ||A - Q Q^T A||_2 (prob. 1 - 10^-block)
};

// NumPy's numerical rank (matrix_rank's thresholds, `kind` and `value`) from a
// basis grown until the residual is certified (HMT Lemma 4.1) well below the
// threshold; then the singular values s_i of the small B = Q^T A bracket A's,
// s_i <= sigma_i(A) <= sqrt(s_i^2 + ||A - Q B||_2^2). Certified only when every
// s_i is on one side of the threshold with a margin for rounding; otherwise (or
// when the basis would pass max_basis) not certified.
template <class T>
RankSearch randomized_rank(const ConstView<T>& a, Threshold kind, double value,
                           const RankSearchOptions& options, StopPoll* stop = nullptr);

}  // namespace lowrank
