// Z ~ M^T (M X) on Intel AMX in bfloat16 pieces: the power iterations' product when
// the spectrum lets them run below float32 (svd/mixed_precision.cpp, first_product
// and later_iterations).
//
// AMX's tile multiply (TDPBF16PS) multiplies bfloat16 (8 significant bits) and adds
// in float32, with several times the throughput of float32 FMAs on AVX-512. A
// float32 value a is split into two bfloat16 pieces, a = hi + lo + r with |r| <= 2^-17 |a|, and a product of two split matrices is
// taken as the sum of the pieces' products that matter:
//   Y = M X   ~ M_hi X_hi + M_lo X_hi                  (X rounded to bfloat16)
//   Z = M^T Y ~ M_hi^T Y_hi + M_hi^T Y_lo + M_lo^T Y_hi
// Rounding X (the orthonormal iterate) to bfloat16 is harmless: it changes the start
// of one power iteration by 2^-9 of itself, and the iteration damps what that adds
// outside the wanted subspace by (sigma_{k+1} / sigma_k)^2. What remains is about
// 2^-16 ||M|| ||X|| of error in Z, as if M were rounded to 16 significant bits:
// the caller decides from the spectrum whether that is small enough (it is for
// modest sigma_1 / sigma_k).
//
// M (row-major, rows x cols, float32; or float64, rounded to float32 on the way,
// which also writes the float32 copy the later iterations read) is read once, in
// blocks of 32 rows that are split into bfloat16 pieces in two tile layouts on the
// way (rows for M X, pairs of rows interleaved for M^T Y), 32 columns at a time, the
// splitting of the next 32 columns interleaved with the tile products of these
// (split_product). Chunks of M's rows are summed into Zs of their own that add up
// at the end in a fixed order (the bits depend on the thread count, as with the
// other kernels, but not on which thread took which chunk).
//
// It is faster than the AVX-512 kernel, though far from the arithmetic's ratio:
// splitting is bound by memory bandwidth, and on narrow panels each tile product
// has its tiles to load from L2 for few multiply-adds. Tried and not kept: keeping
// M's split between products (as many bytes to read as M itself, plus the
// writing); prefetching the next block into L2 during the tile products; splitting
// the next whole block a little after each column tile's products (interleaving 32
// columns at a time, with M X's tiles for them in L1, is what paid). The record:
// docs/benchmarks-history.md, "Randomized SVD: the products" ("AMX bfloat16 pieces",
// "Tried and not kept").
#pragma once

#include "lowrank/common/interrupt.hpp"
#include "lowrank/common/matrix.hpp"

namespace lowrank {

// Whether this CPU has AMX-BF16 and AVX512-BF16 and the OS granted this process the
// tile state (asked for once, on the first call).
bool amx_available();
// Whether the product runs: available and not switched off by amx_enable(false)
// (process-wide; for tests and benchmarks that compare with the float32 products).
bool amx_enabled();
void amx_enable(bool on);

// How many bfloat16 pieces M is split into: two as above, or one (M rounded to
// bfloat16, 8 significant bits):
//   Y = M_hi X,  Z = M^T Y ~ M_hi^T Y_hi + M_hi^T Y_lo
// three tile products where two pieces take five, and half the split to write
// (docs/benchmarks-history.md, "Randomized SVD: the products", "One bfloat16
// piece"). Its error is that of rounding M to bfloat16, but on the randomized SVD
// it moves the result about as little as two pieces do while the spectrum is
// moderate (svd/mixed_precision.hpp, AmxLimits).
enum class AmxPieces { two, one };

// Z = M^T (M X) as above for M (rows x cols, row-major), X and Z (cols x l,
// column-major; Z is resized when its shape is wrong), polling `stop` between blocks
// of M's rows. With `largest`, also M's largest |entry| (NaN when M holds one), seen
// on the way: the randomized SVD then needs no pass of its own to check A. Returns
// false, touching nothing, when !amx_enabled().
bool amx_normal_product(const ConstView<float>& m, const Matrix<float>& x, Matrix<float>& z,
                        int threads, StopPoll* stop, float* largest = nullptr,
                        AmxPieces pieces = AmxPieces::two);

// The same product for float64 M, rounded to float32 on the way (as static_cast
// does): the rounded rows go to `copy` (row-major, rows x cols, leading dimension
// cols), and M's largest |entry| (NaN or Inf when M holds one, as the bits order)
// to *largest. One pass over M where a separate rounding pass and the product had
// taken two. Returns false, touching nothing, when !amx_enabled().
bool amx_normal_product_rounding(const ConstView<double>& m, const Matrix<float>& x,
                                 Matrix<float>& z, int threads, StopPoll* stop, float* copy,
                                 double* largest);

}  // namespace lowrank
