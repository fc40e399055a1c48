#include "lowrank/common/svd_options.hpp"

#include <algorithm>
#include <string>

#include "lowrank/common/errors.hpp"

namespace lowrank {

void validate(const RandomizedSvdOptions& options, index m, index n, const index* sketch_rows,
              const index* sketch_cols) {
    const index k = options.rank, l = options.sketch_columns;
    LOWRANK_EXPECTS(k >= 1 && k <= std::min(m, n),
                    "k must be between 1 and min(m, n) = " + std::to_string(std::min(m, n)));
    LOWRANK_EXPECTS(l >= k && l <= std::min(m, n),
                    "the sketch must have between k and min(m, n) columns");
    LOWRANK_EXPECTS(options.power_iters >= 0, "power_iters must be >= 0");
    if (sketch_rows) {
        LOWRANK_EXPECTS(*sketch_rows == n && sketch_cols && *sketch_cols == l,
                        "sketch must have shape (n, l)");
    }
    const RandomizedSvdTuning& t = options.tuning;
    LOWRANK_EXPECTS(t.block_bytes >= 1, "block_bytes must be >= 1");
    LOWRANK_EXPECTS(t.amx_limit >= 0, "amx_limit must be >= 0");
    LOWRANK_EXPECTS(t.copy_range_limit >= 0, "copy_range_limit must be >= 0");
    LOWRANK_EXPECTS(t.amx_one_piece_limit >= 0, "amx_one_piece_limit must be >= 0");
    LOWRANK_EXPECTS(t.leak_margin >= 1, "leak_margin must be >= 1");
}

}  // namespace lowrank
