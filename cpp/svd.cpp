#include "svd.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>

#include "blas_lapack.hpp"
#include "errors.hpp"
#include "parallel.hpp"
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

// Householder QR of the panel Y (m x l, m >= l): Y <- Q (geqrf, then orgqr).
template <class T>
void householder_orthonormalize(Matrix<T>& y) {
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

// One Cholesky-QR step, Y <- Y R^{-1} with R^T R = Y^T Y (syrk, potrf, trsm: all
// level 3). Returns false, leaving Y as it was, when R is too ill-conditioned for
// the step to be accurate: its diagonal spread must stay below 0.1 / sqrt(eps).
template <class T>
bool cholesky_qr_step(Matrix<T>& y, Matrix<T>& gram) {
    const index m = y.rows, l = y.cols;
    Blas<T>::syrk('U', 'T', l, m, T(1), y.data(), y.ld(), T(0), gram.data(), gram.ld());
    if (Blas<T>::potrf('U', l, gram.data(), gram.ld()) != 0) return false;
    T largest = 0, smallest = std::numeric_limits<T>::infinity();
    for (index i = 0; i < l; ++i) {
        largest = std::max(largest, std::abs(gram(i, i)));
        smallest = std::min(smallest, std::abs(gram(i, i)));
    }
    const T limit = T(0.1) / std::sqrt(std::numeric_limits<T>::epsilon());
    // (An overflowed Gram matrix, Inf on the diagonal, must refuse too: Inf <= Inf.)
    if (!(smallest > 0) || !std::isfinite(largest) || !(largest <= limit * smallest)) {
        return false;
    }
    Blas<T>::trsm('R', 'U', 'N', 'N', m, l, T(1), gram.data(), gram.ld(), y.data(), y.ld());
    return true;
}

// Replaces the columns of the tall panel Y (m x l, m >= l) by an orthonormal
// basis of their span. Cholesky-QR twice (CholQR2: the second pass restores
// orthogonality to rounding) on tall, well-conditioned panels, a fraction of
// Householder's cost; Householder QR otherwise (rank-deficient or ill-conditioned
// panels, or when a Cholesky step refuses).
template <class T>
void orthonormalize(Matrix<T>& y) {
    if (y.rows >= 4 * y.cols && y.cols > 0) {
        Matrix<T> gram(y.cols, y.cols);
        if (cholesky_qr_step(y, gram) && cholesky_qr_step(y, gram)) return;
    }
    householder_orthonormalize(y);
}

// The products of the randomized SVD, on row blocks of a row-major matrix M
// (rows x cols): A itself when A is row-major, A^T when A is column-major, so a
// block is always contiguous memory. Rows are split into one range per thread
// (parallel.hpp); each thread walks its range in blocks of about 1 MiB, small
// enough to stay in cache between the two products of normal_product.
template <class T>
class RowBlocks {
  public:
    RowBlocks(const ConstView<T>& m, index panel_columns, StopPoll* stop) : m_(m), stop_(stop) {
        const index per_row = std::max<index>(m.cols, 1) * static_cast<index>(sizeof(T));
        // One thread only when the work is too small to pay for starting threads.
        const double flops = 2.0 * double(m.rows) * double(m.cols) * double(panel_columns);
        parts_ = flops < 4e6 ? 1 : std::min<int>(core_threads(), static_cast<int>(
                                                               std::max<index>(1, m.rows / 16)));
        // A threaded BLAS (parts_ == 1 with more BLAS threads) wants bigger calls.
        const index target = parts_ > 1 || blas_threads_are_local() ? index(1) << 20
                                                                   : index(4) << 20;
        block_ = std::clamp<index>(target / per_row / 8 * 8, 8, std::max<index>(m.rows, 8));
    }

    // Y = M X (rows x l).
    void multiply(const Matrix<T>& x, Matrix<T>& y) const {
        run_parts(parts_, [&](int part, int parts) {
            const auto [first, last] = part_range(m_.rows, block_, part, parts);
            for (index r0 = first; r0 < last; r0 += block_) {
                poll();
                product(r0, std::min(block_, last - r0), x, y);
            }
        });
    }

    // Z = M^T Y (cols x l).
    void multiply_transposed(const Matrix<T>& y, Matrix<T>& z) const {
        reduce(z, [&](index first, index count, Matrix<T>& into, bool accumulate) {
            transposed_product(first, count, y, into, accumulate);
        });
    }

    // Y = M X and Z = M^T Y in one pass: each block of M is read from memory once.
    void normal_product(const Matrix<T>& x, Matrix<T>& y, Matrix<T>& z) const {
        reduce(z, [&](index first, index count, Matrix<T>& into, bool accumulate) {
            product(first, count, x, y);
            transposed_product(first, count, y, into, accumulate);
        });
    }

  private:
    void poll() const {
        if (stop_) stop_->poll();
    }

    static bool blas_threads_are_local() {
        return blas_lapack::installed().set_num_threads_local != nullptr;
    }

    // Rows [first, first + count) of Y = M X.
    void product(index first, index count, const Matrix<T>& x, Matrix<T>& y) const {
        Blas<T>::gemm('T', 'N', count, x.cols, m_.cols, T(1), m_.data + first * m_.ld, m_.ld,
                      x.data(), x.ld(), T(0), y.data() + first, y.ld());
    }

    // Z (+)= M_block^T Y_block for rows [first, first + count).
    void transposed_product(index first, index count, const Matrix<T>& y, Matrix<T>& z,
                            bool accumulate) const {
        Blas<T>::gemm('N', 'N', m_.cols, y.cols, count, T(1), m_.data + first * m_.ld, m_.ld,
                      y.data() + first, y.ld(), accumulate ? T(1) : T(0), z.data(), z.ld());
    }

    // Runs step(first, count, partial, accumulate) over the blocks of each thread's
    // rows, summing the threads' partial (cols x l) results into z.
    template <class Step>
    void reduce(Matrix<T>& z, Step&& step) const {
        std::vector<Matrix<T>> partials(static_cast<std::size_t>(parts_ > 1 ? parts_ - 1 : 0));
        for (auto& partial : partials) partial = Matrix<T>(z.rows, z.cols);
        std::vector<char> touched(static_cast<std::size_t>(parts_), 0);
        run_parts(parts_, [&](int part, int parts) {
            Matrix<T>& into = part == 0 ? z : partials[static_cast<std::size_t>(part - 1)];
            const auto [first, last] = part_range(m_.rows, block_, part, parts);
            for (index r0 = first; r0 < last; r0 += block_) {
                poll();
                step(r0, std::min(block_, last - r0), into, r0 != first);
            }
            touched[static_cast<std::size_t>(part)] = first < last;
        });
        if (!touched[0]) std::fill(z.values.begin(), z.values.end(), T(0));
        for (std::size_t p = 0; p < partials.size(); ++p) {
            if (!touched[p + 1]) continue;
            const T* from = partials[p].data();
            T* to = z.data();
            for (std::size_t i = 0; i < z.values.size(); ++i) to[i] += from[i];
        }
    }

    ConstView<T> m_;
    StopPoll* stop_ = nullptr;
    int parts_ = 1;
    index block_ = 8;
};

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
    for_each_matrix_range(batch, [&](index first, index last) {
        for (index b = first; b < last; ++b) {
            const ConstView<T> view{a + b * m * n, m, n, std::max<index>(n, 1), true};
            singular_values(view, out + b * p);
        }
    });
}

template <class T>
Matrix<T> gaussian_sketch(index rows, index cols, std::uint64_t seed) {
    Matrix<T> omega(rows, cols);
    philox::fill_gaussian(seed, 0, static_cast<std::uint64_t>(rows * cols), omega.data());
    return omega;
}

template <class T>
SvdResult<T> randomized_svd(const ConstView<T>& a, const RandomizedSvdOptions& options,
                            const ConstView<T>* sketch, StopPoll* stop) {
    const index m = a.rows, n = a.cols, k = options.rank, l = options.sketch_columns;
    LOWRANK_EXPECTS(k >= 1 && k <= std::min(m, n),
                    "k must be between 1 and min(m, n) = " + std::to_string(std::min(m, n)));
    LOWRANK_EXPECTS(l >= k && l <= std::min(m, n),
                    "the sketch must have between k and min(m, n) columns");
    LOWRANK_EXPECTS(options.power_iters >= 0, "power_iters must be >= 0");
    const T largest = max_abs(a);
    LOWRANK_EXPECTS(std::isfinite(largest), "A contains NaN or Inf");
    const T sketch_largest = sketch ? max_abs(*sketch) : T(1);
    if (sketch) {
        LOWRANK_EXPECTS(sketch->rows == n && sketch->cols == l, "sketch must have shape (n, l)");
        LOWRANK_EXPECTS(std::isfinite(sketch_largest), "sketch contains NaN or Inf");
    }
    // A power iteration forms A^T A W, of size ||A||^2: it overflows or underflows
    // long before A does. Outside LAPACK's safe range for that (gesdd scales at the
    // same bounds) the iterations run on a copy of A scaled by a power of two, exact
    // to the bit, and the singular values are scaled back.
    const T safe_small = std::sqrt(std::numeric_limits<T>::min()) /
                         std::numeric_limits<T>::epsilon();
    if (largest > 0 && (largest < safe_small || largest > 1 / safe_small)) {
        const int exponent = std::ilogb(largest);
        Matrix<T> scaled = to_matrix(a);
        for (T& value : scaled.values) value = std::scalbn(value, -exponent);
        SvdResult<T> out = randomized_svd(scaled.view(), options, sketch, stop);
        for (T& value : out.S) value = std::scalbn(value, exponent);
        return out;
    }

    // Step 1: the test matrix Omega (n x l), Gaussian from Philox or given. Only the
    // span of a given one matters, so it is scaled by a power of two (exact) to
    // entries of order 1, like the Gaussian's: A^T A Omega then stays in range too.
    Matrix<T> omega = sketch ? to_matrix(*sketch) : gaussian_sketch<T>(n, l, options.seed);
    if (sketch && sketch_largest > 0) {
        const int exponent = std::ilogb(sketch_largest);
        for (T& value : omega.values) value = std::scalbn(value, -exponent);
    }

    // Steps 2-3: an orthonormal basis Q (m x l) of range((A A^T)^q A Omega).
    // HMT's Algorithm 4.4 orthonormalises after every product and reads A twice
    // per power iteration. Here each iteration is one pass over A
    // (RowBlocks::normal_product) with one orthonormalisation: the same subspace
    // in exact arithmetic, A read q + 2 times instead of 2q + 2.
    // Step 4's B = Q^T A is kept as its transpose Bt = A^T Q (n x l).
    Matrix<T> q(m, l), bt(n, l);
    if (a.row_major) {
        // Blocks are rows of A: W <- orth(A^T A W) from W = Omega, then Q = orth(A W).
        const RowBlocks<T> blocks(a, l, stop);
        Matrix<T> w = std::move(omega);
        for (index it = 0; it < options.power_iters; ++it) {
            blocks.normal_product(w, q, bt);
            orthonormalize(bt);
            std::swap(w, bt);
        }
        blocks.multiply(w, q);
        orthonormalize(q);
        blocks.multiply_transposed(q, bt);  // Bt = A^T Q
    } else {
        // Blocks are rows of A^T (columns of A): Q = orth(A Omega), Q <- orth(A A^T Q).
        const RowBlocks<T> blocks(a.transposed(), l, stop);
        blocks.multiply_transposed(omega, q);  // A Omega = (A^T)^T Omega
        orthonormalize(q);
        for (index it = 0; it < options.power_iters; ++it) {
            Matrix<T> z(m, l);
            blocks.normal_product(q, bt, z);
            orthonormalize(z);
            std::swap(q, z);
        }
        blocks.multiply(q, bt);  // Bt = A^T Q
    }

    // Step 4: the small SVD, Bt = V S Ub^T, so B = Ub S V^T.
    Matrix<T> v(n, l), ub_t(l, l);
    std::vector<T> s(static_cast<std::size_t>(l));
    gesdd('S', bt, s.data(), &v, &ub_t);
    // Step 5: lift back, U = Q Ub, keeping the top k triplets; Vh = V^T.
    SvdResult<T> out;
    out.U = Matrix<T>(m, k);
    Blas<T>::gemm('N', 'T', m, k, l, T(1), q.data(), q.ld(), ub_t.data(), ub_t.ld(), T(0),
                  out.U.data(), out.U.ld());
    out.S.assign(s.begin(), s.begin() + k);
    out.Vh = Matrix<T>(k, n);
    for (index j = 0; j < n; ++j) {
        for (index i = 0; i < k; ++i) out.Vh(i, j) = v(j, i);
    }
    apply_sign_convention(out.U, out.Vh);
    return out;
}

#define LOWRANK_INSTANTIATE(T)                                                               \
    template SvdResult<T> exact_svd<T>(const ConstView<T>&, index);                          \
    template void singular_values<T>(const ConstView<T>&, T*);                               \
    template void singular_values_batched<T>(const T*, index, index, index, T*);             \
    template SvdResult<T> randomized_svd<T>(const ConstView<T>&, const RandomizedSvdOptions&, \
                                            const ConstView<T>*, StopPoll*);                 \
    template Matrix<T> gaussian_sketch<T>(index, index, std::uint64_t);                      \
    template void apply_sign_convention<T>(Matrix<T>&, Matrix<T>&);

LOWRANK_INSTANTIATE(float)
LOWRANK_INSTANTIATE(double)
#undef LOWRANK_INSTANTIATE

}  // namespace lowrank
