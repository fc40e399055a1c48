// Verified mixed precision (MixedPrecision::verified).
//
// The power iterations may run below the working precision T (AMX's bfloat16
// pieces, a float32 copy of float64 A) only while that leaves the result what T's
// iterations would have given: the mark the lower precision leaves on an iterate
// (a leak out of the wanted subspace of about unit * (sigma_1 / sigma_k)^2) must
// be at most 1/margin of the leak T's iterations are still removing at that
// point. Both shrink alike in every later iteration, so the ratio holds to the end.
// The leak is measured, not assumed: each product M^T M W also gives the Ritz
// residuals of the iterate W it was applied to (ritz_leak). An iterate found to
// leak less than its precision allows is dropped; the iterations go back to the
// one before it, one precision up. The last product always runs in T, so the last
// lower-precision iterate is measured too. The margin is
// RandomizedSvdOptions::leak_margin; how it was chosen: docs/reliability.md
// ("Verified mixed precision").
#pragma once

#include <optional>

#include "lowrank/common/matrix.hpp"
#include "lowrank/svd/row_blocks.hpp"

namespace lowrank {

// The precisions, lowest first; `working` is T's (float32 for float32 A).
enum class Level { amx = 0, float32 = 1, float64 = 2 };

// Where verified_iterations leaves the power iterations: the panel (W for
// row-major A, orthonormal Q for column-major) after `done` of the q products
// M^T M, for range_finder to go on from in T.
template <class T>
struct Reached {
    Matrix<T> panel;
    index done = 0;
};

// The power iterations of A, as many as the measured leaks allow below T
// (above), then one product in T. M32 is M (A, or A^T for column-major A; row-major
// either way) in float32: the copy of float64 A, or float32 A itself; `lowest` is the
// lowest precision this call may use. Nothing (range_finder from Omega, all in T)
// when the spectrum leaves no room below T or the first iterate fails its check.
template <class T>
std::optional<Reached<T>> verified_iterations(const ConstView<T>& a, const Matrix<T>& omega,
                                              index k, index iters, const ConstView<float>& m32,
                                              Level lowest, double margin,
                                              const Schedule& schedule);

}  // namespace lowrank
