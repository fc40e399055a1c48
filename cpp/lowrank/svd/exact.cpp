#include "lowrank/svd/exact.hpp"

#include <algorithm>
#include <cstddef>
#include <string>
#include <vector>

#include "lowrank/backend/lapack.hpp"
#include "lowrank/common/errors.hpp"

namespace lowrank {

template <class T>
SvdResult<T> exact_svd(const ConstView<T>& a, index k) {
    const index m = a.rows, n = a.cols, p = std::min(m, n);
    LOWRANK_EXPECTS(k >= 1 && k <= p, "k must be between 1 and min(m, n) = " + std::to_string(p));
    LOWRANK_EXPECTS(all_finite(a), "A contains NaN or Inf");
    Matrix<T> work = to_matrix(a);
    Matrix<T> u(m, p), vt(p, n);
    std::vector<T> s(static_cast<std::size_t>(p));
    gesdd('S', work, s.data(), &u, &vt);

    SvdResult<T> out;
    out.U = Matrix<T>(m, k);
    std::copy(u.data(), u.data() + m * k, out.U.data());
    out.S.assign(s.begin(), s.begin() + k);
    out.Vh = Matrix<T>(k, n);
    for (index j = 0; j < n; ++j) {
        std::copy(vt.column(j), vt.column(j) + k, out.Vh.column(j));
    }
    apply_sign_convention(out.U, out.Vh);
    return out;
}

template SvdResult<float> exact_svd<float>(const ConstView<float>&, index);
template SvdResult<double> exact_svd<double>(const ConstView<double>&, index);

}  // namespace lowrank
