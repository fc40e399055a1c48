#include "svd.hpp"

#include <algorithm>
#include <cmath>
#include <string>

#include "blas_lapack.hpp"
#include "errors.hpp"
#include "philox.hpp"

namespace lowrank {
namespace {

// Workspace size returned by a LAPACK query (lwork = -1), rounded up.
template <class T>
index workspace_size(T query) {
    return std::max<index>(1, static_cast<index>(std::ceil(static_cast<double>(query))));
}

// Thin SVD of a column-major matrix that gesdd may overwrite.
// jobz 'S': U (m x p), S (p), VT (p x n), p = min(m, n); jobz 'N': S only.
template <class T>
void gesdd(char jobz, Matrix<T>& a, T* s, Matrix<T>* u, Matrix<T>* vt) {
    const index m = a.rows, n = a.cols, p = std::min(m, n);
    if (p == 0) return;
    T* u_data = u ? u->data() : nullptr;
    T* vt_data = vt ? vt->data() : nullptr;
    const index ldu = u ? u->ld() : 1, ldvt = vt ? vt->ld() : 1;
    std::vector<blas_int> iwork(static_cast<std::size_t>(8 * p));
    T query = 0;
    check_lapack_info(Blas<T>::gesdd(jobz, m, n, a.data(), a.ld(), s, u_data, ldu, vt_data, ldvt,
                                     &query, -1, iwork.data()),
                      "gesdd (workspace query)");
    std::vector<T> work(static_cast<std::size_t>(workspace_size(query)));
    check_lapack_info(Blas<T>::gesdd(jobz, m, n, a.data(), a.ld(), s, u_data, ldu, vt_data, ldvt,
                                     work.data(), static_cast<index>(work.size()), iwork.data()),
                      "gesdd");
}

// Replaces the columns of the tall panel Y (m x l, m >= l) by an orthonormal
// basis of their span (Householder QR: geqrf then orgqr).
template <class T>
void orthonormalize(Matrix<T>& y) {
    const index m = y.rows, l = y.cols;
    std::vector<T> tau(static_cast<std::size_t>(std::max<index>(1, l)));
    T query_qr = 0, query_q = 0;
    check_lapack_info(Blas<T>::geqrf(m, l, y.data(), y.ld(), tau.data(), &query_qr, -1),
                      "geqrf (workspace query)");
    check_lapack_info(Blas<T>::orgqr(m, l, l, y.data(), y.ld(), tau.data(), &query_q, -1),
                      "orgqr (workspace query)");
    std::vector<T> work(
        static_cast<std::size_t>(std::max(workspace_size(query_qr), workspace_size(query_q))));
    const index lwork = static_cast<index>(work.size());
    check_lapack_info(Blas<T>::geqrf(m, l, y.data(), y.ld(), tau.data(), work.data(), lwork),
                      "geqrf");
    check_lapack_info(Blas<T>::orgqr(m, l, l, y.data(), y.ld(), tau.data(), work.data(), lwork),
                      "orgqr");
}

// C = op(A) * B for a view A and a column-major B.
template <class T>
void multiply(const ConstView<T>& a, const Matrix<T>& b, Matrix<T>& c) {
    Blas<T>::gemm(a.blas_op(), 'N', a.rows, b.cols, a.cols, T(1), a.data, a.ld, b.data(), b.ld(),
                  T(0), c.data(), c.ld());
}

// Rows of M handled together by fused_normal_product: about 4 MiB, so a block
// stays in the last-level cache between its two products.
template <class T>
index fused_block_rows(index rows, index cols) {
    constexpr index target_bytes = index(4) << 20;
    const index per_row = std::max<index>(cols, 1) * static_cast<index>(sizeof(T));
    const index block = std::max<index>(16, (target_bytes / per_row) / 16 * 16);
    return std::min(block, std::max<index>(rows, 1));
}

// Y = M X and Z = M^T Y = M^T M X in one pass over a row-major M (rows x cols):
// each row block M_i is read from memory once for Y_i = M_i X and Z += M_i^T Y_i.
template <class T>
void fused_normal_product(const ConstView<T>& m_view, const Matrix<T>& x, Matrix<T>& y,
                          Matrix<T>& z) {
    const index rows = m_view.rows, cols = m_view.cols, l = x.cols;
    const index block = fused_block_rows<T>(rows, cols);
    for (index r0 = 0; r0 < rows; r0 += block) {
        const index b = std::min(block, rows - r0);
        const T* m_block = m_view.data + r0 * m_view.ld;  // (cols x b) column-major
        Blas<T>::gemm('T', 'N', b, l, cols, T(1), m_block, m_view.ld, x.data(), x.ld(), T(0),
                      y.data() + r0, y.ld());
        Blas<T>::gemm('N', 'N', cols, l, b, T(1), m_block, m_view.ld, y.data() + r0, y.ld(),
                      r0 == 0 ? T(0) : T(1), z.data(), z.ld());
    }
}

}  // namespace

template <class T>
void apply_sign_convention(Matrix<T>& U, Matrix<T>& Vh) {
    for (index j = 0; j < U.cols; ++j) {
        const T* col = U.column(j);
        index best = 0;
        T best_magnitude = -1;
        for (index i = 0; i < U.rows; ++i) {
            const T magnitude = std::abs(col[i]);
            if (magnitude > best_magnitude) {
                best_magnitude = magnitude;
                best = i;
            }
        }
        if (U.rows > 0 && col[best] < 0) {
            T* u = U.column(j);
            for (index i = 0; i < U.rows; ++i) u[i] = -u[i];
            for (index c = 0; c < Vh.cols; ++c) Vh(j, c) = -Vh(j, c);
        }
    }
}

template <class T>
SvdResult<T> exact_svd(const ConstView<T>& a, index k) {
    const index m = a.rows, n = a.cols, p = std::min(m, n);
    LOWRANK_EXPECTS(k >= 1 && k <= p, "k must be between 1 and min(m, n) = " + std::to_string(p));
    LOWRANK_EXPECTS(all_finite(a), "A contains NaN or Inf");
    Matrix<T> work = to_matrix(a);
    Matrix<T> u(m, p), vt(p, n);
    std::vector<T> s(static_cast<std::size_t>(p));
    gesdd('S', work, s.data(), &u, &vt);

    SvdResult<T> out;
    out.U = Matrix<T>(m, k);
    std::copy(u.data(), u.data() + m * k, out.U.data());
    out.S.assign(s.begin(), s.begin() + k);
    out.Vh = Matrix<T>(k, n);
    for (index j = 0; j < n; ++j) {
        std::copy(vt.column(j), vt.column(j) + k, out.Vh.column(j));
    }
    apply_sign_convention(out.U, out.Vh);
    return out;
}

template <class T>
void singular_values(const ConstView<T>& a, T* out) {
    LOWRANK_EXPECTS(all_finite(a), "A contains NaN or Inf");
    Matrix<T> work = to_matrix(a);
    gesdd<T>('N', work, out, nullptr, nullptr);
}

template <class T>
void singular_values_batched(const T* a, index batch, index m, index n, T* out) {
    const index p = std::min(m, n);
    for (index b = 0; b < batch; ++b) {
        const ConstView<T> view{a + b * m * n, m, n, std::max<index>(n, 1), true};
        singular_values(view, out + b * p);
    }
}

template <class T>
Matrix<T> gaussian_sketch(index rows, index cols, std::uint64_t seed) {
    Matrix<T> omega(rows, cols);
    philox::fill_gaussian(seed, 0, static_cast<std::uint64_t>(rows * cols), omega.data());
    return omega;
}

template <class T>
SvdResult<T> randomized_svd(const ConstView<T>& a, const RandomizedSvdOptions& options,
                            const ConstView<T>* sketch) {
    const index m = a.rows, n = a.cols, k = options.rank, l = options.sketch_columns;
    LOWRANK_EXPECTS(k >= 1 && k <= std::min(m, n),
                    "k must be between 1 and min(m, n) = " + std::to_string(std::min(m, n)));
    LOWRANK_EXPECTS(l >= k && l <= std::min(m, n),
                    "the sketch must have between k and min(m, n) columns");
    LOWRANK_EXPECTS(options.power_iters >= 0, "power_iters must be >= 0");
    LOWRANK_EXPECTS(all_finite(a), "A contains NaN or Inf");
    if (sketch) {
        LOWRANK_EXPECTS(sketch->rows == n && sketch->cols == l, "sketch must have shape (n, l)");
        LOWRANK_EXPECTS(all_finite(*sketch), "sketch contains NaN or Inf");
    }

    // Step 1: the test matrix Omega (n x l), Gaussian from Philox or given.
    Matrix<T> omega = sketch ? to_matrix(*sketch) : gaussian_sketch<T>(n, l, options.seed);

    // Steps 2-3: an orthonormal basis Q (m x l) of range((A A^T)^q A Omega).
    // HMT's Algorithm 4.4 orthonormalises after every product and reads A twice
    // per power iteration. Here each iteration is one fused pass over A's stored
    // blocks (fused_normal_product), orthonormalising once per pass: the same
    // subspace in exact arithmetic, read from memory half as often.
    Matrix<T> q(m, l);
    if (a.row_major) {
        // Row blocks of A are contiguous: W <- orth(A^T A W), starting from Omega.
        Matrix<T> y(m, l), w = std::move(omega);
        for (index it = 0; it < options.power_iters; ++it) {
            Matrix<T> z(n, l);
            fused_normal_product(a, w, y, z);
            orthonormalize(z);
            w = std::move(z);
        }
        multiply(a, w, q);  // Q = orth(A W)
    } else {
        // Column blocks of A are contiguous, i.e. row blocks of A^T: Q <- orth(A A^T Q).
        multiply(a, omega, q);
        const ConstView<T> a_t = a.transposed();
        Matrix<T> y(n, l);
        for (index it = 0; it < options.power_iters; ++it) {
            orthonormalize(q);
            Matrix<T> z(m, l);
            fused_normal_product(a_t, q, y, z);
            q = std::move(z);
        }
    }
    orthonormalize(q);

    // Step 4: project, B = Q^T A (l x n), and take its small SVD.
    Matrix<T> b(l, n);
    Blas<T>::gemm('T', a.blas_op(), l, n, m, T(1), q.data(), q.ld(), a.data, a.ld, T(0),
                  b.data(), b.ld());
    Matrix<T> ub(l, l), vt(l, n);
    std::vector<T> s(static_cast<std::size_t>(l));
    gesdd('S', b, s.data(), &ub, &vt);
    // Step 5: lift back, U = Q Ub, keeping the top k triplets.
    SvdResult<T> out;
    out.U = Matrix<T>(m, k);
    Blas<T>::gemm('N', 'N', m, k, l, T(1), q.data(), q.ld(), ub.data(), ub.ld(), T(0),
                  out.U.data(), out.U.ld());
    out.S.assign(s.begin(), s.begin() + k);
    out.Vh = Matrix<T>(k, n);
    for (index j = 0; j < n; ++j) std::copy(vt.column(j), vt.column(j) + k, out.Vh.column(j));
    apply_sign_convention(out.U, out.Vh);
    return out;
}

#define LOWRANK_INSTANTIATE(T)                                                               \
    template SvdResult<T> exact_svd<T>(const ConstView<T>&, index);                          \
    template void singular_values<T>(const ConstView<T>&, T*);                               \
    template void singular_values_batched<T>(const T*, index, index, index, T*);             \
    template SvdResult<T> randomized_svd<T>(const ConstView<T>&, const RandomizedSvdOptions&, \
                                            const ConstView<T>*);                            \
    template Matrix<T> gaussian_sketch<T>(index, index, std::uint64_t);                      \
    template void apply_sign_convention<T>(Matrix<T>&, Matrix<T>&);

LOWRANK_INSTANTIATE(float)
LOWRANK_INSTANTIATE(double)
#undef LOWRANK_INSTANTIATE

}  // namespace lowrank
