#include "lowrank/svd/randomized.hpp"

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <optional>
#include <type_traits>
#include <utility>
#include <vector>

#include "lowrank/backend/blas_lapack.hpp"
#include "lowrank/backend/lapack.hpp"
#include "lowrank/common/errors.hpp"
#include "lowrank/kernels/panel.hpp"
#include "lowrank/runtime/parallel.hpp"
#include "lowrank/svd/mixed_precision.hpp"
#include "lowrank/svd/range_finder.hpp"
#include "lowrank/svd/sketch.hpp"
#include "lowrank/svd/small_svd.hpp"
#include "lowrank/svd/verified_iterations.hpp"

namespace lowrank {

namespace {

// Which way the power iterations (steps 2-3) go. Decided once for the matrix they
// run on, from its dtype, shape and layout and the options, never from its values.
enum class PowerPath {
    working,           // all in T: range_finder from Omega
    float32_amx,       // float32 A, fast: on AMX in bfloat16 pieces (float_power_iterations)
    float32_verified,  // float32 row-major A, verified: from AMX up (verified_iterations)
    copy_fast,         // float64 A, fast: on a float32 copy of A (float32_iterations),
                       // then for row-major A the range from the copy (range_from_float32_copy)
    copy_verified,     // float64 A, verified: on a float32 copy of A (verified_iterations)
};

struct Plan {
    PowerPath path = PowerPath::working;
    // float64 A: the pass that finds A's largest |entry| also rounds A to float32
    // for the iterations (wants_float32_copy).
    bool float32_copy = false;
    // A's largest |entry| comes from the first power iteration's pass on AMX, not
    // from a pass of its own: float32 A (float_power_iterations_run), and float64 A
    // whose copy that pass writes too (copy_in_first_pass).
    bool largest_from_first_product = false;
    // The lowest precision the verified iterations may use.
    Level lowest = Level::float32;
};

template <class T>
Plan plan_iterations(const ConstView<T>& a, const RandomizedSvdOptions& options) {
    const index l = options.sketch_columns;
    const bool fast = options.mixed_precision == MixedPrecision::fast;
    Plan plan;
    if constexpr (std::is_same_v<T, float>) {
        if (fast) {
            if (float_power_iterations_run(a, l, options.power_iters)) {
                plan.path = PowerPath::float32_amx;
                plan.largest_from_first_product = true;
            }
        } else if (options.mixed_precision == MixedPrecision::verified && a.row_major &&
                   amx_may_run(a, l)) {
            plan.path = PowerPath::float32_verified;
            plan.lowest = Level::amx;
        }
    } else if (wants_float32_copy(a, options)) {
        plan.float32_copy = true;
        plan.path = fast ? PowerPath::copy_fast : PowerPath::copy_verified;
        plan.largest_from_first_product = copy_in_first_pass(a, options);
        // The copy is row-major M = A or A^T.
        const ConstView<float> copy_shape{nullptr, a.row_major ? a.rows : a.cols,
                                          a.row_major ? a.cols : a.rows, 1, true};
        plan.lowest = a.row_major && amx_may_run(copy_shape, l) ? Level::amx : Level::float32;
    }
    return plan;
}

// Steps 1-5 on A by `plan`. Nothing when A's largest |entry| turns out to be
// outside the safe range (outside_safe_range), which is then in `outside`: the
// caller runs the plan again on a scaled copy.
template <class T>
std::optional<SvdResult<T>> run_plan(const ConstView<T>& a, const RandomizedSvdOptions& options,
                                     const Plan& plan, const ConstView<T>* sketch,
                                     StopPoll* stop, int threads, T& outside) {
    const index m = a.rows, n = a.cols, k = options.rank, l = options.sketch_columns;
    // A's largest |entry|: NaN and Inf are refused, and outside the safe range the
    // whole computation runs on a scaled copy. It takes a pass over A of its own
    // (for float64 A, the one that also writes the float32 copy), except where the
    // first power iteration runs on AMX: that pass finds it (checked right after,
    // before any other), and for float64 A writes the copy too (`rounding`, where
    // there is memory for the copy).
    Float32Copy copy;
    bool rounding = false;
    if constexpr (std::is_same_v<T, double>) {
        rounding = plan.largest_from_first_product && allocate_float32_copy(a, copy);
    }
    const bool deferred = std::is_same_v<T, float> && plan.largest_from_first_product;
    const T largest = deferred || rounding
                          ? T(0)
                          : largest_entry(a, threads, plan.float32_copy ? &copy : nullptr);
    LOWRANK_EXPECTS(std::isfinite(largest), "A contains NaN or Inf");
    const T sketch_largest = sketch ? max_abs(*sketch) : T(1);
    if (sketch) {
        LOWRANK_EXPECTS(std::isfinite(sketch_largest), "sketch contains NaN or Inf");
    }
    if (outside_safe_range(largest)) {
        outside = largest;
        return std::nullopt;
    }

    // From here on the BLAS runs single-threaded and the products run on the core's
    // threads (RowBlocks), as many as the BLAS would have used: a threaded BLAS's
    // idle workers spin and would compete with them.
    const Schedule schedule{options.tuning.block_bytes, threads, stop};
    const SingleThreadedBlas single_threaded_blas;
    const PanelThreads panel_threads(threads);
    if constexpr (std::is_same_v<T, double>) {
        if (!rounding) scale_float32_copy(a, largest, copy);
    }

    // Step 1: the test matrix Omega (n x l), Gaussian from Philox or given. Only the
    // span of a given one matters, so it is scaled by a power of two (exact) to
    // entries of order 1, like the Gaussian's: A^T A Omega then stays in range too.
    Matrix<T> omega = sketch ? to_matrix(*sketch) : gaussian_sketch<T>(n, l, options.seed, threads);
    if (sketch && sketch_largest > 0) {
        const int exponent = std::ilogb(sketch_largest);
        for (T& value : omega.values) value = std::scalbn(value, -exponent);
    }

    // Steps 2-3: an orthonormal basis Q (m x l) of range((A A^T)^q A Omega), and
    // Bt = (Q^T A)^T = A^T Q (n x l) for step 4. The power iterations first go the
    // plan's way below the working precision, as far as it allows; the products in
    // T that follow (range_finder) make the result accurate in T.
    Matrix<T> q(m, l), bt(n, l);
    std::optional<Matrix<T>> reached;  // the panel the lower-precision iterations reached
    index iters_left = options.power_iters;  // and the products M^T M still to run in T
    switch (plan.path) {
        case PowerPath::working: break;
        case PowerPath::float32_amx:
            if constexpr (std::is_same_v<T, float>) {
                float seen = -1;
                reached = float_power_iterations(a, omega, k, options.power_iters,
                                                 amx_limits(options), schedule, &seen);
                if (seen < 0) seen = largest_entry(a, threads, nullptr);  // (not seen)
                LOWRANK_EXPECTS(std::isfinite(seen), "A contains NaN or Inf");
                if (outside_safe_range(seen)) {
                    outside = seen;
                    return std::nullopt;
                }
                if (reached) iters_left = 0;
            }
            break;
        case PowerPath::float32_verified:
            if constexpr (std::is_same_v<T, float>) {
                if (auto got = verified_iterations(a, omega, k, options.power_iters, a,
                                                   plan.lowest, options.tuning.leak_margin,
                                                   schedule)) {
                    reached = std::move(got->panel);
                    iters_left = options.power_iters - got->done;
                }
            }
            break;
        case PowerPath::copy_fast:
            if (rounding) {
                // The first pass wrote the copy and found A's largest entry; then the
                // checks that follow largest_entry above. Where the copy needs scaling
                // (or AMX declined after all), the iterations start again from the copy
                // as usual.
                double seen = -1;
                reached = float32_iterations(a, omega, options, copy, schedule, &seen);
                const bool declined = seen < 0;
                if (declined) seen = largest_entry(a, threads, &copy);
                LOWRANK_EXPECTS(std::isfinite(seen), "A contains NaN or Inf");
                if (outside_safe_range(seen)) {
                    outside = static_cast<T>(seen);
                    return std::nullopt;
                }
                if (declined || !copy_usable_as_is(seen)) {
                    if constexpr (std::is_same_v<T, double>) {
                        scale_float32_copy(a, seen, copy);  // (drops the copy when A is zero)
                    }
                    reached = float32_iterations(a, omega, options, copy, schedule);
                }
            } else {
                reached = float32_iterations(a, omega, options, copy, schedule);
            }
            if (reached) iters_left = a.row_major ? 0 : 1;
            break;
        case PowerPath::copy_verified:
            if (copy.storage) {
                if (auto got = verified_iterations(a, omega, k, options.power_iters, copy.m,
                                                   plan.lowest, options.tuning.leak_margin,
                                                   schedule)) {
                    reached = std::move(got->panel);
                    iters_left = options.power_iters - got->done;
                }
            }
            break;
    }
    bool ranged = false;
    if constexpr (std::is_same_v<T, double>) {
        ranged = plan.path == PowerPath::copy_fast && reached && a.row_major &&
                 range_from_float32_copy(a, copy, *reached, k, options.tuning.copy_range_limit,
                                         schedule, q, bt);
    }
    copy.storage.reset();  // the float64 products need the memory more
    if (!ranged) {
        const bool started = reached.has_value();
        range_finder(a, started ? std::move(*reached) : std::move(omega), started, iters_left, k,
                     schedule, q, bt);
    }

    // Steps 4-5: the small SVD and U = Q Ub.
    return svd_from_range(q, bt, k, threads);
}

}  // namespace

template <class T>
SvdResult<T> randomized_svd(const ConstView<T>& a, const RandomizedSvdOptions& options,
                            const ConstView<T>* sketch, StopPoll* stop) {
    validate(options, a.rows, a.cols, sketch ? &sketch->rows : nullptr,
             sketch ? &sketch->cols : nullptr);
    // The core's threads for the passes over A; from the BLAS's thread count, read
    // before run_plan makes the BLAS single-threaded.
    const int threads = core_threads();
    const Plan plan = plan_iterations(a, options);
    T largest = 0;
    if (std::optional<SvdResult<T>> out =
            run_plan(a, options, plan, sketch, stop, threads, largest)) {
        return std::move(*out);
    }
    // A power iteration forms A^T A W, of size ||A||^2: it overflows or underflows
    // long before A does. Outside LAPACK's safe range for that (gesdd scales at the
    // same bounds) the computation runs on a copy of A scaled by a power of two,
    // exact to the bit, whose largest |entry| is in [1, 2), and the singular values
    // are scaled back. The copy is column-major whatever A's layout, so it has a
    // plan of its own.
    const int exponent = std::ilogb(largest);
    Matrix<T> scaled = to_matrix(a);
    for (T& value : scaled.values) value = std::scalbn(value, -exponent);
    const ConstView<T> scaled_view = scaled.view();
    SvdResult<T> out = run_plan(scaled_view, options, plan_iterations(scaled_view, options),
                                sketch, stop, threads, largest)
                           .value();
    for (T& value : out.S) value = std::scalbn(value, exponent);
    return out;
}

template SvdResult<float> randomized_svd<float>(const ConstView<float>&,
                                                const RandomizedSvdOptions&,
                                                const ConstView<float>*, StopPoll*);
template SvdResult<double> randomized_svd<double>(const ConstView<double>&,
                                                  const RandomizedSvdOptions&,
                                                  const ConstView<double>*, StopPoll*);

}  // namespace lowrank
