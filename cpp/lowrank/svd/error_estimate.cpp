#include "lowrank/svd/error_estimate.hpp"

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <vector>

#include "lowrank/common/errors.hpp"
#include "lowrank/common/philox.hpp"
#include "lowrank/kernels/panel.hpp"
#include "lowrank/runtime/parallel.hpp"
#include "lowrank/spectrum/singular_values.hpp"
#include "lowrank/svd/orthonormalize.hpp"

namespace lowrank {

template <class T>
double largest_singular_value(const Matrix<T>& y) {
    const index l = y.cols;
    if (l == 0 || y.rows == 0) return 0;
    Matrix<double> gram(l, l);
    gram_upper(y, gram);
    for (index j = 0; j < l; ++j)
        for (index i = j + 1; i < l; ++i) gram(i, j) = gram(j, i);  // syevd reads 'L'
    std::vector<double> eigenvalues(static_cast<std::size_t>(l));
    symmetric_eigenvalues(gram, eigenvalues.data());
    return std::sqrt(std::max(eigenvalues.back(), 0.0));
}

template <class T>
double residual_frobenius_squared(const MatrixOperator<T>& a, const Matrix<T>& left,
                                  const Matrix<T>& right) {
    // On the row-major M behind A (A, or A^T for column-major A) with M ~ Lm Rm^T, a
    // block of M's rows at a time: the block of Rm Lm^T in a buffer of its own, then
    // the squared differences, summed in double. The parts' sums add in part order.
    const ConstView<T>& view = a.view();
    const ConstView<T> m = view.row_major ? view : view.transposed();
    const Matrix<T>& lm = view.row_major ? left : right;   // M's rows x k
    const Matrix<T>& rm = view.row_major ? right : left;   // M's cols x k
    const index k = lm.cols;
    const index block = 64;
    const int parts =
        static_cast<int>(std::clamp<index>(m.rows / block, 1, a.schedule().threads));
    std::vector<double> sums(static_cast<std::size_t>(parts), 0.0);
    run_parts(parts, [&](int part, int count) {
        const auto [first, last] = part_range(m.rows, 1, part, count);
        Matrix<T> product(m.cols, block);
        double sum = 0;
        for (index r0 = first; r0 < last; r0 += block) {
            if (a.schedule().stop) a.schedule().stop->poll();
            const index rows = std::min(block, last - r0);
            if (k > 0) {
                Blas<T>::gemm('N', 'T', m.cols, rows, k, T(1), rm.data(), rm.ld(),
                              lm.data() + r0, lm.ld(), T(0), product.data(), product.ld());
            }
            for (index i = 0; i < rows; ++i) {
                const T* row = m.data + (r0 + i) * m.ld;
                const T* approx = product.column(i);
                for (index j = 0; j < m.cols; ++j) {
                    const double d = double(row[j]) - (k > 0 ? double(approx[j]) : 0.0);
                    sum += d * d;
                }
            }
        }
        sums[static_cast<std::size_t>(part)] = sum;
    });
    double total = 0;
    for (const double s : sums) total += s;
    return total;
}

template <class T>
ErrorEstimate estimate_residual(const MatrixOperator<T>& a, const Matrix<T>& left,
                                const Matrix<T>& right, Norm norm, index probes, index steps,
                                std::uint64_t seed) {
    ErrorEstimate out;
    if (norm == Norm::Frobenius) {
        out.estimate = std::sqrt(residual_frobenius_squared(a, left, right));
        out.bound = out.estimate;
        return out;
    }
    const index n = a.cols();
    const index r = std::min(probes, n);
    // E W = A W - L (Rt^T W) and E^T Y = A^T Y - Rt (L^T Y).
    const auto apply = [&](const Matrix<T>& w, Matrix<T>& y) {
        a.times(w, y);
        subtract_product(y, left, inner(right, w));
    };
    const auto apply_transposed = [&](const Matrix<T>& y, Matrix<T>& z) {
        a.times_transposed(y, z);
        subtract_product(z, right, inner(left, y));
    };
    Matrix<T> w(n, r), y, z;
    philox::fill_gaussian(seed, 0, static_cast<std::uint64_t>(n * r), w.data(),
                          kErrorProbeStream);
    apply(w, y);
    // HMT Lemma 4.1 (alpha = 10): ||E|| <= 10 sqrt(2/pi) max_i ||E w_i|| with
    // probability at least 1 - 10^-r.
    const std::vector<double> norms = column_norms(y);
    const double largest_probe = *std::max_element(norms.begin(), norms.end());
    const double hmt = 10.0 * std::sqrt(2.0 / 3.14159265358979323846) * largest_probe;
    if (steps == 0) {  // the estimate needs orthonormal probes: E orth(W)
        orthonormalize(w, Orthonormal::final);
        apply(w, y);
    }
    // Power steps: W <- orth(E^T E W), each one raises sigma_1(E W) towards ||E||.
    // (Y is scaled to columns of norm at most 1 first: E^T E W would overflow long
    // before E W does.)
    for (index step = 0; step < steps; ++step) {
        const std::vector<double> sizes = column_norms(y);
        const double size = *std::max_element(sizes.begin(), sizes.end());
        if (!(size > 0)) break;  // E W = 0: E is zero on these probes
        for (T& value : y.values) value = static_cast<T>(double(value) / size);
        apply_transposed(y, z);
        orthonormalize(z, Orthonormal::final);
        apply(z, y);
    }
    out.estimate = largest_singular_value(y);
    out.bound = std::max(hmt, out.estimate);
    return out;
}

template <class T>
ErrorEstimate estimate_error(const ConstView<T>& a, const ConstView<T>& u, const T* s,
                             const ConstView<T>& vh, Norm norm, index probes, index steps,
                             std::uint64_t seed, StopPoll* stop) {
    LOWRANK_EXPECTS(u.rows == a.rows && vh.cols == a.cols && u.cols == vh.rows,
                    "the factors must have shapes (m, k), (k,) and (k, n) for A (m, n)");
    LOWRANK_EXPECTS(probes >= 1, "probes must be >= 1");
    LOWRANK_EXPECTS(steps >= 0, "power_steps must be >= 0");
    LOWRANK_EXPECTS(all_finite(a), "A contains NaN or Inf");
    const index k = u.cols;
    Matrix<T> left = to_matrix(u);
    Matrix<T> right = to_matrix(vh.transposed());
    for (index j = 0; j < k; ++j) {
        T* column = left.column(j);
        for (index i = 0; i < left.rows; ++i) column[i] *= s[j];
    }
    LOWRANK_EXPECTS(all_finite(left.view()) && all_finite(right.view()),
                    "the approximation contains NaN or Inf");
    const int threads = core_threads();
    const SingleThreadedBlas single_threaded_blas;
    const PanelThreads panel_threads(threads);
    const Schedule schedule{index(64) << 20, threads, stop};
    return estimate_residual(MatrixOperator<T>(a, schedule), left, right, norm, probes, steps,
                             seed);
}

#define LOWRANK_INSTANTIATE(T)                                                                \
    template double largest_singular_value<T>(const Matrix<T>&);                              \
    template double residual_frobenius_squared<T>(const MatrixOperator<T>&, const Matrix<T>&, \
                                                  const Matrix<T>&);                          \
    template ErrorEstimate estimate_residual<T>(const MatrixOperator<T>&, const Matrix<T>&,   \
                                                const Matrix<T>&, Norm, index, index,         \
                                                std::uint64_t);                               \
    template ErrorEstimate estimate_error<T>(const ConstView<T>&, const ConstView<T>&,        \
                                             const T*, const ConstView<T>&, Norm, index,      \
                                             index, std::uint64_t, StopPoll*);

LOWRANK_INSTANTIATE(float)
LOWRANK_INSTANTIATE(double)
#undef LOWRANK_INSTANTIATE

}  // namespace lowrank
