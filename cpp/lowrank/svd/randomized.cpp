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

template <class T>
SvdResult<T> randomized_svd(const ConstView<T>& a, const RandomizedSvdOptions& options,
                            const ConstView<T>* sketch, StopPoll* stop) {
    const index m = a.rows, n = a.cols, k = options.rank, l = options.sketch_columns;
    validate(options, m, n, sketch ? &sketch->rows : nullptr, sketch ? &sketch->cols : nullptr);
    // The core's threads for the passes over A; from the BLAS's thread count, read
    // before the BLAS is made single-threaded below.
    const int threads = core_threads();
    // A's largest |entry|: NaN and Inf are refused, and outside the safe range the
    // whole computation runs on a scaled copy (outside_safe_range). It takes a pass
    // over A of its own (for float64 A, the one that also writes the float32 copy),
    // except where the first power iteration runs on AMX: that pass finds it
    // (checked right after, before any other), and for float64 A writes the copy
    // too (`rounding`: copy_in_first_pass).
    bool deferred = false, rounding = false;
    Float32Copy copy;
    if constexpr (std::is_same_v<T, float>) {
        deferred = options.mixed_precision == MixedPrecision::fast &&
                   float_power_iterations_run(a, l, options.power_iters);
    } else {
        rounding = copy_in_first_pass(a, options) && allocate_float32_copy(a, copy);
    }
    const T largest =
        deferred || rounding
            ? T(0)
            : largest_entry(a, threads, wants_float32_copy(a, options) ? &copy : nullptr);
    LOWRANK_EXPECTS(std::isfinite(largest), "A contains NaN or Inf");
    const T sketch_largest = sketch ? max_abs(*sketch) : T(1);
    if (sketch) {
        LOWRANK_EXPECTS(std::isfinite(sketch_largest), "sketch contains NaN or Inf");
    }
    // A power iteration forms A^T A W, of size ||A||^2: it overflows or underflows
    // long before A does. Outside LAPACK's safe range for that (gesdd scales at the
    // same bounds) the iterations run on a copy of A scaled by a power of two, exact
    // to the bit, and the singular values are scaled back.
    const auto on_scaled_copy = [&](T most) {
        const int exponent = std::ilogb(most);
        Matrix<T> scaled = to_matrix(a);
        for (T& value : scaled.values) value = std::scalbn(value, -exponent);
        SvdResult<T> out = randomized_svd(scaled.view(), options, sketch, stop);
        for (T& value : out.S) value = std::scalbn(value, exponent);
        return out;
    };
    if (outside_safe_range(largest)) {
        copy.storage.reset();
        return on_scaled_copy(largest);
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
    // Bt = (Q^T A)^T = A^T Q (n x l) for step 4. The power iterations run below the
    // working precision when that is safe: float64 input on a float32 copy of A
    // (float32_iterations), and from the second on, for row-major A, on AMX in
    // bfloat16 pieces (later_iterations; float_power_iterations for float32 A). The
    // products in T that follow make the result accurate in T.
    Matrix<T> q(m, l), bt(n, l);
    std::optional<Matrix<T>> reached;  // the panel the lower-precision iterations reached
    index iters_left = options.power_iters;  // and the products M^T M still to run in T
    const bool fast = options.mixed_precision == MixedPrecision::fast;
    if constexpr (std::is_same_v<T, float>) {
        if (fast) {
            float seen = -1;
            reached = float_power_iterations(a, omega, k, options.power_iters,
                                             amx_limits(options), schedule,
                                             deferred ? &seen : nullptr);
            if (deferred) {
                if (seen < 0) seen = largest_entry(a, threads, nullptr);  // (not seen)
                LOWRANK_EXPECTS(std::isfinite(seen), "A contains NaN or Inf");
                if (outside_safe_range(seen)) return on_scaled_copy(seen);
            }
            if (reached) iters_left = 0;
        } else if (options.mixed_precision == MixedPrecision::verified && a.row_major &&
                   amx_may_run(a, l)) {
            if (auto got = verified_iterations(a, omega, k, options.power_iters, a,
                                               Level::amx, options.tuning.leak_margin, schedule)) {
                reached = std::move(got->panel);
                iters_left = options.power_iters - got->done;
            }
        }
    } else if (rounding) {
        // The first pass wrote the copy and found A's largest entry; then the checks
        // that follow largest_entry above. Where the copy needs scaling (or AMX
        // declined after all), the iterations start again from the copy as usual.
        double seen = -1;
        reached = float32_iterations(a, omega, options, copy, schedule, &seen);
        const bool declined = seen < 0;
        if (declined) seen = largest_entry(a, threads, &copy);
        LOWRANK_EXPECTS(std::isfinite(seen), "A contains NaN or Inf");
        if (outside_safe_range(seen)) {
            copy.storage.reset();
            return on_scaled_copy(seen);
        }
        if (declined || !copy_usable_as_is(seen)) {
            scale_float32_copy(a, seen, copy);  // (drops the copy when A is zero)
            reached = float32_iterations(a, omega, options, copy, schedule);
        }
        if (reached) iters_left = a.row_major ? 0 : 1;
    } else if (fast) {
        reached = float32_iterations(a, omega, options, copy, schedule);
        if (reached) iters_left = a.row_major ? 0 : 1;
    } else if (copy.storage) {  // verified
        const Level lowest = a.row_major && amx_may_run(copy.m, l) ? Level::amx : Level::float32;
        if (auto got = verified_iterations(a, omega, k, options.power_iters, copy.m, lowest,
                                           options.tuning.leak_margin, schedule)) {
            reached = std::move(got->panel);
            iters_left = options.power_iters - got->done;
        }
    }
    bool ranged = false;
    if constexpr (std::is_same_v<T, double>) {
        ranged = fast && reached && a.row_major &&
                 range_from_float32_copy(a, copy, *reached, k, options.tuning.copy_range_limit,
                                         schedule, q, bt);
    }
    copy.storage.reset();  // the float64 products need the memory more
    if (!ranged) {
        const bool started = reached.has_value();
        range_finder(a, started ? std::move(*reached) : std::move(omega), started, iters_left, k,
                     schedule, q, bt);
    }

    // Step 4: the small SVD, Bt = V S Ub^T, so B = Ub S V^T.
    Matrix<T> v(n, l), ub_t(l, l);
    std::vector<T> s(static_cast<std::size_t>(l));
    small_svd(bt, s.data(), v, ub_t);
    // Step 5: lift back, U = Q Ub, keeping the top k triplets; Vh = V^T.
    SvdResult<T> out;
    out.U = Matrix<T>(m, k);
    // On the core's threads, a range of rows each (at least 2^20 multiply-adds).
    const int lift_parts = static_cast<int>(
        std::clamp<double>(double(m) * double(k) * double(l) / 1048576.0, 1.0, threads));
    run_parts(lift_parts, [&](int part, int count) {
        const auto [first, last] = part_range(m, 64, part, count);
        if (first == last) return;
        Blas<T>::gemm('N', 'T', last - first, k, l, T(1), q.data() + first, q.ld(), ub_t.data(),
                      ub_t.ld(), T(0), out.U.data() + first, out.U.ld());
    });
    out.S.assign(s.begin(), s.begin() + k);
    out.Vh = Matrix<T>(k, n);
    for (index j = 0; j < n; ++j) {
        for (index i = 0; i < k; ++i) out.Vh(i, j) = v(j, i);
    }
    apply_sign_convention(out.U, out.Vh);
    return out;
}

template SvdResult<float> randomized_svd<float>(const ConstView<float>&,
                                                const RandomizedSvdOptions&,
                                                const ConstView<float>*, StopPoll*);
template SvdResult<double> randomized_svd<double>(const ConstView<double>&,
                                                  const RandomizedSvdOptions&,
                                                  const ConstView<double>*, StopPoll*);

}  // namespace lowrank
