// Z = M^T (M X) in one pass over M: the product at the heart of a power iteration.
//
// M is row-major (rows x cols) and large, X is a skinny panel (cols x l, l ~ 10-200).
// Two BLAS calls (Y = M X, then Z = M^T Y) read M from memory twice, and on such skinny
// shapes OpenBLAS spends much of each call packing M, and runs well below the machine's
// peak (docs/benchmarks-history.md, "Randomized SVD: the products", "One pass per power
// iteration, own kernels"). This kernel fuses the two products instead: it takes a
// block of M's rows that fits in L2, computes its rows of Y into a small buffer, and
// folds them into Z at once, while the block is still in cache. M is read from memory
// once and never copied or packed; only the panels are (X transposed to row-major, Z
// kept row-major per thread). The arithmetic is register-blocked multiply-adds on
// AVX-512 (float32 and float64) or AVX2 (float32), chosen when the library loads
// (normal_product_kernel.inc); elsewhere the functions below decline and the caller
// uses BLAS.
//
// The two halves also serve the randomized SVD's single products (Y = M X, then
// Z = M^T Q after an orthonormalisation), for the same reason: M streams through
// once, unpacked. And they run on the core's threads, so the whole randomized SVD
// can keep a threaded BLAS's spinning workers off the cores (svd/row_blocks.hpp).
#pragma once

#include <string>
#include <vector>

#include "lowrank/common/interrupt.hpp"
#include "lowrank/common/matrix.hpp"

namespace lowrank {

namespace kernels {
// The instruction sets the fused kernel is compiled for, best last.
enum class Isa { none, avx2, avx512 };

const char* name(Isa isa);
// The ones this CPU (and OS) can run, "none" (BLAS) included.
std::vector<Isa> available();
// The one in use: the best available unless set() chose another (for tests and
// benchmarks; process-wide). set() throws std::invalid_argument for one not available.
Isa current();
void set(Isa isa);
Isa parse(const std::string& name);  // throws std::invalid_argument for an unknown name
}  // namespace kernels

// The products of a randomized SVD for row-major M (rows x cols) and column-major
// panels with l columns, on up to `threads` of the core's threads, polling `stop`
// between blocks of M's rows:
//   kernel_normal_product      Z = M^T (M X)   X, Z: (cols x l)   M read once;
//                              with `y`, also Y = M X (rows x l) on the way
//   kernel_product             Y = M X         X (cols x l), Y (rows x l)
//   kernel_transposed_product  Z = M^T Y       Y (rows x l), Z (cols x l)
// The output is resized when its shape is wrong. Each returns false, touching
// nothing, when no kernel is in use (kernels::current() is none) or the panel of
// M's columns (cols x l) exceeds 2 MiB; the caller then uses BLAS. Each thread
// sums its own range of M's rows, so, as with a threaded BLAS, the rounding depends
// on the thread count (and only on it: the same count gives the same bits).
template <class T>
bool kernel_normal_product(const ConstView<T>& m, const Matrix<T>& x, Matrix<T>& z, int threads,
                           StopPoll* stop, Matrix<T>* y = nullptr);
template <class T>
bool kernel_product(const ConstView<T>& m, const Matrix<T>& x, Matrix<T>& y, int threads,
                    StopPoll* stop);
template <class T>
bool kernel_transposed_product(const ConstView<T>& m, const Matrix<T>& y, Matrix<T>& z,
                               int threads, StopPoll* stop);

}  // namespace lowrank
