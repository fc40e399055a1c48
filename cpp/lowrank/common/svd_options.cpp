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

void validate(const ToleranceSvdOptions& options, index m, index n, const index* sketch_rows,
              const index* sketch_cols) {
    LOWRANK_EXPECTS(options.tol > 0 && options.tol < 1, "tol must be in (0, 1)");
    LOWRANK_EXPECTS(options.max_rank >= 0 && options.max_rank <= std::min(m, n),
                    "k must be between 1 and min(m, n) = " + std::to_string(std::min(m, n)));
    LOWRANK_EXPECTS(options.block_size >= 1, "block_size must be >= 1");
    LOWRANK_EXPECTS(options.power_iters >= 0, "power_iters must be >= 0");
    LOWRANK_EXPECTS(options.probes >= 1, "probes must be >= 1");
    LOWRANK_EXPECTS(options.error_steps >= 1, "error_steps must be >= 1");
    LOWRANK_EXPECTS(options.tuning.block_bytes >= 1, "block_bytes must be >= 1");
    if (sketch_rows) {
        LOWRANK_EXPECTS(*sketch_rows == n && sketch_cols && *sketch_cols >= 1,
                        "sketch must have shape (n, L) with L >= 1");
    }
}

void validate(const RankSearchOptions& options, index m, index n) {
    LOWRANK_EXPECTS(options.block_size >= 1, "block_size must be >= 1");
    LOWRANK_EXPECTS(options.power_iters >= 0, "power_iters must be >= 0");
    LOWRANK_EXPECTS(options.max_basis >= 0 && options.max_basis <= std::min(m, n),
                    "max_basis must be between 0 and min(m, n)");
    LOWRANK_EXPECTS(options.tuning.block_bytes >= 1, "block_bytes must be >= 1");
}

}  // namespace lowrank
