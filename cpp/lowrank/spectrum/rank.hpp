// How much rank a matrix carries: numerical rank with NumPy's semantics, and the
// spectral measures erank, stable rank and entropy rank.
#pragma once

#include <cstdint>

#include "lowrank/common/matrix.hpp"
#include "lowrank/common/rank_options.hpp"

namespace lowrank {

// Numerical rank of `batch` row-major (m x n) matrices stored one after another:
// the count of singular values (|eigenvalues| when `hermitian`, reading the lower
// triangle) strictly above the threshold. `thresholds` has `batch` entries unless
// `kind` is Default (then it may be null).
template <class T>
void matrix_rank_batched(const T* a, index batch, index m, index n, Threshold kind,
                         const double* thresholds, bool hermitian, std::int64_t* out);

// erank = (sum s)^2 / sum s^2, stable = sum s^2 / s_1^2 (= ||A||_F^2 / ||A||_2^2),
// entropy = exp(-sum p log p), p = s / sum s. Accumulated in double; 0 for a zero
// spectrum. `s` holds `count` singular values, descending.
template <class T>
double spectral_measure(const T* s, index count, Measure measure);

// The measure of each of `batch` row-major (m x n) matrices.
template <class T>
void rank_measure_batched(const T* a, index batch, index m, index n, Measure measure,
                          double* out);

// ||A - B|| / ||A||; 0 when A == B == 0, +inf when only A is 0.
template <class T>
double relative_error(const ConstView<T>& a, const ConstView<T>& b, Norm norm);

}  // namespace lowrank
