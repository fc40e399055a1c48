// The exact SVD (LAPACK gesdd), truncated to k triplets.
#pragma once

#include "lowrank/common/matrix.hpp"
#include "lowrank/svd/result.hpp"

namespace lowrank {

// The top k singular triplets of a, exact. 1 <= k <= min(m, n).
template <class T>
SvdResult<T> exact_svd(const ConstView<T>& a, index k);

}  // namespace lowrank
