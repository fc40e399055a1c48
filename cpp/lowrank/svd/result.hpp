// What an SVD returns, and the sign convention that makes it unique.
#pragma once

#include <vector>

#include "lowrank/common/matrix.hpp"

namespace lowrank {

// A = U diag(S) Vh, truncated to k triplets. U is (m x k), Vh is (k x n), both
// column-major; S descends. Sign convention: the largest-magnitude entry of every
// column of U is positive (the first such entry on ties).
template <class T>
struct SvdResult {
    Matrix<T> U;
    std::vector<T> S;
    Matrix<T> Vh;
};

// Flips the sign of column j of U and row j of Vh so that U's largest-magnitude
// entry in column j is positive.
template <class T>
void apply_sign_convention(Matrix<T>& U, Matrix<T>& Vh);

}  // namespace lowrank
