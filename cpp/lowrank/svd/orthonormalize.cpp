#include "lowrank/svd/orthonormalize.hpp"

#include <algorithm>
#include <cmath>
#include <limits>

#include "lowrank/backend/blas_lapack.hpp"
#include "lowrank/backend/lapack.hpp"
#include "lowrank/kernels/panel.hpp"

namespace lowrank {

template <class T>
bool cholesky_inverse_factor(const Matrix<T>& y, Matrix<double>& gram,
                             Matrix<double>* factor) {
    const index l = y.cols;
    gram_upper(y, gram);
    if (Blas<double>::potrf('U', l, gram.data(), gram.ld()) != 0) return false;
    double largest = 0, smallest = std::numeric_limits<double>::infinity();
    for (index i = 0; i < l; ++i) {
        largest = std::max(largest, std::abs(gram(i, i)));
        smallest = std::min(smallest, std::abs(gram(i, i)));
    }
    const double limit = 0.1 / std::sqrt(std::numeric_limits<double>::epsilon());
    // (An overflowed Gram matrix, Inf on the diagonal, must refuse too: Inf <= Inf.)
    if (!(smallest > 0) || !std::isfinite(largest) || !(largest <= limit * smallest)) {
        return false;
    }
    if (factor) *factor = gram;
    return Blas<double>::trtri('U', 'N', l, gram.data(), gram.ld()) == 0;
}

template <class T>
bool cholesky_qr_step(Matrix<T>& y, Matrix<double>& gram, Matrix<double>* factor) {
    if (!cholesky_inverse_factor(y, gram, factor)) return false;
    times_upper(y, gram);
    return true;
}

template <class T>
void orthonormalize(Matrix<T>& y, Orthonormal goal) {
    if (y.rows >= 4 * y.cols && y.cols > 0) {
        Matrix<double> gram(y.cols, y.cols);
        if (cholesky_qr_step(y, gram) &&
            (goal == Orthonormal::basis || cholesky_qr_step(y, gram))) {
            return;
        }
    }
    if constexpr (std::is_same_v<T, float>) {
        Matrix<double> wide = cast<double>(y);
        householder_orthonormalize(wide);
        y = cast<float>(wide);
    } else {
        householder_orthonormalize(y);
    }
}

#define LOWRANK_INSTANTIATE(T)                                                               \
    template bool cholesky_inverse_factor<T>(const Matrix<T>&, Matrix<double>&,              \
                                             Matrix<double>*);                               \
    template bool cholesky_qr_step<T>(Matrix<T>&, Matrix<double>&, Matrix<double>*);         \
    template void orthonormalize<T>(Matrix<T>&, Orthonormal);

LOWRANK_INSTANTIATE(float)
LOWRANK_INSTANTIATE(double)
#undef LOWRANK_INSTANTIATE

}  // namespace lowrank
