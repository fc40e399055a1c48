#include "lowrank/svd/adaptive.hpp"

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <limits>
#include <optional>
#include <utility>
#include <vector>

#include "lowrank/backend/blas_lapack.hpp"
#include "lowrank/backend/lapack.hpp"
#include "lowrank/common/errors.hpp"
#include "lowrank/common/philox.hpp"
#include "lowrank/kernels/panel.hpp"
#include "lowrank/runtime/parallel.hpp"
#include "lowrank/svd/error_estimate.hpp"
#include "lowrank/svd/mixed_precision.hpp"
#include "lowrank/svd/operator.hpp"
#include "lowrank/svd/orthonormalize.hpp"
#include "lowrank/svd/small_svd.hpp"

namespace lowrank {

namespace {

// HMT Lemma 4.1: ||E||_2 <= alpha sqrt(2 / pi) max_i ||E w_i|| for r Gaussian w_i,
// except with probability alpha^-r. The blocks' probes take alpha = 10^(16 / r), so
// every check fails with probability at most 1e-16 (alpha = 10 for 16 probes; the
// wider blocks of the rank search get a tighter bound at the same odds).
double probe_factor(index probes) {
    return std::pow(10.0, 16.0 / double(probes)) * std::sqrt(2.0 / 3.14159265358979323846);
}

// The spectral estimate (estimate_residual) approaches ||A - U S Vh||_2 from below;
// after its power steps it is within a few percent on clustered spectra (1/i), so
// a rank is accepted only when the estimate is this far below tol ||A||_2.
constexpr double kSpectralMargin = 0.95;

// The blocks of the test matrix: consecutive columns of the Philox sketch for the
// seed (column j of every sketch of n rows is the same, philox.hpp), or of a given
// one.
template <class T>
class SketchColumns {
  public:
    SketchColumns(index n, std::uint64_t seed, const ConstView<T>* given)
        : n_(n), seed_(seed), given_(given) {}
    index left() const {
        return given_ ? given_->cols - drawn_ : std::numeric_limits<index>::max();
    }
    Matrix<T> draw(index count) {
        Matrix<T> omega(n_, count);
        if (given_) {
            for (index j = 0; j < count; ++j)
                for (index i = 0; i < n_; ++i) omega(i, j) = (*given_)(i, drawn_ + j);
        } else {
            philox::fill_gaussian(seed_, static_cast<std::uint64_t>(drawn_ * n_),
                                  static_cast<std::uint64_t>(count * n_), omega.data());
        }
        drawn_ += count;
        return omega;
    }

  private:
    index n_;
    std::uint64_t seed_;
    const ConstView<T>* given_;
    index drawn_ = 0;
};

// The basis grown so far: Q (m x l, orthonormal) and Bt = A^T Q (n x l).
template <class T>
struct Basis {
    Matrix<T> q, bt;
    double captured = 0;       // ||B||_F^2, summed block by block
    double largest_block = 0;  // max over blocks of sigma_1(B_i), at most ||A||_2
    double last_block = 0;     // sigma_1 of the newest B_i: about ||A - Q Q^T A||_2 before it
    index columns() const { return q.cols; }
};

// One block of randQB_EI: from Omega (n x b), Y = (I - Q Q^T) A Omega, whose column
// norms bound the current residual (HMT Lemma 4.1): when `done(bound)` says so, stops
// there and returns the bound. Otherwise `power_iters` power iterations on the
// residual R = A - Q B (R^T R = A^T A - Bt Bt^T, R R^T = (I - QQ^T) A A^T (I - QQ^T)
// on vectors orthogonal to Q), each one pass over A (MatrixOperator::normal), then
// Q_i = orth(Y) against Q (projected out twice: Cholesky-QR leaves what rounding
// brought back), Bt_i = A^T Q_i, appended. Returns nothing then.
template <class T, class Done>
std::optional<double> add_block(const MatrixOperator<T>& a, Basis<T>& basis,
                                const Matrix<T>& omega, index power_iters, Done done) {
    Matrix<T> y, z;
    const bool fused_first = a.row_major() && power_iters > 0;
    if (fused_first) {
        a.normal(omega, z, &y);  // Y = A Omega, Z = A^T A Omega
    } else {
        a.times(omega, y);
    }
    const Matrix<T> c = inner(basis.bt, omega);  // B Omega
    subtract_product(y, basis.q, c);              // Y = R Omega
    const std::vector<double> norms = column_norms(y);
    const double bound = probe_factor(omega.cols) * *std::max_element(norms.begin(), norms.end());
    if (done(bound)) return bound;

    if (a.row_major()) {
        // The iterations on the side of A's rows: W <- orth(R^T R W).
        if (power_iters > 0) {
            subtract_product(z, basis.bt, c);  // R^T R Omega
            orthonormalize(z, Orthonormal::basis);
            Matrix<T> w = std::move(z);
            for (index it = 1; it < power_iters; ++it) {
                a.normal(w, z, nullptr);
                subtract_product(z, basis.bt, inner(basis.bt, w));
                orthonormalize(z, Orthonormal::basis);
                std::swap(w, z);
            }
            a.times(w, y);
            subtract_product(y, basis.q, inner(basis.bt, w));  // Y = R W
        }
    } else {
        // On the side of A's columns: Y <- orth((I - QQ^T) A A^T Y).
        for (index it = 0; it < power_iters; ++it) {
            project_out(basis.q, y);
            orthonormalize(y, Orthonormal::basis);
            a.normal(y, z, nullptr);  // A A^T Y
            project_out(basis.q, z);
            std::swap(y, z);
        }
    }
    project_out(basis.q, y);
    orthonormalize(y, Orthonormal::final);
    project_out(basis.q, y);
    orthonormalize(y, Orthonormal::final);
    Matrix<T> bt;
    a.times_transposed(y, bt);  // Bt_i = A^T Q_i
    basis.captured += frobenius_squared(bt);
    basis.last_block = largest_singular_value(bt);
    basis.largest_block = std::max(basis.largest_block, basis.last_block);
    append_columns(basis.q, y);
    append_columns(basis.bt, bt);
    return std::nullopt;
}

// ||A||_F^2 in double, on the core's threads (parts' sums added in part order).
template <class T>
double frobenius_squared_of(const ConstView<T>& a, int threads) {
    const ConstView<T> m = a.row_major ? a : a.transposed();
    const int parts = static_cast<int>(std::clamp<index>(m.rows / 64, 1, threads));
    std::vector<double> sums(static_cast<std::size_t>(parts), 0.0);
    run_parts(parts, [&](int part, int count) {
        const auto [first, last] = part_range(m.rows, 1, part, count);
        double sum = 0;
        for (index i = first; i < last; ++i) {
            const T* row = m.data + i * m.ld;
            for (index j = 0; j < m.cols; ++j) sum += double(row[j]) * double(row[j]);
        }
        sums[static_cast<std::size_t>(part)] = sum;
    });
    double total = 0;
    for (const double s : sums) total += s;
    return total;
}

// A's largest |entry| (refusing NaN and Inf), and when that is outside the safe
// range of the products (lapack.hpp), a copy of A scaled by a power of two.
template <class T>
std::optional<Matrix<T>> checked_and_scaled(const ConstView<T>& a, int threads, int& exponent) {
    const T largest = largest_entry(a, threads, nullptr);
    LOWRANK_EXPECTS(std::isfinite(largest), "A contains NaN or Inf");
    exponent = 0;
    if (!outside_safe_range(largest)) return std::nullopt;
    exponent = std::ilogb(largest);
    Matrix<T> scaled = to_matrix(a);
    for (T& value : scaled.values) value = std::scalbn(value, -exponent);
    return scaled;
}

// U = Q Ub[:, :k], Vh = V[:, :k]^T with the sign convention.
template <class T>
SvdResult<T> lift(const Matrix<T>& q, const Matrix<T>& ub_t, const Matrix<T>& v,
                  const std::vector<T>& s, index k) {
    const index m = q.rows, n = v.rows, l = q.cols;
    SvdResult<T> out;
    out.U = Matrix<T>(m, k);
    Blas<T>::gemm('N', 'T', m, k, l, T(1), q.data(), q.ld(), ub_t.data(), ub_t.ld(), T(0),
                  out.U.data(), out.U.ld());
    out.S.assign(s.begin(), s.begin() + k);
    out.Vh = Matrix<T>(k, n);
    for (index j = 0; j < n; ++j)
        for (index i = 0; i < k; ++i) out.Vh(i, j) = v(j, i);
    apply_sign_convention(out.U, out.Vh);
    return out;
}

template <class T>
ToleranceSvdResult<T> tolerance_svd(const MatrixOperator<T>& a,
                                    const ToleranceSvdOptions& options,
                                    const ConstView<T>* sketch, int threads) {
    const index m = a.rows(), n = a.cols();
    const index cap = options.max_rank > 0 ? options.max_rank : std::min(m, n);
    const double tol = options.tol;
    const bool spectral = options.norm == Norm::Spectral;
    const double norm_f2 = frobenius_squared_of(a.view(), threads);
    SketchColumns<T> columns(n, options.seed, sketch);
    Basis<T> basis;
    // The Frobenius indicator ||A||_F^2 - ||B||_F^2 (Yu-Gu-Li) loses about
    // eps ||A||_F^2 to cancellation, so the error it gives is only good to about
    // sqrt(eps) ||A||_F: when it says the basis is done, ||A - Q B||_F^2 comes from
    // a pass over A (good to eps ||A||_F), and the loop goes on from that value
    // where it is not.
    double reference = norm_f2, captured_at_reference = 0;
    const auto residual2 = [&] { return reference - (basis.captured - captured_at_reference); };
    const double goal2 = tol * tol * norm_f2;

    for (int round = 0; round < 8; ++round) {
        bool converged = false;
        while (basis.columns() < cap && columns.left() > 0 && !converged) {
            const index b = std::min({options.block_size, cap - basis.columns(), columns.left()});
            const Matrix<T> omega = columns.draw(b);
            const auto done = [&](double bound) {
                // Spectral: the probes certify the basis so far.
                return spectral && basis.columns() > 0 && bound <= tol * basis.largest_block;
            };
            const index before = basis.columns();
            if (add_block(a, basis, omega, options.power_iters, done)) {
                converged = true;
            } else if (spectral) {
                // sigma_1(B_i) estimates the residual of the basis before block i
                // from below, closely after power iterations: the trimming and the
                // check below take care of the rest.
                converged = before > 0 && basis.last_block <= tol * basis.largest_block;
            } else {
                converged = residual2() <= goal2;
            }
        }
        if (spectral) break;
        const double exact = residual_frobenius_squared(a, basis.q, basis.bt);
        reference = exact;
        captured_at_reference = basis.captured;
        if (exact <= goal2 || basis.columns() >= cap || columns.left() == 0) break;
    }

    ToleranceSvdResult<T> out;
    const index l = basis.columns();
    out.basis_columns = l;
    Matrix<T> v(n, l), ub_t(l, l);
    std::vector<T> s(static_cast<std::size_t>(l));
    Matrix<T> bt = std::move(basis.bt);
    small_svd(bt, s.data(), v, ub_t);
    const auto value = [&](index i) { return i < l ? double(s[static_cast<std::size_t>(i)]) : 0.0; };

    if (!spectral) {
        // ||A - Q B_k||_F^2 = ||A - Q B||_F^2 + sum_{j > k} s_j^2: Q B_k lies in
        // range(Q), the residual A - Q B in its complement.
        const double floor = std::max(residual2(), 0.0);
        std::vector<double> tail(static_cast<std::size_t>(l + 1), 0.0);
        for (index j = l - 1; j >= 0; --j)
            tail[static_cast<std::size_t>(j)] = tail[static_cast<std::size_t>(j + 1)] + value(j) * value(j);
        index k = l;
        for (index j = 1; j <= l; ++j) {
            if (floor + tail[static_cast<std::size_t>(j)] <= goal2) {
                k = j;
                break;
            }
        }
        k = std::max<index>(k, 1);
        out.svd = lift(basis.q, ub_t, v, s, k);
        out.error = std::sqrt(floor + tail[static_cast<std::size_t>(k)]);
        out.error_bound = out.error;
        out.norm = std::sqrt(norm_f2);
        out.reached = floor + tail[static_cast<std::size_t>(k)] <= goal2;
        return out;
    }

    // Spectral: the smallest k with s_{k+1} <= tol s_1 (||A - Q B_k||_2 is at least
    // that), then the estimate of the whole error decides, one more triplet at a time.
    const double top = value(0);
    index k = 1;
    while (k < l && value(k) > kSpectralMargin * tol * top) ++k;
    for (;;) {
        out.svd = lift(basis.q, ub_t, v, s, k);
        Matrix<T> left = out.svd.U, right(n, k);
        for (index j = 0; j < k; ++j) {
            T* column = left.column(j);
            for (index i = 0; i < m; ++i) column[i] *= out.svd.S[static_cast<std::size_t>(j)];
            for (index i = 0; i < n; ++i) right(i, j) = out.svd.Vh(j, i);
        }
        const ErrorEstimate e = estimate_residual(a, left, right, Norm::Spectral, options.probes,
                                                  options.error_steps, options.seed);
        out.error = e.estimate;
        out.error_bound = e.bound;
        if (e.estimate <= kSpectralMargin * tol * top || k == l) break;
        ++k;
    }
    out.norm = top;
    out.reached = out.error <= tol * top;
    return out;
}

template <class T>
RankSearch rank_search(const MatrixOperator<T>& a, Threshold kind, double value,
                       const RankSearchOptions& options) {
    const index m = a.rows(), n = a.cols();
    const index cap = options.max_basis > 0 ? options.max_basis : std::min(m, n) / 2;
    const double eps = double(std::numeric_limits<T>::epsilon());
    const double rtol = kind == Threshold::Default ? double(std::max(m, n)) * eps : value;
    // The threshold for sigma_1(A) in [low, high].
    const auto threshold = [&](double sigma) {
        return kind == Threshold::Absolute ? value : rtol * sigma;
    };
    // Rounding of the s_i and of NumPy's own singular values: a few eps sigma_1 per
    // sqrt(min(m, n)).
    const auto margin = [&](double sigma) {
        return 8.0 * eps * std::sqrt(double(std::min(m, n))) * sigma;
    };
    RankSearch out;
    if (cap < 1) return out;  // too small to be worth it: the exact path
    SketchColumns<T> columns(n, options.seed, nullptr);
    Basis<T> basis;
    double bound = std::numeric_limits<double>::infinity();
    for (;;) {
        const index b = basis.columns() == 0 ? options.block_size
                                             : std::max(options.block_size, basis.columns());
        // (Q and the block together stay within min(m, n) columns.)
        const index width = std::min(b, std::min(m, n) - basis.columns());
        const Matrix<T> omega = columns.draw(width);
        const auto done = [&](double probe) {
            bound = probe;
            // Below the threshold with room for the rounding margin and the small
            // s_i the bracket adds to it (see below): then the bracket can settle.
            const double sigma = basis.largest_block;
            return probe + margin(sigma) <= 0.9 * threshold(sigma) ||
                   (kind == Threshold::Absolute && probe == 0);
        };
        if (add_block(a, basis, omega, options.power_iters, done)) break;
        if (basis.columns() >= cap) return out;  // not certified
    }
    const index l = basis.columns();
    out.basis_columns = l;
    out.residual_bound = bound;
    std::vector<T> s(static_cast<std::size_t>(l));
    if (l > 0) {
        Matrix<T> work = basis.bt;
        gesdd<T>('N', work, s.data(), nullptr, nullptr);
    }
    const double s1 = l > 0 ? double(s[0]) : 0.0;
    const double high_sigma = std::sqrt(s1 * s1 + bound * bound);
    const double low = threshold(s1), high = threshold(high_sigma);
    const double slack = margin(high_sigma);
    if (kind != Threshold::Absolute && !(s1 > 0)) return out;  // zero A: the exact path
    index count = 0;
    for (index i = 0; i < l; ++i) {
        const double si = double(s[static_cast<std::size_t>(i)]);
        if (si > high + slack) {
            ++count;
        } else if (!(std::sqrt(si * si + bound * bound) + slack < low)) {
            return out;  // within reach of the threshold: not certified
        }
    }
    // Beyond the basis, sigma_i(A) <= ||A - Q B||_2 <= bound.
    if (!(bound + slack < low)) return out;
    out.rank = count;
    out.certified = true;
    return out;
}

// Runs `run(operator, exponent, threads)` on A, or, when A's largest |entry| puts
// ||A||^2 outside the safe range (checked_and_scaled), on A 2^-exponent, exact to the
// bit; the BLAS single-threaded and the products on the core's threads meanwhile
// (as randomized_svd runs).
template <class T, class Run>
auto on_safe_operator(const ConstView<T>& a, index block_bytes, StopPoll* stop, Run run) {
    const int threads = core_threads();
    const SingleThreadedBlas single_threaded_blas;
    const PanelThreads panel_threads(threads);
    const Schedule schedule{block_bytes, threads, stop};
    int exponent = 0;
    const std::optional<Matrix<T>> scaled = checked_and_scaled(a, threads, exponent);
    return run(MatrixOperator<T>(scaled ? scaled->view() : a, schedule), exponent, threads);
}

}  // namespace

template <class T>
ToleranceSvdResult<T> randomized_svd_to_tolerance(const ConstView<T>& a,
                                                  const ToleranceSvdOptions& options,
                                                  const ConstView<T>* sketch, StopPoll* stop) {
    validate(options, a.rows, a.cols, sketch ? &sketch->rows : nullptr,
             sketch ? &sketch->cols : nullptr);
    if (sketch) LOWRANK_EXPECTS(all_finite(*sketch), "sketch contains NaN or Inf");
    return on_safe_operator(a, options.tuning.block_bytes, stop,
                            [&](const MatrixOperator<T>& op, int exponent, int threads) {
        ToleranceSvdResult<T> out = tolerance_svd(op, options, sketch, threads);
        for (T& value : out.svd.S) value = std::scalbn(value, exponent);
        out.error = std::scalbn(out.error, exponent);
        out.error_bound = std::scalbn(out.error_bound, exponent);
        out.norm = std::scalbn(out.norm, exponent);
        return out;
    });
}

template <class T>
RankSearch randomized_rank(const ConstView<T>& a, Threshold kind, double value,
                           const RankSearchOptions& options, StopPoll* stop) {
    validate(options, a.rows, a.cols);
    if (kind == Threshold::Absolute) {
        LOWRANK_EXPECTS(!(value < 0) && !std::isnan(value), "tol must be >= 0");
    }
    return on_safe_operator(a, options.tuning.block_bytes, stop,
                            [&](const MatrixOperator<T>& op, int exponent, int) {
        const double scaled = kind == Threshold::Absolute ? std::scalbn(value, -exponent) : value;
        RankSearch out = rank_search(op, kind, scaled, options);
        out.residual_bound = std::scalbn(out.residual_bound, exponent);
        return out;
    });
}

#define LOWRANK_INSTANTIATE(T)                                                                 \
    template ToleranceSvdResult<T> randomized_svd_to_tolerance<T>(                            \
        const ConstView<T>&, const ToleranceSvdOptions&, const ConstView<T>*, StopPoll*);     \
    template RankSearch randomized_rank<T>(const ConstView<T>&, Threshold, double,             \
                                           const RankSearchOptions&, StopPoll*);

LOWRANK_INSTANTIATE(float)
LOWRANK_INSTANTIATE(double)
#undef LOWRANK_INSTANTIATE

}  // namespace lowrank
