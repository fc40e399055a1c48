// The contract of one randomized SVD, shared by the CPU and the GPU core: the options
// both take and their checks (Halko, Martinsson, Tropp, SIAM Review 2011).
#pragma once

#include <cstdint>

#include "lowrank/common/matrix.hpp"

namespace lowrank {

enum class MixedPrecision { off, verified, fast };

// How the CPU core runs a randomized SVD; none of it changes what is computed beyond
// rounding. Exposed for studies of the limits (benchmarks/studies/).
struct RandomizedSvdTuning {
    // Where BLAS runs the products (no AVX2/AVX-512 kernel: normal_product.hpp), A is
    // read in row blocks of about this many bytes (at least one row), one BLAS call
    // per block, and Ctrl-C is polled between blocks. (The kernels use blocks that
    // fit in L2 and poll between them.)
    index block_bytes = index(64) << 20;
    // The power iterations run on AMX when 2^-16 (sigma_1 / sigma_k)^2, as estimated
    // from the first product, is at most this (svd/mixed_precision.hpp: kBf16x3Unit,
    // first_product and later_iterations); infinity puts them on AMX whatever the
    // spectrum.
    double amx_limit = 2.0;
    // For row-major float64 A after float32 iterations, Y = A W (whose span becomes
    // the basis) comes from the float32 copy while eps32 sigma_1 / sigma_(k+1), as
    // Y's singular values estimate it, is at most this
    // (svd/mixed_precision.hpp, range_from_float32_copy); 0 keeps the float64 pass.
    double copy_range_limit = 1e-4;
    // The power iterations after the first run on AMX with A in one bfloat16 piece
    // (AmxPieces::one) when the estimate that amx_limit bounds is at most this
    // (svd/mixed_precision.hpp, amx_limits); infinity: whenever they run on AMX;
    // 0: never.
    double amx_one_piece_limit = 0.15;
    // Verified mixed precision takes a lower precision for an iterate only while the
    // leak its iterations are still removing is at least this many times the mark
    // that precision leaves (svd/verified_iterations.hpp).
    double leak_margin = 3000;
};

// One randomized SVD's contract: what both cores compute (the CPU core also reads
// `mixed_precision` and `tuning`; the GPU core runs in A's precision throughout).
struct RandomizedSvdOptions {
    index rank = 1;             // k
    index sketch_columns = 11;  // l = k + oversamples, clamped to min(m, n) by the caller
    index power_iters = 4;
    std::uint64_t seed = 0;
    // Whether the power iterations may run below the working precision: float64
    // input on a float32 copy of A, and for row-major A on AMX in bfloat16 pieces.
    // `verified`: only while their result is measured to be as accurate as the
    // working precision's (svd/verified_iterations.hpp); `fast`: wherever the
    // spectrum estimate allows, for a float32-accurate subspace (float32_iterations).
    MixedPrecision mixed_precision = MixedPrecision::verified;
    RandomizedSvdTuning tuning;
};

// Checks `options` for an (m x n) A (and, when `sketch` is given, its shape):
// throws std::invalid_argument naming the field. Both cores call it first.
void validate(const RandomizedSvdOptions& options, index m, index n,
              const index* sketch_rows = nullptr, const index* sketch_cols = nullptr);

}  // namespace lowrank
