#include "lowrank/svd/verified_iterations.hpp"

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <limits>
#include <type_traits>
#include <utility>
#include <vector>

#include "lowrank/backend/blas_lapack.hpp"
#include "lowrank/common/errors.hpp"
#include "lowrank/kernels/amx_product.hpp"
#include "lowrank/svd/mixed_precision.hpp"
#include "lowrank/svd/orthonormalize.hpp"
#include "lowrank/svd/range_finder.hpp"

namespace lowrank {
namespace {

Level level_above(Level level) { return static_cast<Level>(static_cast<int>(level) + 1); }

// Unit of a level's products relative to ||M||^2 ||W||: bfloat16 pieces carry about
// 16 significant bits (kBf16x3Unit), float32 24.
double level_unit(Level level) {
    switch (level) {
        case Level::amx: return kBf16x3Unit;
        case Level::float32: return double(std::numeric_limits<float>::epsilon());
        case Level::float64: return double(std::numeric_limits<double>::epsilon());
    }
    return 1.0;
}

// How far the top-k Ritz vectors of span(W) (W orthonormal, rows x l) leak out of
// it, from z = M^T M W: max over j of ||z g_j - theta_j W g_j|| / theta_j, with
// (theta_j, g_j) the top-k eigenpairs of W^T z. The residual is orthogonal to span(W)
// and weighs a leak into direction i by 1 - sigma_i^2 / theta_j, so this errs low:
// towards the higher precision. +inf when the panel cannot tell (theta_k <= 0).
template <class P>
double ritz_leak(const Matrix<P>& w, const Matrix<P>& z, index k) {
    const index rows = w.rows, l = w.cols;
    const Matrix<double> wd = cast<double>(w), zd = cast<double>(z);
    Matrix<double> h(l, l);
    Blas<double>::gemm('T', 'N', l, l, rows, 1.0, wd.data(), wd.ld(), zd.data(), zd.ld(), 0.0,
                       h.data(), h.ld());
    for (index j = 0; j < l; ++j) {
        for (index i = j + 1; i < l; ++i) h(i, j) = 0.5 * (h(i, j) + h(j, i));
    }
    std::vector<double> theta(static_cast<std::size_t>(l));
    double query = 0;
    blas_int iquery = 0;
    check_lapack_info(Blas<double>::syevd('V', 'L', l, h.data(), h.ld(), theta.data(), &query,
                                          -1, &iquery, -1),
                      "syevd (workspace query)");
    std::vector<double> buffer(static_cast<std::size_t>(workspace_size(query)));
    std::vector<blas_int> ibuffer(static_cast<std::size_t>(std::max<blas_int>(1, iquery)));
    check_lapack_info(Blas<double>::syevd('V', 'L', l, h.data(), h.ld(), theta.data(),
                                          buffer.data(), static_cast<index>(buffer.size()),
                                          ibuffer.data(), static_cast<index>(ibuffer.size())),
                      "syevd");
    // Ascending: the top k are the last k, the k-th largest first among them.
    const double* g = h.column(l - k);
    Matrix<double> zg(rows, k), wg(rows, k);
    Blas<double>::gemm('N', 'N', rows, k, l, 1.0, zd.data(), zd.ld(), g, h.ld(), 0.0, zg.data(),
                       zg.ld());
    Blas<double>::gemm('N', 'N', rows, k, l, 1.0, wd.data(), wd.ld(), g, h.ld(), 0.0, wg.data(),
                       wg.ld());
    double leak = 0;
    for (index j = 0; j < k; ++j) {
        const double t = theta[static_cast<std::size_t>(l - k + j)];
        if (!(t > 0) || !std::isfinite(t)) return std::numeric_limits<double>::infinity();
        double sum = 0;
        const double* a = zg.column(j);
        const double* b = wg.column(j);
        for (index i = 0; i < rows; ++i) {
            const double r = a[i] - t * b[i];
            sum += r * r;
        }
        leak = std::max(leak, std::sqrt(sum) / t);
    }
    return leak;
}

}  // namespace

template <class T>
std::optional<Reached<T>> verified_iterations(const ConstView<T>& a, const Matrix<T>& omega,
                                              index k, index iters, const ConstView<float>& m32,
                                              Level lowest, double margin,
                                              const Schedule& schedule) {
    constexpr Level working = std::is_same_v<T, double> ? Level::float64 : Level::float32;
    const index l = omega.cols;
    if (iters < 2 || k >= l) return std::nullopt;  // no lower product that T would check
    const RowBlocks<float> blocks(m32, l, schedule);
    // z = M^T M w at `level` or the first above it that runs; returns the level used.
    const auto lower_product = [&](Level level, const Matrix<float>& w, Matrix<float>& z) {
        if (level == Level::amx && amx_may_run(m32, l) &&
            amx_normal_product(m32, w, z, schedule.threads, schedule.stop)) {
            return Level::amx;
        }
        blocks.normal_product(w, z);
        return Level::float32;
    };

    // The first product: M^T M Omega (row-major A), or A Omega (column-major), from
    // which (sigma_1 / sigma_k)^2 is estimated (panel_spread, about twice too high).
    const Matrix<float> omega32 = cast<float>(omega);
    Matrix<float> current(m32.cols, l);
    Level made;
    double spread;
    if (a.row_major) {
        made = lower_product(lowest, omega32, current);
        spread = panel_spread(current, k, 2);
    } else {
        blocks.multiply_transposed(omega32, current);
        made = Level::float32;
        spread = panel_spread(current, k, 1);
    }
    // The least leak an iterate made at `level` must show (`margin` times its mark).
    const auto least_leak = [&](Level level) { return margin * level_unit(level) * spread; };
    Level floor = lowest;
    while (floor < working && !(least_leak(floor) <= 1)) floor = level_above(floor);
    if (floor >= working) return std::nullopt;
    if (made < floor) made = lower_product(floor, omega32, current);
    orthonormalize(current, Orthonormal::basis);

    // `previous`: the last iterate whose leak was measured to be enough, made at
    // `previous_made` (none: the start, Omega). `measured`: that leak (1 for the
    // start), or `current`'s once it has been measured (after a step back).
    // `rate`: the measured factor by which one product shrinks the leak.
    std::optional<Matrix<float>> previous;
    Level previous_made = made;
    double measured = 1, rate = 1;
    bool current_measured = false;
    index done = a.row_major ? 1 : 0;  // products M^T M so far
    Matrix<float> next(current.rows, l);
    while (done + 1 < iters) {  // the last product runs in T
        // The leak the next product's result will have.
        const double expected = measured * rate * (current_measured ? 1.0 : rate);
        Level level = floor;
        while (level < working && !(least_leak(level) <= expected)) level = level_above(level);
        if (level >= working) break;
        const Level used = lower_product(level, current, next);
        const double leak = ritz_leak(current, next, k);
        if (made < working && !(leak >= least_leak(made))) {
            // `current` carries too much of the precision that made it: back to the
            // iterate before, and never that low again.
            floor = std::max(floor, level_above(made));
            if (floor >= working || !previous) return std::nullopt;
            current = std::move(*previous);
            previous.reset();
            made = previous_made;
            current_measured = true;
            rate = 1;
            --done;
            continue;
        }
        if (!current_measured) rate = std::min(1.0, leak / measured);
        measured = leak;
        current_measured = false;
        previous = std::move(current);
        previous_made = made;
        current = next;
        orthonormalize(current, Orthonormal::basis);
        made = used;
        ++done;
    }

    // One product in T, which also measures the last lower-precision iterate.
    const ConstView<T> mt = a.row_major ? a : a.transposed();
    const RowBlocks<T> blocks_t(mt, l, schedule);
    Matrix<T> w = cast<T>(current), z(w.rows, l);
    blocks_t.normal_product(w, z);
    if (made < working && !(ritz_leak(w, z, k) >= least_leak(made))) {
        if (!previous) return std::nullopt;
        w = cast<T>(*previous);
        --done;
        blocks_t.normal_product(w, z);
    }
    ++done;
    orthonormalize(z, done < iters ? Orthonormal::basis : Orthonormal::final);
    return Reached<T>{std::move(z), done};
}

#define LOWRANK_INSTANTIATE(T)                                                               \
    template std::optional<Reached<T>> verified_iterations<T>(                               \
        const ConstView<T>&, const Matrix<T>&, index, index, const ConstView<float>&, Level, \
        double, const Schedule&);

LOWRANK_INSTANTIATE(float)
LOWRANK_INSTANTIATE(double)
#undef LOWRANK_INSTANTIATE

}  // namespace lowrank
