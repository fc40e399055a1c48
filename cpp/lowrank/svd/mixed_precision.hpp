// The power iterations below the working precision (MixedPrecision::fast): float64
// A on a float32 copy, and row-major A on AMX in bfloat16 pieces, where the spectrum
// estimate allows; then the products in the working precision that make the
// result accurate in it. Verified mixed precision: verified_iterations.hpp.
#pragma once

#include <memory>
#include <optional>

#include "lowrank/common/matrix.hpp"
#include "lowrank/common/svd_options.hpp"
#include "lowrank/runtime/kept_buffer.hpp"
#include "lowrank/svd/row_blocks.hpp"

namespace lowrank {

// Float64 A rounded to float32 for the power iterations (float32_iterations): M = A
// (row-major) or A^T (column-major), row-major either way, times 2^-exponent.
struct Float32Copy {
    std::unique_ptr<KeptBuffer<float>> storage;  // null: no copy
    ConstView<float> m;
    int exponent = 0;
};

// Whether the power iterations of this call would run on a float32 copy of A (if
// the spectrum allows: float_iterations_suffice): float64 A, mixed precision asked
// for, at least one iteration to run so, and enough work to pay for the copy:
// 2 m n l >= 1e7, where the iterations' products may go to AMX too (below that the
// copy's pass costs more than it saves: docs/benchmarks-history.md, "Randomized
// SVD: per-call costs, threads and memory").
template <class T>
bool wants_float32_copy(const ConstView<T>& a, const RandomizedSvdOptions& options);

// Room for float64 A's float32 copy (row-major M = A or A^T), not yet written;
// false (no storage) without the memory.
bool allocate_float32_copy(const ConstView<double>& a, Float32Copy& copy);

// A's largest |entry| (+inf when one is NaN or Inf), on up to `threads` threads.
// When `copy` asks for it (wants_float32_copy), the same pass also rounds A to
// float32 into copy->storage (exponent 0): reading float64 A is the expensive part.
// Without memory for the copy, `copy` is left empty and only the largest is found.
template <class T>
T largest_entry(const ConstView<T>& a, int threads, Float32Copy* copy);

// Whether the float32 copy of A, rounded as it is (exponent 0), can be used:
// A's largest |entry| finite and in [2^-40, 2^40] (scale_float32_copy).
bool copy_usable_as_is(double largest);

// Makes the copy that largest_entry rounded (exponent 0) safe for the iterations:
// A^T A W in float32 must neither overflow nor lose A to underflow, so outside
// [2^-40, 2^40] the largest entry is brought to [1, 2) by a power of two (a second
// pass, rare in practice). Drops the copy for A == 0.
void scale_float32_copy(const ConstView<double>& a, double largest, Float32Copy& copy);

// The error of the bfloat16 pieces' products (amx_product.hpp) in units of ||A||:
// about that of rounding A to 16 significant bits, 2^-16 (float32's epsilon is
// 2^-23). AMX runs the power iterations while 2^-16 (sigma_1 / sigma_k)^2, as
// panel_spread estimates it from the first product (about twice the true value), is
// at most 2 (RandomizedSvdOptions::amx_limit); that first product runs on AMX too
// and is redone in float32 when its estimate is past the limit (first_product).
// Within the limit the spectral error moves by far less than it moves between
// sketches; past it, by more. How the limit was found: the study
// benchmarks/studies/precision_study.py, and docs/benchmarks-history.md,
// "Randomized SVD: precision" ("The AMX limits"). (The float32 iterations' limit
// comes from a separate study: float_iterations_suffice.)
constexpr double kBf16x3Unit = 1.0 / 65536;

// The spread limits of the AMX iterations, in units of 2^-16 (sigma_1 / sigma_k)^2
// as panel_spread estimates it: up to `two_pieces` (amx_limit), A in two bfloat16
// pieces; up to `one_piece` (amx_one_piece_limit, 0.15: a true value of about
// 0.075), the iterations after the first in one (AmxPieces::one: three tile products
// for five, and half the splitting). The first keeps two: its product also makes
// the estimate. One piece moves the error more than two as the spread grows, which
// is why this limit is lower than amx_limit (the same study with `--pieces one`;
// docs/benchmarks-history.md, "Randomized SVD: precision", "The AMX limits").
struct AmxLimits {
    double two_pieces, one_piece;
};
AmxLimits amx_limits(const RandomizedSvdOptions& options);
// Products smaller than this (2 m n l) stay on the float32 kernels.
constexpr double kAmxMinFlops = 1e7;

// Whether the power iterations of row-major float32 M (rows x cols) with an l-column
// panel may run on AMX, spectrum permitting: AMX is there and the products are
// large enough.
bool amx_may_run(const ConstView<float>& m, index l);

// Whether float32 iterations on AMX may run for A (amx_may_run), from q power
// iterations: the first product then goes there and can find A's largest |entry| on
// the way (float_power_iterations).
bool float_power_iterations_run(const ConstView<float>& a, index l, index iters);

// All q power iterations of row-major float32 A (W, for range_finder's last pass),
// when they may run on AMX (first_product, later_iterations); nothing (range_finder runs them as
// before) when AMX cannot run or fewer than two iterations are asked for. With
// `largest`, A's largest |entry| comes from the first product's pass (negative when
// that product could not run on AMX after all); nothing when the iterations cannot
// use it (randomized_svd then refuses A or scales it).
std::optional<Matrix<float>> float_power_iterations(const ConstView<float>& a,
                                                    const Matrix<float>& omega, index k,
                                                    index iters, const AmxLimits& limits,
                                                    const Schedule& schedule,
                                                    float* largest = nullptr);

// Whether float64 A's float32 copy is written by the first power iteration's AMX
// pass (float32_iterations with `rounding`) instead of a pass of its own
// (largest_entry): row-major A that wants the copy (wants_float32_copy) and whose
// iterations may run on AMX. That pass then reads float64 A, rounds it, writes the
// copy and finds A's largest entry, where the separate pass had read A and the
// first product the copy; the copy holds the same bits (static_cast's rounding),
// and so does the result, with one pass over float64 A fewer
// (docs/benchmarks-history.md, "Randomized SVD: per-call costs, threads and memory").
template <class T>
bool copy_in_first_pass(const ConstView<T>& a, const RandomizedSvdOptions& options);

// The power iterations of float64 A on a float32 copy of A, whose products run
// about twice as fast and read half the memory: all q of them for row-major A,
// returning W; for column-major A, Q = orth(A Omega) and all but the last, returning
// Q. range_finder continues from there in float64 (Q = orth(A W), or the last
// iteration, then Bt = A^T Q). For row-major A the iterations go further down, to
// AMX's bfloat16 pieces, where first_product and later_iterations accept. Nothing,
// and float64 all through, when there is no copy (wants_float32_copy,
// largest_entry) or the spectrum makes it unsafe (float_iterations_suffice).
//
// With `rounding` (row-major A whose copy has room but is not yet written:
// copy_in_first_pass), the first product runs on AMX from A itself and writes the
// copy on the way (amx_normal_product_rounding), and *rounding is A's largest
// |entry|: nothing is returned when that does not leave the copy usable as it is
// (NaN, Inf, outside [2^-40, 2^40] or zero: the caller decides, as after
// largest_entry), and *rounding is -1, nothing written, when AMX declined.
template <class T>
std::optional<Matrix<T>> float32_iterations(const ConstView<T>& a, const Matrix<T>& omega,
                                            const RandomizedSvdOptions& options,
                                            const Float32Copy& copy, const Schedule& schedule,
                                            double* rounding = nullptr);

// Steps 2-3 for row-major float64 A after its power iterations ran on the float32
// copy (float32_iterations, which returned W): Y = A W from the copy, in float32,
// then Q = orth(Y) and Bt = A^T Q in float64. This replaces the float64 pass Y = A
// W, Z = A^T Y (then Bt = Z R^-1) by a float32 product and a float64 one, which
// read less memory. Only Y's span enters the result: Q is
// orthonormalised in float64 and B = Q^T A formed from A itself, so the result is
// the exact projection of A onto a basis that rounding A to float32 moved by about
// eps32 ||A||. That moves the error ||A - Q Q^T A|| by at most about eps32 sigma_1,
// against the optimum sigma_(k+1): taken while eps32 sigma_1 / sigma_(k+1) <=
// `limit` (RandomizedSvdOptions::copy_range_limit, 1e-4), as estimated from Y's
// singular values (at most A's, so the estimate errs towards float64). Else (A of
// rank k, or a floor of noise far below sigma_1, where the float64 pass finds the
// optimum to float64 rounding) it returns false, leaving q and bt alone. Within the
// limit the error, the singular values and U's orthonormality stay at the float64
// pass's (the study benchmarks/studies/copy_range_study.py;
// docs/benchmarks-history.md, "Randomized SVD: precision", "The product after the
// iterations from the float32 copy").
bool range_from_float32_copy(const ConstView<double>& a, const Float32Copy& copy,
                             const Matrix<double>& w, index k, double limit,
                             const Schedule& schedule, Matrix<double>& q, Matrix<double>& bt);

}  // namespace lowrank
