// The randomized SVD (Halko, Martinsson, Tropp, "Finding structure with randomness",
// SIAM Review 2011), its driver: step 1, the sketch (sketch.hpp); steps 2-3, the
// range finder (range_finder.hpp), with the power iterations below the working
// precision where that is safe (mixed_precision.hpp, verified_iterations.hpp);
// step 4, the small SVD (small_svd.hpp); step 5, U = Q Ub.
#pragma once

#include "lowrank/common/interrupt.hpp"
#include "lowrank/common/matrix.hpp"
#include "lowrank/common/svd_options.hpp"
#include "lowrank/svd/result.hpp"

namespace lowrank {

// Randomized SVD. With `sketch` (n x l) the given test matrix replaces the Philox one.
// With `stop`, polled between blocks of A, a stop throws Interrupted.
template <class T>
SvdResult<T> randomized_svd(const ConstView<T>& a, const RandomizedSvdOptions& options,
                            const ConstView<T>* sketch = nullptr, StopPoll* stop = nullptr);

}  // namespace lowrank
