#include "lowrank/svd/result.hpp"

#include <algorithm>
#include <cmath>

namespace lowrank {

template <class T>
void apply_sign_convention(Matrix<T>& U, Matrix<T>& Vh) {
    for (index j = 0; j < U.cols; ++j) {
        const T* col = U.column(j);
        // The first entry of largest magnitude: that magnitude in one vectorised pass
        // (max_abs), then where it first occurs (a scalar loop that kept the running
        // best was a visible part of a large call).
        const T largest = max_abs(ConstView<T>{col, U.rows, 1, U.ld(), false});
        const T* at = std::find_if(col, col + U.rows,
                                   [largest](T value) { return std::abs(value) == largest; });
        const index best = at == col + U.rows ? 0 : at - col;
        if (U.rows > 0 && col[best] < 0) {
            T* u = U.column(j);
            for (index i = 0; i < U.rows; ++i) u[i] = -u[i];
            for (index c = 0; c < Vh.cols; ++c) Vh(j, c) = -Vh(j, c);
        }
    }
}

template void apply_sign_convention<float>(Matrix<float>&, Matrix<float>&);
template void apply_sign_convention<double>(Matrix<double>&, Matrix<double>&);

}  // namespace lowrank
