// Steps 2-3 of the randomized SVD (Halko, Martinsson, Tropp, SIAM Review 2011):
// the power iterations and an orthonormal basis Q of the range of A's sketch, with
// Bt = A^T Q for the small SVD.
#pragma once

#include <limits>

#include "lowrank/common/matrix.hpp"
#include "lowrank/svd/orthonormalize.hpp"
#include "lowrank/svd/row_blocks.hpp"

namespace lowrank {

// Rounding A to float32 perturbs it by about eps32 ||A||. Through the iterations
// that perturbs the k-th wanted direction by at most about eps32 (sigma_1/sigma_k)^2
// of itself; the leak is mostly orthogonal to the residual, so the spectral error
// moves by far less (the float64 products after the iterations do not amplify it).
// Float32 iterations are kept when that estimate is at most 3e-2. Measured on 2000 x
// 1000 matrices (row-major, 4 iterations, 3 seeds), with spectra 1/i (k = 100 to
// 400), 1/i^1.2, 1/i^1.5, 1/i^2, exp(-i/10) and exp(-i/5):
// up to a panel estimate of 4.1e-2 the error moved by at most 1e-4 of itself, as
// often down as up, as a different sketch moves it (between 1.5e-2 and 3e-2, on
// 1/i to 1/i^1.5 at k = 45 to 300: up by 5e-5 at most, down by 9.3e-5); at 0.24
// (past the limit), by 2.6e-3. (On exp(-i/10) and 1/i^2 it moved by under 1e-8 even
// at estimates above 1.) The estimate comes from `panel`, whose singular values are
// about sigma_i^power times those of Omega (within a factor ~1.3 of each other for a
// Gaussian n x l, n >> l); after one iteration from Omega they underestimate
// sigma_k / sigma_1 (the estimate came out about twice eps32 (sigma_1/sigma_k)^2),
// so the test errs towards float64.
template <class T>
double panel_spread(const Matrix<T>& panel, index k, int power);

// Whether the power iterations may run as one product A^T (A W) each (then one
// orthonormalisation) rather than HMT's two (Algorithm 4.4: W <- orth(A^T orth(A W))),
// from `spread` = (sigma_1 / sigma_k)^2 as panel_spread estimates it (about twice too
// high). In the single product the k-th direction enters at sigma_k^2 beside
// sigma_1^2, and T's rounding moves it by up to about eps * spread of itself; HMT's
// orthonormalisation in between keeps that to eps * sigma_1 / sigma_k. The bound
// 4e-3 is where the measured loss begins (docs/reliability.md, "One product or two
// per power iteration"); past it the iterations are split, at one more pass over A
// per iteration where the fused kernel runs.
template <class T>
bool one_product_suffices(double spread) {
    return double(std::numeric_limits<T>::epsilon()) * spread <= 4e-3;
}

// W <- orth(M^T M W), `iters` times, on the row-major M of `blocks` (rows x cols);
// W is (cols x l). Each iteration reads M once where the kernels run
// (RowBlocks::normal_product), twice on the BLAS path. The
// last W is orthonormal to rounding when `last` is final, else a basis.
template <class T>
void normal_iterations(const RowBlocks<T>& blocks, Matrix<T>& w, index iters,
                       Orthonormal last = Orthonormal::basis);

// Steps 2-3 of the randomized SVD in T: Q (m x l), an orthonormal basis of
// range((A A^T)^q A Omega), and Bt = A^T Q (n x l), running `iters` power
// iterations from `start`: Omega, or (`started`) the panel that float32 iterations
// reached (float32_iterations: W for row-major A, orthonormal Q for column-major).
// HMT's Algorithm 4.4 orthonormalises after every product and reads A twice per
// power iteration. Here each iteration is one product A^T (A W) (normal_iterations)
// with one orthonormalisation (two, HMT's, where the spectrum asks for them:
// power_iterations): the same subspace in exact arithmetic; where the
// kernels run, A is read q + 2 times instead of 2q + 2, and q + 1 times for
// row-major A when the last two products come from one pass
// (orthonormalize_with_product).
template <class T>
void range_finder(const ConstView<T>& a, Matrix<T> start, bool started, index iters, index k,
                  const Schedule& schedule, Matrix<T>& q, Matrix<T>& bt);

}  // namespace lowrank
