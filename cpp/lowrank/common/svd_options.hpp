// The contract of one randomized SVD, shared by the CPU and the GPU core: the options
// both take and their checks (Halko, Martinsson, Tropp, SIAM Review 2011).
#pragma once

#include <cstdint>

#include "lowrank/common/matrix.hpp"
#include "lowrank/common/rank_options.hpp"

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

// A randomized SVD to a tolerance (svd/adaptive.hpp): the smallest rank whose
// approximation is within tol * ||A|| of A in `norm`, from a basis grown a block at a
// time (Yu, Gu, Li, SIAM J. Matrix Anal. Appl. 39(4), 2018, randQB_EI; Martinsson,
// Voronin, SIAM J. Sci. Comput. 38(5), 2016).
struct ToleranceSvdOptions {
    double tol = 0.1;           // relative, in (0, 1)
    Norm norm = Norm::Frobenius;
    index max_rank = 0;         // the largest rank (and basis) allowed; 0: min(m, n)
    index block_size = 16;      // columns added to the basis per block
    index power_iters = 2;      // power iterations on the residual, per block
    std::uint64_t seed = 0;     // the sketch's Philox seed; the error probes use its stream 4
    index probes = 10;          // Gaussian probes of the spectral error estimate
    index error_steps = 4;      // power steps of the spectral error estimate
    RandomizedSvdTuning tuning; // block_bytes is read
};

// A numerical rank from a basis grown until the residual is certified below the
// threshold (svd/adaptive.hpp, randomized_rank).
struct RankSearchOptions {
    index block_size = 16;      // the first block; each later block doubles the basis
    index power_iters = 0;
    std::uint64_t seed = 0;
    index max_basis = 0;        // give up (not certified) past this many columns; 0: min(m, n) / 2
    RandomizedSvdTuning tuning;
};

// Checks `options` for an (m x n) A (and, when `sketch` is given, its shape):
// throws std::invalid_argument naming the field. Both cores call it first.
void validate(const RandomizedSvdOptions& options, index m, index n,
              const index* sketch_rows = nullptr, const index* sketch_cols = nullptr);

void validate(const ToleranceSvdOptions& options, index m, index n,
              const index* sketch_rows = nullptr, const index* sketch_cols = nullptr);
void validate(const RankSearchOptions& options, index m, index n);

}  // namespace lowrank
