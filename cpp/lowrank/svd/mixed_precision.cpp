#include "lowrank/svd/mixed_precision.hpp"

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <memory>
#include <optional>
#include <type_traits>
#include <utility>
#include <vector>

#include "lowrank/backend/lapack.hpp"
#include "lowrank/kernels/amx_product.hpp"
#include "lowrank/runtime/parallel.hpp"
#include "lowrank/svd/orthonormalize.hpp"
#include "lowrank/svd/range_finder.hpp"

namespace lowrank {
namespace {

// Writes the row-major view M (rows x cols) times 2^-exponent, rounded to float, to
// `out` (row-major, leading dimension cols).
void scaled_float_copy(const ConstView<double>& m, int exponent, float* out) {
    const double scale = std::ldexp(1.0, -exponent);
    for (index i = 0; i < m.rows; ++i) {
        const double* from = m.data + i * m.ld;
        float* to = out + i * m.cols;
        for (index j = 0; j < m.cols; ++j) to[j] = static_cast<float>(from[j] * scale);
    }
}

// Rows [first, last) of a row-major view as a view.
template <class T>
ConstView<T> row_range(const ConstView<T>& m, index first, index last) {
    return {m.data + first * m.ld, last - first, m.cols, m.ld, true};
}

// How many of `threads` to spread a pass over `entries` values on: at least 2^20 each.
int pass_parts(index entries, int threads) {
    return static_cast<int>(std::clamp<index>(entries >> 20, 1, std::max(1, threads)));
}

// max_abs (matrix.hpp) on up to `threads` threads: a pass over memory that one
// core cannot saturate.
template <class T>
T parallel_max_abs(const ConstView<T>& a, int threads) {
    const ConstView<T> m = a.row_major ? a : a.transposed();  // the same entries
    const int parts = pass_parts(m.rows * m.cols, threads);
    std::vector<T> largest(static_cast<std::size_t>(parts), T(0));
    run_parts(parts, [&](int part, int count) {
        const auto [first, last] = part_range(m.rows, 1, part, count);
        largest[static_cast<std::size_t>(part)] = max_abs(row_range(m, first, last));
    });
    return *std::max_element(largest.begin(), largest.end());  // +inf wins
}

// Whether float32 iterations find the subspace well enough for a float64 result,
// from panel_spread. Rounding A to float32 perturbs it by about eps32 ||A||. Through
// the iterations that perturbs the k-th wanted direction by at most about eps32
// (sigma_1/sigma_k)^2 of itself; the leak is mostly orthogonal to the residual, so
// the spectral error moves by far less (the float64 products after the iterations
// do not amplify it). Float32 iterations are kept while that estimate is at most
// 3e-2, where the error moves no more than a different sketch moves it
// (docs/benchmarks-history.md, "Randomized SVD: precision", "Float32 iterations for
// float64").
bool float_iterations_suffice(double spread) {
    return double(std::numeric_limits<float>::epsilon()) * spread <= 3e-2;
}

// Whether the power iterations can go on with A whose largest |entry| that is.
bool iterations_can_use(float largest) {
    return std::isfinite(largest) && !outside_safe_range(largest);
}

// The first power iteration's product z = M^T M Omega (cols x l) and its
// panel_spread (k wanted): on AMX when it runs there and the spread it shows is within
// amx_limit (it is an estimate from a product off by 2^-16 ||M||^2 ||Omega||, which
// moves it only where the spectrum is far past the limit); else, or when AMX shows a
// spread past the limit, with the float32 products. A refused AMX product costs one
// extra pass over M, and the run then has the very bits of a run without AMX.
// (It is faster than the float32 products from 1000 x 1000 up:
// docs/benchmarks-history.md, "Randomized SVD: the products", "The first product
// on AMX".)
// amx_product(z) runs the AMX product into z and says how that went: `declined`
// (the float32 products then run), `ran`, or `unusable`: the pass found what
// forbids going on (A's largest |entry| NaN, Inf or outside the range the
// iterations or the float32 copy allow); first_product then returns at once with an
// infinite spread and the caller acts on what was found.
enum class AmxFirst { declined, ran, unusable };

template <class AmxProduct>
double first_product(const RowBlocks<float>& blocks, const Matrix<float>& omega, index k,
                     double amx_limit, Matrix<float>& z, AmxProduct&& amx_product) {
    switch (amx_product(z)) {
        case AmxFirst::unusable: return std::numeric_limits<double>::infinity();
        case AmxFirst::ran: {
            const double spread = panel_spread(z, k, 2);
            if (kBf16x3Unit * spread <= amx_limit) return spread;
            break;
        }
        case AmxFirst::declined: break;
    }
    blocks.normal_product(omega, z);
    return panel_spread(z, k, 2);
}

// The power iterations after the first, on row-major float32 M, from the first
// product z = M^T M Omega (cols x l, not yet orthonormalised) and its panel_spread:
// W <- orth(M^T M W) `iters` times from W = orth(z). On AMX in bfloat16 pieces
// (amx_normal_product) when 2^-16 spread <= amx_limit and the product is large
// enough (2 m n l >= 1e7), A in one piece when 2^-16 spread <= the lower
// amx_one_piece_limit (AmxLimits); else the float32 products, which AMX beats the
// more the larger the product (docs/benchmarks-history.md, "Randomized SVD: the
// products", "AMX bfloat16 pieces"). (first_product puts the first product there
// too.)
Matrix<float> later_iterations(const RowBlocks<float>& blocks, const ConstView<float>& m,
                               Matrix<float> z, double spread, index iters,
                               const AmxLimits& limits, const Schedule& schedule) {
    const bool amx =
        iters > 0 && amx_may_run(m, z.cols) && kBf16x3Unit * spread <= limits.two_pieces;
    const AmxPieces pieces =
        kBf16x3Unit * spread <= limits.one_piece ? AmxPieces::one : AmxPieces::two;
    orthonormalize(z, Orthonormal::basis);
    if (!amx) {
        normal_iterations(blocks, z, iters);
        return z;
    }
    Matrix<float> next(z.rows, z.cols);
    for (index it = 0; it < iters; ++it) {
        if (!amx_normal_product(m, z, next, schedule.threads, schedule.stop, nullptr, pieces)) {
            blocks.normal_product(z, next);
        }
        orthonormalize(next, Orthonormal::basis);
        std::swap(z, next);
    }
    return z;
}

}  // namespace

template <class T>
bool wants_float32_copy(const ConstView<T>& a, const RandomizedSvdOptions& options) {
    if (!std::is_same_v<T, double> || options.mixed_precision == MixedPrecision::off) {
        return false;
    }
    // Verified iterations run the last product in float64 (verified_iterations).
    const index float_iters = options.mixed_precision == MixedPrecision::verified
                                  ? options.power_iters - 1
                              : a.row_major ? options.power_iters
                                            : options.power_iters - 1;
    const double flops = 2.0 * double(a.rows) * double(a.cols) * double(options.sketch_columns);
    return float_iters >= 1 && flops >= 1e7;
}

bool allocate_float32_copy(const ConstView<double>& a, Float32Copy& copy) {
    const ConstView<double> m = a.row_major ? a : a.transposed();
    copy.storage = std::make_unique<KeptBuffer<float>>(KeptUse::float32_copy, m.rows * m.cols);
    if (!copy.storage->data()) {
        copy.storage.reset();
        return false;
    }
    copy.m = {copy.storage->data(), m.rows, m.cols, std::max<index>(m.cols, 1), true};
    return true;
}


template <class T>
T largest_entry(const ConstView<T>& a, int threads, Float32Copy* copy) {
    if constexpr (std::is_same_v<T, double>) {
        if (copy) {
            const ConstView<double> m = a.row_major ? a : a.transposed();
            if (allocate_float32_copy(a, *copy)) {
                float* out = copy->storage->data();
                const int parts = pass_parts(m.rows * m.cols, threads);
                std::vector<std::uint64_t> bits(static_cast<std::size_t>(parts), 0);
                run_parts(parts, [&](int part, int count) {
                    const auto [first, last] = part_range(m.rows, 1, part, count);
                    std::uint64_t most = 0;
                    for (index i = first; i < last; ++i) {
                        most = std::max(most, detail::float_copy_max(m.data + i * m.ld, m.cols,
                                                                     out + i * m.cols));
                    }
                    bits[static_cast<std::size_t>(part)] = most;
                });
                const std::uint64_t most = *std::max_element(bits.begin(), bits.end());
                double largest;
                std::memcpy(&largest, &most, sizeof(largest));
                return std::isfinite(largest) ? largest : std::numeric_limits<double>::infinity();
            }
        }
    }
    return parallel_max_abs(a, threads);
}

bool copy_usable_as_is(double largest) {
    return largest >= std::ldexp(1.0, -40) && largest <= std::ldexp(1.0, 40);
}

void scale_float32_copy(const ConstView<double>& a, double largest, Float32Copy& copy) {
    if (!copy.storage) return;
    if (!(largest > 0)) {
        copy.storage.reset();
        return;
    }
    if (copy_usable_as_is(largest)) return;
    copy.exponent = std::ilogb(largest);
    scaled_float_copy(a.row_major ? a : a.transposed(), copy.exponent, copy.storage->data());
}

AmxLimits amx_limits(const RandomizedSvdOptions& options) {
    return {options.tuning.amx_limit, std::min(options.tuning.amx_limit, options.tuning.amx_one_piece_limit)};
}

bool amx_may_run(const ConstView<float>& m, index l) {
    const double flops = 2.0 * double(m.rows) * double(m.cols) * double(l);
    return m.row_major && flops >= kAmxMinFlops && amx_enabled();
}

bool float_power_iterations_run(const ConstView<float>& a, index l, index iters) {
    return iters >= 2 && amx_may_run(a, l);
}

std::optional<Matrix<float>> float_power_iterations(const ConstView<float>& a,
                                                    const Matrix<float>& omega, index k,
                                                    index iters, const AmxLimits& limits,
                                                    const Schedule& schedule,
                                                    float* largest) {
    if (!float_power_iterations_run(a, omega.cols, iters)) return std::nullopt;
    const RowBlocks<float> blocks(a, omega.cols, schedule);
    Matrix<float> z(a.cols, omega.cols);
    // With `largest`, the AMX product also finds A's largest |entry| (left negative
    // when it does not run).
    const double spread =
        first_product(blocks, omega, k, limits.two_pieces, z, [&](Matrix<float>& out) {
        if (!amx_normal_product(a, omega, out, schedule.threads, schedule.stop, largest))
            return AmxFirst::declined;
        return largest && !iterations_can_use(*largest) ? AmxFirst::unusable : AmxFirst::ran;
    });
    if (largest && !iterations_can_use(*largest)) return std::nullopt;
    // Past AMX's limit and past one float32 product's (one_product_suffices):
    // range_finder runs the iterations from Omega as a run without AMX does.
    if (!(kBf16x3Unit * spread <= limits.two_pieces) && !one_product_suffices<float>(spread)) {
        return std::nullopt;
    }
    return later_iterations(blocks, a, std::move(z), spread, iters - 1, limits, schedule);
}

template <class T>
bool copy_in_first_pass(const ConstView<T>& a, const RandomizedSvdOptions& options) {
    const ConstView<float> shape{nullptr, a.rows, a.cols, a.cols, a.row_major};
    return options.mixed_precision == MixedPrecision::fast && wants_float32_copy(a, options) &&
           a.row_major &&
           float_power_iterations_run(shape, options.sketch_columns, options.power_iters);
}

template <class T>
std::optional<Matrix<T>> float32_iterations(const ConstView<T>& a, const Matrix<T>& omega,
                                            const RandomizedSvdOptions& options,
                                            const Float32Copy& copy, const Schedule& schedule,
                                            double* rounding) {
    if constexpr (!std::is_same_v<T, double>) {
        return std::nullopt;
    } else {
        if (!copy.storage) return std::nullopt;  // not worth it, or no memory for it
        const index k = options.rank, l = omega.cols, iters = options.power_iters;
        const index float_iters = a.row_major ? iters : iters - 1;
        const ConstView<float>& m32 = copy.m;
        const RowBlocks<float> blocks(m32, l, schedule);
        Matrix<float> panel = cast<float>(omega);
        // The first product also decides.
        if (a.row_major) {  // W <- orth(A^T A W)
            Matrix<float> z(m32.cols, l);
            const auto amx_product = [&](Matrix<float>& out) {
                if (rounding) {  // the copy is not written yet: no float32 products
                    if (!amx_normal_product_rounding(a, panel, out, schedule.threads,
                                                     schedule.stop, copy.storage->data(),
                                                     rounding)) {
                        *rounding = -1;
                        return AmxFirst::unusable;
                    }
                    return copy_usable_as_is(*rounding) ? AmxFirst::ran : AmxFirst::unusable;
                }
                return float_power_iterations_run(m32, l, float_iters) &&
                               amx_normal_product(m32, panel, out, schedule.threads,
                                                  schedule.stop)
                           ? AmxFirst::ran
                           : AmxFirst::declined;
            };
            const AmxLimits limits = amx_limits(options);
            const double spread =
                first_product(blocks, panel, k, limits.two_pieces, z, amx_product);
            if (!float_iterations_suffice(spread)) return std::nullopt;
            panel = later_iterations(blocks, m32, std::move(z), spread, float_iters - 1,
                                     limits, schedule);
        } else {  // Q = orth(A Omega), Q <- orth(A A^T Q)
            Matrix<float> q(m32.cols, l);
            blocks.multiply_transposed(panel, q);
            if (!float_iterations_suffice(panel_spread(q, k, 1))) return std::nullopt;
            orthonormalize(q, Orthonormal::basis);
            panel = std::move(q);
            normal_iterations(blocks, panel, float_iters);
        }
        return cast<double>(panel);
    }
}

bool range_from_float32_copy(const ConstView<double>& a, const Float32Copy& copy,
                             const Matrix<double>& w, index k, double limit,
                             const Schedule& schedule, Matrix<double>& q, Matrix<double>& bt) {
    const index l = w.cols;
    if (k >= l || !(limit > 0)) return false;  // no sigma_(k+1) to compare with
    Matrix<float> y(copy.m.rows, l);
    RowBlocks<float>(copy.m, l, schedule).multiply(cast<float>(w), y);
    const double spread = panel_spread(y, k + 1, 1);  // (sigma_1 / sigma_(k+1))^2
    const double moved = double(std::numeric_limits<float>::epsilon()) * std::sqrt(spread);
    if (!(moved <= limit)) return false;
    q = cast<double>(y);
    orthonormalize(q);
    RowBlocks<double>(a, l, schedule).multiply_transposed(q, bt);
    return true;
}

#define LOWRANK_INSTANTIATE(T)                                                               \
    template bool wants_float32_copy<T>(const ConstView<T>&, const RandomizedSvdOptions&);  \
    template T largest_entry<T>(const ConstView<T>&, int, Float32Copy*);                    \
    template bool copy_in_first_pass<T>(const ConstView<T>&, const RandomizedSvdOptions&);  \
    template std::optional<Matrix<T>> float32_iterations<T>(                                 \
        const ConstView<T>&, const Matrix<T>&, const RandomizedSvdOptions&,                  \
        const Float32Copy&, const Schedule&, double*);

LOWRANK_INSTANTIATE(float)
LOWRANK_INSTANTIATE(double)
#undef LOWRANK_INSTANTIATE

}  // namespace lowrank
