#include "lowrank/svd/range_finder.hpp"

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <limits>
#include <utility>
#include <vector>

#include "lowrank/backend/blas_lapack.hpp"
#include "lowrank/backend/lapack.hpp"
#include "lowrank/kernels/panel.hpp"
#include "lowrank/spectrum/singular_values.hpp"

namespace lowrank {

template <class T>
double panel_spread(const Matrix<T>& panel, index k, int power) {
    // The panel's squared singular values are the eigenvalues of its Gram matrix,
    // formed in float64 (a small fraction of the cost of gesdd of the panel);
    // ascending.
    const index l = panel.cols;
    Matrix<double> gram(l, l);
    gram_upper(panel, gram);
    for (index j = 0; j < l; ++j)
        for (index i = j + 1; i < l; ++i) gram(i, j) = gram(j, i);  // syevd reads 'L'

    std::vector<double> eigenvalues(static_cast<std::size_t>(l));
    symmetric_eigenvalues(gram, eigenvalues.data());
    const double largest = eigenvalues.back();
    const double kth = eigenvalues[static_cast<std::size_t>(l - k)];
    if (!(kth > 0) || !std::isfinite(largest)) return std::numeric_limits<double>::infinity();
    return std::pow(largest / kth, 1.0 / power);  // (sigma_1 / sigma_k)^2
}

template <class T>
void normal_iterations(const RowBlocks<T>& blocks, Matrix<T>& w, index iters,
                       Orthonormal last) {
    if (iters <= 0) return;
    Matrix<T> z(w.rows, w.cols);
    for (index it = 0; it < iters; ++it) {
        blocks.normal_product(w, z);
        orthonormalize(z, it + 1 == iters ? last : Orthonormal::basis);
        std::swap(w, z);
    }
}


namespace {

// W <- orth(M^T M W), `iters` times, on the row-major M of `blocks`, as one product
// or two per iteration (one_product_suffices) by `spread`, or, when that is NaN (not
// yet known), by the spread the first iteration's M W shows: the fused kernel keeps
// M W on the way (one pass over M), and a split first iteration reuses it.
template <class T, class Blocks>
void power_iterations(const Blocks& blocks, Matrix<T>& w, index iters, index k, double spread,
                      Orthonormal last = Orthonormal::basis) {
    Matrix<T> z(w.rows, w.cols), y;
    for (index it = 0; it < iters; ++it) {
        if (std::isnan(spread)) {
            blocks.normal_product(w, z, &y);
            spread = panel_spread(y, k, 1);
            if (!one_product_suffices<T>(spread)) {
                orthonormalize(y, Orthonormal::basis);
                blocks.multiply_transposed(y, z);
            }
        } else if (one_product_suffices<T>(spread)) {
            blocks.normal_product(w, z);
        } else {
            if (y.rows != blocks.rows() || y.cols != w.cols) y = Matrix<T>(blocks.rows(), w.cols);
            blocks.multiply(w, y);
            orthonormalize(y, Orthonormal::basis);
            blocks.multiply_transposed(y, z);
        }
        orthonormalize(z, it + 1 == iters ? last : Orthonormal::basis);
        std::swap(w, z);
    }
}

// Q = orth(Y) and Bt = A^T Q from Y = A W and Z = A^T Y, without another pass over
// A: Cholesky-QR2 gives Q = Y R^-1 (R upper triangular, R^T R = Y^T Y), so
// A^T Q = Z R^-1. In exact arithmetic that is the same Bt as a product with Q. In
// rounding, Z's error may be amplified by up to cond(Y), so the step is taken only
// when eps (sigma_1 / sigma_l) (sigma_1 / sigma_{k+1}) <= 1, from Y's singular
// values (about A's: W spans A's leading right singular space). That bound is far
// from reached: the amplified error lies mostly in the directions beyond the k kept
// (with the limit lifted, the error, the singular values and U's orthonormality
// stayed at the extra pass's far past it: docs/benchmarks-history.md, "Randomized
// SVD: precision"). Returns false,
// leaving Y and Z as they were, when the estimate or a Cholesky step refuses (Y
// rank-deficient); the caller then orthonormalises Y and multiplies.
template <class T>
bool orthonormalize_with_product(Matrix<T>& y, Matrix<T>& z, index k) {
    const index m = y.rows, l = y.cols;
    if (m < 4 * l || l == 0) return false;
    // The steps work in float64 on panels of T (cholesky_qr_step); Y and Z change only
    // once every check has passed.
    Matrix<double> r1(l, l), r2(l, l);  // end as R1^-1 and R2^-1
    if (!cholesky_inverse_factor(y, r1)) return false;
    // Y's singular values are R1's, the reciprocals of R1^-1's (descending: s).
    Matrix<double> work = r1;
    std::vector<double> s(static_cast<std::size_t>(l));
    gesdd<double>('N', work, s.data(), nullptr, nullptr);
    const double first = 1 / s.back(), last = 1 / s.front();
    const double next = 1 / s[static_cast<std::size_t>(l - 1 - std::min(k, l - 1))];
    const double estimate =
        double(std::numeric_limits<T>::epsilon()) * (first / last) * (first / next);
    if (!(estimate <= 1.0)) return false;
    if (one_cholesky_step_suffices<T>(first / last)) {
        times_upper(y, r1);
    } else {
        Matrix<T> q = y;
        times_upper(q, r1);
        if (!cholesky_qr_step(q, r2)) return false;
        y = std::move(q);
        // Bt = Z R1^-1 R2^-1, with the two small factors multiplied first.
        Blas<double>::trmm('R', 'U', 'N', 'N', l, l, 1.0, r2.data(), r2.ld(), r1.data(),
                           r1.ld());
    }
    times_upper(z, r1);
    return true;
}

// Steps 2-3 on `blocks`, the products of A itself (`of_a`: blocks are rows of A, as
// for row-major A) or of A^T (rows of A^T, columns of A, as for column-major A).
template <class T, class Blocks>
void find_range(const Blocks& blocks, bool of_a, Matrix<T> start, bool started, index iters,
                index k, Matrix<T>& q, Matrix<T>& bt) {
    const index l = start.cols;
    if (of_a) {
        // Blocks are rows of A: W <- orth(A^T A W) from W = start, then Q = orth(A W)
        // and Bt = A^T Q, both from the one pass Y = A W, Z = A^T Y where that is
        // accurate (orthonormalize_with_product), else with a pass for A^T Q.
        power_iterations(blocks, start, iters, k, std::numeric_limits<double>::quiet_NaN());
        if (blocks.rows() >= 4 * l) {  // tall enough for Cholesky-QR
            blocks.normal_product(start, bt, &q);
            if (orthonormalize_with_product(q, bt, k)) return;
        } else {
            blocks.multiply(start, q);
        }
        orthonormalize(q);
        blocks.multiply_transposed(q, bt);  // Bt = A^T Q
    } else {
        // Blocks are rows of A^T (columns of A): Q = orth(A Omega), Q <- orth(A A^T Q).
        double spread = std::numeric_limits<double>::quiet_NaN();
        if (started) {
            q = std::move(start);
        } else {
            blocks.multiply_transposed(start, q);  // A Omega = (A^T)^T Omega
            if (iters > 0) spread = panel_spread(q, k, 1);
            orthonormalize(q, iters > 0 ? Orthonormal::basis : Orthonormal::final);
        }
        power_iterations(blocks, q, iters, k, spread, Orthonormal::final);
        blocks.multiply(q, bt);  // Bt = A^T Q
    }
}

}  // namespace

template <class T>
void range_finder(const ConstView<T>& a, Matrix<T> start, bool started, index iters, index k,
                  const Schedule& schedule, Matrix<T>& q, Matrix<T>& bt) {
    const index l = start.cols;
    if (a.row_major) {
        find_range(RowBlocks<T>(a, l, schedule), true, std::move(start), started, iters, k, q, bt);
    } else {
        find_range(RowBlocks<T>(a.transposed(), l, schedule), false, std::move(start), started,
                   iters, k, q, bt);
    }
}

template <class T>
void range_finder(const LinearMap<T>& map, bool of_a, Matrix<T> omega, index iters, index k,
                  Matrix<T>& q, Matrix<T>& bt) {
    find_range(map, of_a, std::move(omega), false, iters, k, q, bt);
}

#define LOWRANK_INSTANTIATE(T)                                                               \
    template double panel_spread<T>(const Matrix<T>&, index, int);                          \
    template void normal_iterations<T>(const RowBlocks<T>&, Matrix<T>&, index, Orthonormal); \
    template void range_finder<T>(const ConstView<T>&, Matrix<T>, bool, index, index,       \
                                  const Schedule&, Matrix<T>&, Matrix<T>&);                 \
    template void range_finder<T>(const LinearMap<T>&, bool, Matrix<T>, index, index,       \
                                  Matrix<T>&, Matrix<T>&);

LOWRANK_INSTANTIATE(float)
LOWRANK_INSTANTIATE(double)
#undef LOWRANK_INSTANTIATE

}  // namespace lowrank
