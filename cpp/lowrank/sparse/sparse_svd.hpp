// The randomized SVD of a sparse matrix (csr.hpp), optionally less its column means.
#pragma once

#include <vector>

#include "lowrank/common/interrupt.hpp"
#include "lowrank/common/svd_options.hpp"
#include "lowrank/sparse/csr.hpp"
#include "lowrank/svd/result.hpp"

namespace lowrank {

// The randomized SVD of the (m x n) A whose CSR is `m` (`of_a`), or whose CSR of A^T
// is `m` (a CSC A), by the map driver (svd/randomized_map.hpp) on SparseRows'
// products; with `mean` (n values), of A - 1 mean^T, never formed. A stored NaN or
// Inf throws std::invalid_argument; A outside the safe range (outside_safe_range)
// runs on a copy of its stored values scaled by a power of two (O(nnz) memory).
template <class T, class I>
SvdResult<T> sparse_randomized_svd(const CsrView<T, I>& m, bool of_a,
                                   const RandomizedSvdOptions& options, const ConstView<T>* sketch,
                                   const std::vector<T>* mean, StopPoll* stop);

}  // namespace lowrank
