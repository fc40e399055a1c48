#include "lowrank/spectrum/rank.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <type_traits>
#include <utility>
#include <vector>

#include "lowrank/backend/blas_lapack.hpp"
#include "lowrank/common/errors.hpp"
#include "lowrank/runtime/parallel.hpp"
#include "lowrank/spectrum/band_reduction.hpp"
#include "lowrank/spectrum/singular_values.hpp"

namespace lowrank {
namespace {

// |eigenvalues| of the symmetric matrix given by the lower triangle of a, as
// numpy.linalg.eigvalsh(UPLO="L") computes them (syevd on the column-major copy).
template <class T>
void absolute_eigenvalues(const ConstView<T>& a, T* out) {
    LOWRANK_EXPECTS(all_finite(a), "A contains NaN or Inf");
    Matrix<T> work = to_matrix(a);
    symmetric_eigenvalues(work, out);
    for (index i = 0; i < a.rows; ++i) out[i] = std::abs(out[i]);
}

template <class T>
double spectral_norm(Matrix<T>& work) {  // overwrites work
    const index p = std::min(work.rows, work.cols);
    if (p == 0) return 0.0;
    std::vector<T> s(static_cast<std::size_t>(p));
    singular_values(work.view(), s.data());
    return static_cast<double>(s[0]);
}

template <class T>
double frobenius_norm(const Matrix<T>& a) {
    // Scaled sum of squares (as LAPACK's lange/nrm2) so huge or tiny entries do not
    // overflow or underflow.
    double scale = 0.0, sum = 1.0;
    for (const T value : a.values) {
        const double x = std::abs(static_cast<double>(value));
        if (x == 0.0) continue;
        if (scale < x) {
            sum = 1.0 + sum * (scale / x) * (scale / x);
            scale = x;
        } else {
            sum += (x / scale) * (x / scale);
        }
    }
    return scale * std::sqrt(sum);
}

// The measures are scale-invariant, but the singular values of a finite A overflow
// for entries near T's largest value (and lose digits as subnormals near its
// smallest). Such an A is measured on a copy scaled by a power of two (exact) that
// brings its largest entry near 1; elsewhere the copy is empty and A is used as is.
template <class T>
Matrix<T> scaled_to_unit(const ConstView<T>& a) {
    const T largest = max_abs(a);
    if (!(largest > 0) || !std::isfinite(largest)) return {};
    const int exponent = std::ilogb(largest);
    constexpr int bound = std::numeric_limits<T>::max_exponent / 2;
    if (exponent < bound && exponent > -bound) return {};
    Matrix<T> scaled = to_matrix(a);
    for (T& value : scaled.values) value = std::scalbn(value, -exponent);
    return scaled;
}

}  // namespace

template <class T>
void matrix_rank_batched(const T* a, index batch, index m, index n, Threshold kind,
                         const double* thresholds, bool hermitian, std::int64_t* out) {
    LOWRANK_EXPECTS(!hermitian || m == n, "hermitian=True needs square matrices");
    LOWRANK_EXPECTS(kind == Threshold::Default || thresholds != nullptr,
                    "a threshold is required");
    const index p = std::min(m, n);
    const T default_rtol = static_cast<T>(std::max(m, n)) * std::numeric_limits<T>::epsilon();
    // numpy.linalg computes in float64 whatever the input (its _commonType) and rounds
    // the values to the input's dtype before matrix_rank compares them: float32 A is
    // lifted to float64 here too.
    const bool two_stage = !hermitian && two_stage_pays<double>(m, n);
    // Two routines' values differ by rounding: up to tens of eps * s_max (two-stage
    // against gesdd, docs/reliability.md "Numerical rank at the threshold"). A value
    // that close to the threshold, or within two of T's ulps of it, is recomputed by
    // NumPy's own routine, gesdd, so the count is NumPy's.
    const double noise = std::max(64.0, 0.1 * static_cast<double>(std::max(m, n))) *
                         std::numeric_limits<double>::epsilon();
    for_each_matrix_range(batch, [&](index first, index last) {
        std::vector<double> lifted;
        std::vector<double> values(static_cast<std::size_t>(std::max<index>(p, 1)));
        std::vector<T> s(values.size());
        for (index b = first; b < last; ++b) {
            const T* matrix = a + b * m * n;
            const double* data;
            if constexpr (std::is_same_v<T, double>) {
                data = matrix;
            } else {
                lifted.assign(matrix, matrix + m * n);
                data = lifted.data();
            }
            const ConstView<double> view{data, m, n, std::max<index>(n, 1), true};
            const auto count_above = [&](bool gesdd) {
                if (hermitian) {
                    absolute_eigenvalues(view, values.data());
                } else if (gesdd) {
                    gesdd_singular_values(view, values.data());
                } else {
                    singular_values(view, values.data());
                }
                for (index i = 0; i < p; ++i) s[i] = static_cast<T>(values[i]);
                const T s_max = p > 0 ? *std::max_element(s.begin(), s.begin() + p) : T(0);
                double tol;
                std::int64_t count = 0;
                if (kind == Threshold::Default) {
                    const T tol_t = s_max * default_rtol;
                    for (index i = 0; i < p; ++i) count += s[i] > tol_t;
                    tol = static_cast<double>(tol_t);
                } else {
                    tol = kind == Threshold::Absolute ? thresholds[b]
                                                      : static_cast<double>(s_max) * thresholds[b];
                    for (index i = 0; i < p; ++i) count += static_cast<double>(s[i]) > tol;
                }
                const double band = noise * static_cast<double>(s_max) +
                                    2 * static_cast<double>(std::numeric_limits<T>::epsilon()) *
                                        std::abs(tol);
                bool borderline = false;
                for (index i = 0; i < p; ++i) borderline |= std::abs(values[i] - tol) <= band;
                return std::pair{count, borderline};
            };
            auto [count, borderline] = count_above(false);
            if (two_stage && borderline) count = count_above(true).first;
            out[b] = count;
        }
    });
}

template <class T>
double spectral_measure(const T* s, index count, Measure measure) {
    double largest = 0.0;
    for (index i = 0; i < count; ++i) largest = std::max(largest, static_cast<double>(s[i]));
    if (largest == 0.0) return 0.0;  // the zero matrix: rank 0 by every measure
    // Every measure is scale-invariant: work with s / s_max so squares neither
    // overflow nor underflow.
    double sum = 0.0, sum_sq = 0.0;
    for (index i = 0; i < count; ++i) {
        const double v = static_cast<double>(s[i]) / largest;
        sum += v;
        sum_sq += v * v;
    }
    switch (measure) {
        case Measure::Effective:
            return sum * sum / sum_sq;
        case Measure::Stable:
            return sum_sq;
        case Measure::Entropy: {
            double entropy = 0.0;
            for (index i = 0; i < count; ++i) {
                const double p = static_cast<double>(s[i]) / largest / sum;
                if (p > 0.0) entropy -= p * std::log(p);
            }
            return std::exp(entropy);
        }
    }
    return 0.0;
}

template <class T>
void rank_measure_batched(const T* a, index batch, index m, index n, Measure measure,
                          double* out) {
    const index p = std::min(m, n);
    for_each_matrix_range(batch, [&](index first, index last) {
        std::vector<T> s(static_cast<std::size_t>(std::max<index>(p, 1)));
        for (index b = first; b < last; ++b) {
            const ConstView<T> view{a + b * m * n, m, n, std::max<index>(n, 1), true};
            const Matrix<T> scaled = scaled_to_unit(view);
            singular_values(scaled.values.empty() ? view : scaled.view(), s.data());
            out[b] = spectral_measure(s.data(), p, measure);
        }
    });
}

template <class T>
double relative_error(const ConstView<T>& a, const ConstView<T>& b, Norm norm) {
    LOWRANK_EXPECTS(a.rows == b.rows && a.cols == b.cols, "A and B must have the same shape");
    const T largest_a = max_abs(a), largest_b = max_abs(b);
    LOWRANK_EXPECTS(std::isfinite(largest_a), "A contains NaN or Inf");
    LOWRANK_EXPECTS(std::isfinite(largest_b), "B contains NaN or Inf");
    // Near the overflow threshold A - B can overflow, and tiny entries lose digits as
    // subnormals. So A - B is formed with both scaled by one power of two that brings
    // the larger entry near 1, ||A|| from A scaled by its own, and the two powers are
    // put back in double at the end (exact; the ratio may exceed T's range).
    const int exponent = std::max(largest_a, largest_b) > 0
                             ? std::ilogb(std::max(largest_a, largest_b)) : 0;
    const int exponent_a = largest_a > 0 ? std::ilogb(largest_a) : 0;
    Matrix<T> a_copy(a.rows, a.cols), difference(a.rows, a.cols);
    for (index j = 0; j < a.cols; ++j) {
        T* own = a_copy.column(j);
        T* d = difference.column(j);
        for (index i = 0; i < a.rows; ++i) {
            own[i] = std::scalbn(a(i, j), -exponent_a);
            d[i] = std::scalbn(a(i, j), -exponent) - std::scalbn(b(i, j), -exponent);
        }
    }
    double numerator, denominator;
    if (norm == Norm::Frobenius) {
        numerator = frobenius_norm(difference);
        denominator = frobenius_norm(a_copy);
    } else {
        numerator = spectral_norm(difference);
        denominator = spectral_norm(a_copy);
    }
    if (denominator == 0.0) {
        return numerator == 0.0 ? 0.0 : std::numeric_limits<double>::infinity();
    }
    return std::ldexp(numerator / denominator, exponent - exponent_a);
}

#define LOWRANK_INSTANTIATE(T)                                                                \
    template void matrix_rank_batched<T>(const T*, index, index, index, Threshold,             \
                                         const double*, bool, std::int64_t*);                 \
    template double spectral_measure<T>(const T*, index, Measure);                            \
    template void rank_measure_batched<T>(const T*, index, index, index, Measure, double*);   \
    template double relative_error<T>(const ConstView<T>&, const ConstView<T>&, Norm);

LOWRANK_INSTANTIATE(float)
LOWRANK_INSTANTIATE(double)
#undef LOWRANK_INSTANTIATE

}  // namespace lowrank
