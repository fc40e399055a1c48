#include "lowrank/sparse/sparse_svd.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>

#include "lowrank/backend/lapack.hpp"
#include "lowrank/common/errors.hpp"
#include "lowrank/runtime/parallel.hpp"
#include "lowrank/svd/randomized_map.hpp"

namespace lowrank {

template <class T, class I>
SvdResult<T> sparse_randomized_svd(const CsrView<T, I>& m, bool of_a,
                                   const RandomizedSvdOptions& options, const ConstView<T>* sketch,
                                   const std::vector<T>* mean, StopPoll* stop) {
    const index stored = m.nonzeros();
    const T* first = m.values + index(m.indptr[0]);
    T largest = max_abs(ConstView<T>{first, 1, stored, stored, true});
    if (mean) {
        largest = std::max(largest, max_abs(ConstView<T>{mean->data(), 1, index(mean->size()),
                                                         index(mean->size()), true}));
    }
    LOWRANK_EXPECTS(std::isfinite(largest), "A or mean contains NaN or Inf");
    if (outside_safe_range(largest)) {
        const int exponent = std::ilogb(largest);
        std::vector<T> values(first, first + stored);
        for (T& value : values) value = std::scalbn(value, -exponent);
        std::vector<I> indptr(m.indptr, m.indptr + m.rows + 1);
        for (I& p : indptr) p = static_cast<I>(index(p) - index(m.indptr[0]));
        const CsrView<T, I> scaled{m.rows, m.cols, indptr.data(), m.indices + index(m.indptr[0]),
                                   values.data()};
        std::vector<T> scaled_mean;
        if (mean) {
            scaled_mean = *mean;
            for (T& value : scaled_mean) value = std::scalbn(value, -exponent);
        }
        SvdResult<T> out = sparse_randomized_svd(scaled, of_a, options, sketch,
                                                 mean ? &scaled_mean : nullptr, stop);
        for (T& value : out.S) value = std::scalbn(value, exponent);
        return out;
    }
    const int threads = core_threads();
    const SparseRows<T, I> rows(m, options.sketch_columns,
                                Schedule{options.tuning.block_bytes, threads, stop});
    if (!mean) return randomized_svd(rows, of_a, options, sketch, threads);
    LOWRANK_EXPECTS(index(mean->size()) == (of_a ? m.cols : m.rows),
                    "mean must have one value per column of A");
    const std::vector<T> ones(static_cast<std::size_t>(of_a ? m.rows : m.cols), T(1));
    const RankOneUpdate<T> centered(rows, of_a ? ones : *mean, of_a ? *mean : ones);
    return randomized_svd(centered, of_a, options, sketch, threads);
}

#define LOWRANK_INSTANTIATE(T, I)                                                             \
    template SvdResult<T> sparse_randomized_svd<T, I>(const CsrView<T, I>&, bool,              \
                                                      const RandomizedSvdOptions&,            \
                                                      const ConstView<T>*,                    \
                                                      const std::vector<T>*, StopPoll*);
LOWRANK_INSTANTIATE(float, std::int32_t)
LOWRANK_INSTANTIATE(float, std::int64_t)
LOWRANK_INSTANTIATE(double, std::int32_t)
LOWRANK_INSTANTIATE(double, std::int64_t)
#undef LOWRANK_INSTANTIATE

}  // namespace lowrank
