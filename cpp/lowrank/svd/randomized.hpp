// Singular value decompositions: exact (LAPACK gesdd) and randomized
// (Halko, Martinsson, Tropp, "Finding structure with randomness", SIAM Review 2011).
#pragma once

#include <cstdint>
#include <vector>

#include "lowrank/common/interrupt.hpp"
#include "lowrank/common/matrix.hpp"
#include "lowrank/common/svd_options.hpp"

namespace lowrank {

// A = U diag(S) Vh, truncated to k triplets. U is (m x k), Vh is (k x n), both
// column-major; S descends. Sign convention: the largest-magnitude entry of every
// column of U is positive (the first such entry on ties).
template <class T>
struct SvdResult {
    Matrix<T> U;
    std::vector<T> S;
    Matrix<T> Vh;
};

// The top k singular triplets of a, exact. 1 <= k <= min(m, n).
template <class T>
SvdResult<T> exact_svd(const ConstView<T>& a, index k);

// All min(m, n) singular values of a, descending, written to `out`. Small matrices
// as NumPy computes them (gesdd, no vectors, on the column-major matrix); from
// two_stage_pays on (band_reduction.hpp) by two_stage_singular_values, faster from
// there (NumPy takes 1.9-3.7x as long at 1000 x 1000 and 3000 x 2000), with errors of
// the same size (not the same bits).
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

// Randomized SVD. With `sketch` (n x l) the given test matrix replaces the Philox one.
// With `stop`, polled between blocks of A, a stop throws Interrupted.
template <class T>
SvdResult<T> randomized_svd(const ConstView<T>& a, const RandomizedSvdOptions& options,
                            const ConstView<T>* sketch = nullptr, StopPoll* stop = nullptr);

// The Gaussian sketch for a seed: (rows x cols), column-major (see philox.hpp).
template <class T>
Matrix<T> gaussian_sketch(index rows, index cols, std::uint64_t seed);
// The same on up to `threads` threads (identical numbers).
template <class T>
Matrix<T> gaussian_sketch(index rows, index cols, std::uint64_t seed, int threads);

// Flips the sign of column j of U and row j of Vh so that U's largest-magnitude
// entry in column j is positive.
template <class T>
void apply_sign_convention(Matrix<T>& U, Matrix<T>& Vh);

}  // namespace lowrank
