// Steps 2-3 of the randomized SVD (Halko, Martinsson, Tropp, SIAM Review 2011):
// the power iterations and an orthonormal basis Q of the range of A's sketch, with
// Bt = A^T Q for the small SVD.
#pragma once

#include <limits>

#include "lowrank/common/matrix.hpp"
#include "lowrank/svd/linear_map.hpp"
#include "lowrank/svd/orthonormalize.hpp"
#include "lowrank/svd/row_blocks.hpp"

namespace lowrank {

// (sigma_1 / sigma_k)^2 of A, estimated from `panel` after `power` products with A
// or A^T A (+inf when the panel cannot tell): what decides whether the iterations
// may run below the working precision (mixed_precision.hpp) and how many products
// an iteration takes (one_product_suffices). The panel's singular values are about
// sigma_i^power times those of Omega (within a small factor of each other for a
// Gaussian n x l, n >> l); after one iteration from Omega they underestimate
// sigma_k / sigma_1, so the estimate comes out about twice too high and the tests
// that use it err towards the higher precision.
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

// The same on a matrix known by its products (linear_map.hpp): `map` is A itself
// (`of_a`) or A^T, the products run as the map runs them (its own threads), and
// the iterations start from Omega (n x l). With `map` = A, Q and Bt come from the
// one pass Y = A W, Z = A^T Y where that is accurate, as for row-major A.
template <class T>
void range_finder(const LinearMap<T>& map, bool of_a, Matrix<T> omega, index iters, index k,
                  Matrix<T>& q, Matrix<T>& bt);

}  // namespace lowrank
