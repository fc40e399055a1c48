#include "lowrank/spectrum/band_reduction.hpp"

#include <algorithm>
#include <vector>

#include "lowrank/backend/blas_lapack.hpp"
#include "lowrank/common/errors.hpp"

namespace lowrank {
namespace {

// Band width b of stage 1. Stage 1's GEMMs have inner dimension b and gain from a
// wider band; stage 2's rotations cost O(n^2 b). 16 was as fast as 32 or faster up
// to 3000 columns, and wider bands slower everywhere; past 3000 columns a wider band
// may pay (docs/benchmarks-history.md, "Rank and singular values", "a two-stage
// reduction for the values").
constexpr index kBandWidth = 16;

// Stage 1: a (m x n, m >= n) to upper band form, a(i, j) = 0 unless i <= j <= i + b.
template <class T>
void reduce_to_band(Matrix<T>& a, index b) {
    const index m = a.rows, n = a.cols, lda = a.ld();
    const auto at = [&](index i, index j) { return a.data() + i + j * lda; };
    std::vector<T> tau(static_cast<std::size_t>(b)), t(static_cast<std::size_t>(b * b));
    T query_qr = 0, query_lq = 0;
    check_lapack_info(Blas<T>::geqrf(m, b, a.data(), lda, tau.data(), &query_qr, -1),
                      "geqrf (workspace query)");
    check_lapack_info(Blas<T>::gelqf(b, n, a.data(), lda, tau.data(), &query_lq, -1),
                      "gelqf (workspace query)");
    // larfb's workspace is (columns or rows of C) x (number of reflectors).
    std::vector<T> work(static_cast<std::size_t>(
        std::max({workspace_size(query_qr), workspace_size(query_lq), m * b})));
    const index lwork = static_cast<index>(work.size());
    for (index k = 0; k < n; k += b) {
        const index w = std::min(b, n - k);
        // Columns k .. k+w: R on and above the diagonal, reflectors below.
        check_lapack_info(Blas<T>::geqrf(m - k, w, at(k, k), lda, tau.data(), work.data(), lwork),
                          "geqrf");
        const index right = n - k - w;  // columns right of the panel
        if (right == 0) break;
        Blas<T>::larft('F', 'C', m - k, w, at(k, k), lda, tau.data(), t.data(), b);
        Blas<T>::larfb('L', 'T', 'F', 'C', m - k, right, w, at(k, k), lda, t.data(), b,
                       at(k, k + w), lda, work.data(), right);
        // Rows k .. k+w right of the panel: L in their first w columns, zeros beyond
        // once the same reflectors go to the rows below.
        check_lapack_info(Blas<T>::gelqf(w, right, at(k, k + w), lda, tau.data(), work.data(),
                                         lwork),
                          "gelqf");
        const index reflectors = std::min(w, right), below = m - k - w;
        Blas<T>::larft('F', 'R', right, reflectors, at(k, k + w), lda, tau.data(), t.data(), b);
        Blas<T>::larfb('R', 'N', 'F', 'R', below, right, reflectors, at(k, k + w), lda, t.data(),
                       b, at(k + w, k + w), lda, work.data(), below);
    }
}

}  // namespace

template <class T>
void two_stage_values(Matrix<T>& a, T* out) {
    LOWRANK_EXPECTS(a.rows >= a.cols && a.cols >= 1, "two-stage SVD needs rows >= cols >= 1");
    const index n = a.cols;
    Matrix<T> r;
    Matrix<T>* square = &a;
    if (3 * a.rows > 5 * a.cols) {
        // Tall: the values of R from A = QR. QR costs 2mn^2 - 2n^3/3 flops, band
        // reduction 4mn^2 - 4n^3/3, so QR first pays from m = 5n/3 on.
        std::vector<T> tau(static_cast<std::size_t>(n));
        T query = 0;
        check_lapack_info(Blas<T>::geqrf(a.rows, n, a.data(), a.ld(), tau.data(), &query, -1),
                          "geqrf (workspace query)");
        std::vector<T> work(static_cast<std::size_t>(workspace_size(query)));
        check_lapack_info(Blas<T>::geqrf(a.rows, n, a.data(), a.ld(), tau.data(), work.data(),
                                         static_cast<index>(work.size())),
                          "geqrf");
        r = Matrix<T>(n, n);  // zero below the diagonal
        for (index j = 0; j < n; ++j) std::copy(a.column(j), a.column(j) + j + 1, r.column(j));
        square = &r;
    }
    const index ku = std::min(kBandWidth, n - 1);
    if (ku > 0) reduce_to_band(*square, ku);

    // Stages 2 and 3 in float64 whatever T: gbbrd's rotations in working precision
    // cost float32 25-50 eps ||A|| (as float32 gesdd's own bidiagonal reduction
    // does), against 0.3-0.9 eps for float32 values from a float64 stage 2 (what
    // numpy.linalg.svd gives float32 input); in O(n b) memory, at about the speed of
    // the float32 gbbrd. LAPACK band storage: ab(ku + i - j, j) = a(i, j), j - ku <= i <= j.
    const index ldab = ku + 1;
    std::vector<double> ab(static_cast<std::size_t>(ldab * n));
    for (index j = 0; j < n; ++j) {
        const index first = std::max<index>(0, j - ku);
        std::copy(square->column(j) + first, square->column(j) + j + 1,
                  ab.data() + (ku + first - j) + j * ldab);
    }
    std::vector<double> d(static_cast<std::size_t>(n)), e(static_cast<std::size_t>(n)),
        work(static_cast<std::size_t>(4 * n));
    check_lapack_info(Blas<double>::gbbrd_values(n, n, 0, ku, ab.data(), ldab, d.data(),
                                                 e.data(), work.data()),
                      "gbbrd");
    check_lapack_info(Blas<double>::lasq1(n, d.data(), e.data(), work.data()), "lasq1");
    std::transform(d.begin(), d.end(), out, [](double value) { return static_cast<T>(value); });
}

template void two_stage_values<float>(Matrix<float>&, float*);
template void two_stage_values<double>(Matrix<double>&, double*);

}  // namespace lowrank
