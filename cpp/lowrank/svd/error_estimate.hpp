// How far a factored approximation L R^T is from A, without forming A - L R^T:
// the Frobenius norm exactly, a block of rows at a time; the spectral norm by power
// steps on the residual operator from Gaussian probes (Halko, Martinsson, Tropp,
// SIAM Review 53(2), 2011, Section 4.3 and Lemma 4.1; as fbpca's diffsnorm).
#pragma once

#include <cstdint>

#include "lowrank/common/interrupt.hpp"
#include "lowrank/common/matrix.hpp"
#include "lowrank/common/rank_options.hpp"
#include "lowrank/svd/operator.hpp"

namespace lowrank {

// The Philox stream of the error probes (philox.hpp: streams 0-3 are taken), so
// that they never share a draw with the sketch of the same seed: the bound below
// needs probes independent of the approximation.
constexpr std::uint32_t kErrorProbeStream = 4;

struct ErrorEstimate {
    // Spectral: sigma_1 of E Z for the orthonormal Z the power steps reach, so never
    // above ||E||_2 (up to rounding); Frobenius: ||E||_F itself.
    double estimate = 0;
    // Spectral: 10 sqrt(2 / pi) max_i ||E w_i|| over the r Gaussian probes w_i, at
    // least `estimate`; ||E||_2 <= bound except with probability at most 10^-r
    // (HMT Lemma 4.1 with alpha = 10). Frobenius: the estimate.
    double bound = 0;
};

// ||A - L Rt^T||_F^2 in double (L: m x k, Rt: n x k), one pass over A.
template <class T>
double residual_frobenius_squared(const MatrixOperator<T>& a, const Matrix<T>& left,
                                  const Matrix<T>& right);

// The norm of E = A - L Rt^T (L: m x k, Rt: n x k). Spectral: `probes` Gaussian
// probes (Philox stream kErrorProbeStream of `seed`), then `steps` power steps
// W <- orth(E^T E W), two passes over A each.
template <class T>
ErrorEstimate estimate_residual(const MatrixOperator<T>& a, const Matrix<T>& left,
                                const Matrix<T>& right, Norm norm, index probes, index steps,
                                std::uint64_t seed);

// The same for A - U diag(S) Vh (U: m x k, S: k, Vh: k x n), on the core's threads;
// with `stop`, polled between blocks of A, a stop throws Interrupted.
template <class T>
ErrorEstimate estimate_error(const ConstView<T>& a, const ConstView<T>& u, const T* s,
                             const ConstView<T>& vh, Norm norm, index probes, index steps,
                             std::uint64_t seed, StopPoll* stop = nullptr);

}  // namespace lowrank
