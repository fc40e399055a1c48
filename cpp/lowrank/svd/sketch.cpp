#include "lowrank/svd/sketch.hpp"

#include <algorithm>

#include "lowrank/common/philox.hpp"
#include "lowrank/runtime/parallel.hpp"

namespace lowrank {

template <class T>
Matrix<T> gaussian_sketch(index rows, index cols, std::uint64_t seed, int threads) {
    Matrix<T> omega(rows, cols);
    // Counter-based: any range of the stream is computed on its own, so the parts
    // give the same numbers as one pass (at least 2^12 entries a part: more
    // work, against a few us to hand a part to the core's waiting threads).
    const index count = rows * cols;
    const int parts = static_cast<int>(std::clamp<index>(count >> 12, 1, std::max(1, threads)));
    run_parts(parts, [&](int part, int of) {
        const auto [first, last] = part_range(count, 4, part, of);
        philox::fill_gaussian(seed, static_cast<std::uint64_t>(first),
                              static_cast<std::uint64_t>(last - first), omega.data() + first);
    });
    return omega;
}

template <class T>
Matrix<T> gaussian_sketch(index rows, index cols, std::uint64_t seed) {
    return gaussian_sketch<T>(rows, cols, seed, core_threads());
}

#define LOWRANK_INSTANTIATE(T)                                                               \
    template Matrix<T> gaussian_sketch<T>(index, index, std::uint64_t);                      \
    template Matrix<T> gaussian_sketch<T>(index, index, std::uint64_t, int);

LOWRANK_INSTANTIATE(float)
LOWRANK_INSTANTIATE(double)
#undef LOWRANK_INSTANTIATE

}  // namespace lowrank
