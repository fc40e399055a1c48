// Step 1 of the randomized SVD: the Gaussian test matrix Omega, from the Philox
// streams (philox.hpp; the deviates: gaussian.cpp), the same for a seed on every
// device and thread count.
#pragma once

#include <cstdint>

#include "lowrank/common/matrix.hpp"

namespace lowrank {

// The Gaussian sketch for a seed: (rows x cols), column-major (see philox.hpp).
template <class T>
Matrix<T> gaussian_sketch(index rows, index cols, std::uint64_t seed);
// The same on up to `threads` threads (identical numbers).
template <class T>
Matrix<T> gaussian_sketch(index rows, index cols, std::uint64_t seed, int threads);

}  // namespace lowrank
