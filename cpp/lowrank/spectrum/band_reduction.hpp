// Singular values without vectors by two-stage reduction, for large matrices.
//
// LAPACK's gesdd (what NumPy calls) first reduces A to bidiagonal form with gebrd,
// half of whose flops are matrix-vector products that read the trailing matrix
// twice per column: at 3000 x 2000 float64 gebrd runs at about 20 GF/s here and is
// 1.87 of gesdd's 1.92 s. Two stages move those flops into matrix-matrix products:
//   1. dense -> upper band of width b: a Householder QR of the next b columns, then
//      an LQ of the same b rows right of the band, each applied to the trailing
//      matrix as one block reflector (geqrf/gelqf on the panel, larft, larfb);
//   2. band -> bidiagonal by Givens rotations (gbbrd; O(n^2 b) flops, in cache);
//   3. bidiagonal -> singular values by dqds (lasq1, as gesdd's values-only path).
// Stages 2 and 3 run in float64 for float32 input too. Every step is an orthogonal
// transformation; the values' errors are those of gesdd's (measured on matrices of
// known spectrum: 10-18 eps sigma_1 against gesdd's 9-16 in float64; 0.3-0.9 eps
// in float32, as numpy.linalg.svd, whose float32 values float32 gesdd misses by
// 25-50 eps), not the same bits. A much taller than wide matrix is first reduced to
// its square R by geqrf, as gesdd does. The same scheme: LAPACK's sytrd_2stage for
// the symmetric eigenproblem, and PLASMA's and MAGMA's two-stage SVD.
#pragma once

#include <algorithm>

#include "lowrank/common/matrix.hpp"

namespace lowrank {

// Whether a (rows x cols) matrix's values are computed here rather than by gesdd:
// from min(rows, cols) = 512 on, in either dtype. In float64 that is where it starts
// to pay (one process, against the same LAPACK's gesdd: parity up to 400, 1.15x faster
// at 500, 1.9x at 1000). Float32's gesdd is twice as fast (parity at 800), but it
// misses Gaussian matrices' values by 17-19 eps sigma_1 from 512 to 760 rows and
// columns where this path (its last two stages in float64) misses by 0.5, NumPy's by
// 0.3: 1.08-1.18x gesdd's time there, still 1.6-2.1x faster than NumPy.
template <class T>
bool two_stage_pays(index rows, index cols) {
    return std::min(rows, cols) >= 512;
}

// The singular values of `a` (rows >= cols >= 1, column-major, overwritten),
// descending, into out[0 .. cols). Throws LinAlgError if dqds does not converge.
template <class T>
void two_stage_values(Matrix<T>& a, T* out);

}  // namespace lowrank
