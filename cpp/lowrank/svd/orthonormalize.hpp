// Orthonormal bases of tall panels (m x l, m >= l): Cholesky-QR where the panel is
// well conditioned, Householder QR otherwise. The range finder, the small SVD and
// the mixed-precision iterations all go through here.
#pragma once

#include <cstddef>
#include <type_traits>

#include "lowrank/common/matrix.hpp"

namespace lowrank {

// One Cholesky-QR step, Y <- Y R^{-1} with R^T R = Y^T Y, in float64 whether Y is
// float32 or float64: the Gram matrix (panel.hpp), potrf, then R inverted by trtri
// and applied (panel.hpp; on tall panels OpenBLAS's trsm is several times slower
// than the product with R^{-1}). `gram` (l x l, lower triangle
// zero) ends holding R^{-1} in its upper triangle. Returns false, leaving Y as it
// was, when R is too ill-conditioned for the step to be accurate in float64: its
// diagonal spread must stay below 0.1 / sqrt(eps64). With `factor`, R itself is
// copied there (upper triangle; the lower one as it was).
// A float32 panel's Gram matrix in float32 would square its spread of singular
// values in float32's precision, and the step would refuse any spread above about
// 300, which a power iteration on a 1/i spectrum with l = 30 already reaches.
// cholesky_inverse_factor is the step without its last product: R^{-1} in `gram`,
// Y untouched.
template <class T>
bool cholesky_inverse_factor(const Matrix<T>& y, Matrix<double>& gram,
                             Matrix<double>* factor = nullptr);

template <class T>
bool cholesky_qr_step(Matrix<T>& y, Matrix<double>& gram, Matrix<double>* factor = nullptr);

// Whether one Cholesky-QR step in float64 already leaves a panel of condition number
// `cond` orthonormal to T's rounding. The step loses about eps64 cond^2 of
// orthogonality (the Gram matrix squares cond): for a float32 result that stays
// below 2e-9, a sixtieth of float32's epsilon, up to cond = 3e3, and the second step
// (CholQR2) would change nothing float32 can hold. A float64 result always takes it.
template <class T>
bool one_cholesky_step_suffices(double cond) {
    return std::is_same_v<T, float> && cond <= 3e3;
}

// A copy of x with every entry converted to To.
template <class To, class From>
Matrix<To> cast(const Matrix<From>& x) {
    Matrix<To> out(x.rows, x.cols);
    for (std::size_t i = 0; i < x.values.size(); ++i) out.values[i] = static_cast<To>(x.values[i]);
    return out;
}

// How orthonormal a panel must come out: `basis` only spans the same space with a
// well-conditioned basis (between power iterations, where only the span matters);
// `final` is orthonormal to rounding (the Q the SVD is built from).
enum class Orthonormal { basis, final };

// Replaces the columns of the tall panel Y (m x l, m >= l) by an orthonormal
// basis of their span. Cholesky-QR on tall, well-conditioned panels, a fraction of
// Householder's cost: one step for a basis, two for the final Q (CholQR2: the
// second restores orthogonality to rounding). Each step works in float64 (a float32
// panel is read and written as float32: cholesky_qr_step); a second step on a
// float32 panel starts from the first's result rounded to float32, orthonormal to
// that rounding, which the second step then removes. Householder QR otherwise
// (rank-deficient or ill-conditioned panels, or when a Cholesky step refuses), in
// float64 for a float32 panel too.
template <class T>
void orthonormalize(Matrix<T>& y, Orthonormal goal = Orthonormal::final);

}  // namespace lowrank
