#include "lowrank/common/bottleneck_config.hpp"

#include <cmath>
#include <cstddef>
#include <string>

#include "lowrank/common/errors.hpp"

namespace lowrank {
namespace {

std::size_t size_of(index n) { return static_cast<std::size_t>(n); }

}  // namespace

std::string width_list(const std::vector<index>& widths) {
    std::string out;
    for (std::size_t i = 0; i < widths.size(); ++i) {
        out += (i ? ", " : "") + std::to_string(widths[i]);
    }
    return "(" + out + ")";
}

index choke_index(const std::vector<index>& widths) {
    LOWRANK_EXPECTS(widths.size() >= 3, "the network needs at least one hidden layer");
    index best = 1;
    for (index l = 2; l + 1 < static_cast<index>(widths.size()); ++l) {
        if (widths[size_of(l)] < widths[size_of(best)]) best = l;
    }
    return best;
}

void validate(const BottleneckConfig& config) {
    const auto& w = config.widths;
    LOWRANK_EXPECTS(w.size() >= 3, "widths must hold n, at least one hidden width and m");
    for (const index width : w) {
        LOWRANK_EXPECTS(width >= 1, "every width must be >= 1, got widths " + width_list(w));
    }
    const index k = w[size_of(choke_index(w))];
    LOWRANK_EXPECTS(k <= std::min(w.front(), w.back()),
                    "the narrowest hidden width (the rank) must be <= min(m, n), got widths " +
                        width_list(w));
    LOWRANK_EXPECTS(std::isfinite(config.lr) && config.lr > 0, "lr must be > 0");
    LOWRANK_EXPECTS(config.epochs >= 1, "epochs must be >= 1");
    LOWRANK_EXPECTS(config.samples >= 1, "samples must be >= 1");
    LOWRANK_EXPECTS(config.batch_size >= 1, "batch_size must be >= 1");
    LOWRANK_EXPECTS(std::isfinite(config.tol) && config.tol >= 0, "tol must be >= 0");
    LOWRANK_EXPECTS(config.max_epochs >= 1, "max_epochs must be >= 1");
    if (config.optimizer == Optimizer::GaussNewton) {
        LOWRANK_EXPECTS(config.data == DataMode::Exact,
                        "optimizer 'gauss_newton' needs data='exact' (full-batch least squares)");
        LOWRANK_EXPECTS(gauss_newton_reaches_optimum(w),
                        "optimizer 'gauss_newton' solves only the two layers next to the choke "
                        "point: every hidden width before it must be >= n and every one after "
                        "it >= m, got widths " + width_list(w) + "; use 'adam'");
    }
}

bool gauss_newton_reaches_optimum(const std::vector<index>& widths) {
    const index c = choke_index(widths), last = static_cast<index>(widths.size()) - 1;
    for (index l = 1; l < c; ++l) {
        if (widths[size_of(l)] < widths.front()) return false;
    }
    for (index l = c + 1; l < last; ++l) {
        if (widths[size_of(l)] < widths.back()) return false;
    }
    return true;
}

}  // namespace lowrank
