// Singular values without vectors by two-stage reduction, for large matrices.
//
// LAPACK's gesdd (what NumPy calls) first reduces A to bidiagonal form with gebrd,
// half of whose flops are matrix-vector products that read the trailing matrix
// twice per column, so gebrd runs far below the machine's peak and takes most of
// gesdd's time. Two stages move those flops into matrix-matrix products:
//   1. dense -> upper band of width b: a Householder QR of the next b columns, then
//      an LQ of the same b rows right of the band, each applied to the trailing
//      matrix as one block reflector (geqrf/gelqf on the panel, larft, larfb);
//   2. band -> bidiagonal by Givens rotations (gbbrd; O(n^2 b) flops, in cache);
//   3. bidiagonal -> singular values by dqds (lasq1, as gesdd's values-only path).
// Stages 2 and 3 run in float64 for float32 input too. Every step is an orthogonal
// transformation; the values' errors are of the size of gesdd's in float64, and in
// float32 of numpy.linalg.svd's (whose float32 values float32 gesdd misses by far
// more), not the same bits (docs/benchmarks-history.md, "Rank and singular
// values"). A much taller than wide matrix is first reduced to
// its square R by geqrf, as gesdd does. The same scheme: LAPACK's sytrd_2stage for
// the symmetric eigenproblem, and PLASMA's and MAGMA's two-stage SVD.
#pragma once

#include <algorithm>

#include "lowrank/common/matrix.hpp"

namespace lowrank {

// Whether a (rows x cols) matrix's values are computed here rather than by gesdd:
// from min(rows, cols) = 512 on, in either dtype. In float64 that is about where it
// starts to beat gesdd. Float32's gesdd stays faster a little longer, but from 512
// on it misses Gaussian matrices' values by far more than this path (its last two
// stages in float64) or NumPy does, and this path is still faster than NumPy there
// (docs/benchmarks-history.md, "Rank and singular values", "a two-stage reduction
// for the values").
template <class T>
bool two_stage_pays(index rows, index cols) {
    return std::min(rows, cols) >= 512;
}

// The singular values of `a` (rows >= cols >= 1, column-major, overwritten),
// descending, into out[0 .. cols). Throws LinAlgError if dqds does not converge.
template <class T>
void two_stage_values(Matrix<T>& a, T* out);

}  // namespace lowrank
