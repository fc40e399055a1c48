#include "lowrank/svd/randomized.hpp"

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstring>
#include <limits>
#include <memory>
#include <optional>
#include <string>
#include <type_traits>


#include "lowrank/backend/blas_lapack.hpp"
#include "lowrank/common/errors.hpp"
#include "lowrank/common/philox.hpp"
#include "lowrank/kernels/amx_product.hpp"
#include "lowrank/kernels/normal_product.hpp"
#include "lowrank/kernels/panel.hpp"
#include "lowrank/runtime/kept_buffer.hpp"
#include "lowrank/runtime/parallel.hpp"
#include "lowrank/spectrum/band_reduction.hpp"

namespace lowrank {
namespace {

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
    // Singular values are >= 0: gesdd gives -0 for a matrix of -0 entries.
    for (index i = 0; i < p; ++i) s[i] = std::fabs(s[i]);
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

// One Cholesky-QR step, Y <- Y R^{-1} with R^T R = Y^T Y, in float64 whether Y is
// float32 or float64: the Gram matrix (panel.hpp), potrf, then R inverted by trtri
// and applied (panel.hpp; on tall panels such as 3000 x 30 OpenBLAS's trsm had taken
// four times as long as trmm, 0.59 ms against 0.14). `gram` (l x l, lower triangle
// zero) ends holding R^{-1} in its upper triangle. Returns false, leaving Y as it
// was, when R is too ill-conditioned for the step to be accurate in float64: its
// diagonal spread must stay below 0.1 / sqrt(eps64). With `factor`, R itself is
// copied there (upper triangle; the lower one as it was).
// A float32 panel's Gram matrix in float32 would square its spread of singular
// values in float32's precision, and the step would refuse any spread above about
// 300, which a power iteration on a 1/i spectrum with l = 30 already reaches.
// cholesky_inverse_factor is the step without its last product: R^{-1} in `gram`,
// Y untouched.
template <class T>
bool cholesky_inverse_factor(const Matrix<T>& y, Matrix<double>& gram,
                             Matrix<double>* factor = nullptr) {
    const index l = y.cols;
    gram_upper(y, gram);
    if (Blas<double>::potrf('U', l, gram.data(), gram.ld()) != 0) return false;
    double largest = 0, smallest = std::numeric_limits<double>::infinity();
    for (index i = 0; i < l; ++i) {
        largest = std::max(largest, std::abs(gram(i, i)));
        smallest = std::min(smallest, std::abs(gram(i, i)));
    }
    const double limit = 0.1 / std::sqrt(std::numeric_limits<double>::epsilon());
    // (An overflowed Gram matrix, Inf on the diagonal, must refuse too: Inf <= Inf.)
    if (!(smallest > 0) || !std::isfinite(largest) || !(largest <= limit * smallest)) {
        return false;
    }
    if (factor) *factor = gram;
    return Blas<double>::trtri('U', 'N', l, gram.data(), gram.ld()) == 0;
}

template <class T>
bool cholesky_qr_step(Matrix<T>& y, Matrix<double>& gram, Matrix<double>* factor = nullptr) {
    if (!cholesky_inverse_factor(y, gram, factor)) return false;
    times_upper(y, gram);
    return true;
}

// Whether one Cholesky-QR step in float64 already leaves a panel of condition number
// `cond` orthonormal to T's rounding. The step loses about eps64 cond^2 of
// orthogonality (the Gram matrix squares cond): for a float32 result that stays
// below 2e-9, a sixtieth of float32's epsilon, up to cond = 3e3, and the second step
// (CholQR2) would change nothing float32 can hold. A float64 result always takes it.
template <class T>
bool one_cholesky_step_suffices(double cond) {
    return std::is_same_v<T, float> && cond <= 3e3;
}

template <class To, class From>
Matrix<To> cast(const Matrix<From>& x) {
    Matrix<To> out(x.rows, x.cols);
    for (std::size_t i = 0; i < x.values.size(); ++i) out.values[i] = static_cast<To>(x.values[i]);
    return out;
}

// How orthonormal a panel must come out: `basis` only spans the same space with a
// well-conditioned basis (between power iterations, where only the span matters);
// `final` is orthonormal to rounding (the Q the SVD is built from).
enum class Orthonormal { basis, final };

// Replaces the columns of the tall panel Y (m x l, m >= l) by an orthonormal
// basis of their span. Cholesky-QR on tall, well-conditioned panels, a fraction of
// Householder's cost: one step for a basis, two for the final Q (CholQR2: the
// second restores orthogonality to rounding). Each step works in float64 (a float32
// panel is read and written as float32: cholesky_qr_step); a second step on a
// float32 panel starts from the first's result rounded to float32, orthonormal to
// that rounding, which the second step then removes. Householder QR otherwise
// (rank-deficient or ill-conditioned panels, or when a Cholesky step refuses), in
// float64 for a float32 panel too.
template <class T>
void orthonormalize(Matrix<T>& y, Orthonormal goal = Orthonormal::final) {
    if (y.rows >= 4 * y.cols && y.cols > 0) {
        Matrix<double> gram(y.cols, y.cols);
        if (cholesky_qr_step(y, gram) &&
            (goal == Orthonormal::basis || cholesky_qr_step(y, gram))) {
            return;
        }
    }
    if constexpr (std::is_same_v<T, float>) {
        Matrix<double> wide = cast<double>(y);
        householder_orthonormalize(wide);
        y = cast<float>(wide);
    } else {
        householder_orthonormalize(y);
    }
}

// Step 4 of the randomized SVD: the thin SVD of the tall Bt (n x l), Bt = V diag(s)
// Ub^T (V n x l, Ub^T l x l). gesdd of the tall panel spends most of its time in its
// own Householder QR; instead Bt = Qb R by Cholesky-QR2 in float64, then the l x l
// R = Ur diag(s) Vr^T by gesdd, so V = Qb Ur and Ub^T = Vr^T. Measured inside the
// call (single-threaded OpenBLAS, alternating with gesdd): 2000 x 30, 0.80 -> 0.54 ms
// in float32 and 1.23 -> 0.92 ms in float64; 3000 x 110, 21.5 -> 9.8 ms and 20.7 ->
// 17.7 ms.
// Cholesky-QR2 is backward stable, Bt = Qb R + O(eps ||Bt||) with Qb orthonormal to
// rounding, while cond(Bt) stays well below 1 / sqrt(eps): the singular values then
// carry the same O(eps sigma_1) error as gesdd's. So it is taken only when a
// Cholesky step does not refuse and R's own singular values show cond(Bt) <= 1e5
// (1/i spectra give l, for instance); gesdd of Bt otherwise (rank-deficient or
// steeply decaying panels). A float32 Bt with cond <= 3e3 takes one step
// (one_cholesky_step_suffices), straight from the float32 panel: V = Bt (R^{-1} Ur)
// in float64 by one panel product. At 2000 x 30 (3000 x 2000, k = 20) that took the
// call from 0.62-0.83 to about 0.49 ms.
template <class T>
void small_svd(Matrix<T>& bt, T* s, Matrix<T>& v, Matrix<T>& ub_t) {
    const index n = bt.rows, l = bt.cols;
    if (l > 0 && n >= 4 * l) {
        Matrix<double> gram(l, l), r(l, l), r2(l, l), ur(l, l), vr_t(l, l);
        std::vector<double> sd(static_cast<std::size_t>(l));
        const auto svd_of_r = [&] {  // R = Ur diag(sd) Vr^T; whether R is usable
            Matrix<double> work = r;
            gesdd<double>('S', work, sd.data(), &ur, &vr_t);
            return sd.back() > 0 ? sd.front() / sd.back() : std::numeric_limits<double>::infinity();
        };
        if constexpr (std::is_same_v<T, float>) {
            // Where one step suffices, straight from the float32 panel: R^{-1} from its
            // Gram matrix (Bt untouched), then V = Qb Ur = Bt (R^{-1} Ur) in one product
            // in float64 (panel.hpp), without float64 copies of Bt, Qb or V.
            if (cholesky_inverse_factor(bt, gram, &r) &&
                one_cholesky_step_suffices<T>(svd_of_r())) {
                Blas<double>::trmm('L', 'U', 'N', 'N', l, l, 1.0, gram.data(), gram.ld(),
                                   ur.data(), ur.ld());
                times_square(bt, ur);
                v = std::move(bt);
                ub_t = cast<T>(vr_t);
                std::transform(sd.begin(), sd.end(), s, [](double x) { return T(x); });
                return;
            }
            std::fill(gram.values.begin(), gram.values.end(), 0.0);  // (lower triangle zero)
        }
        Matrix<double> qb = cast<double>(bt);
        bool done = false;
        if (cholesky_qr_step(qb, gram, &r)) {
            // float32: one step where it suffices (one_cholesky_step_suffices).
            if (std::is_same_v<T, float>) done = one_cholesky_step_suffices<T>(svd_of_r());
            if (!done && cholesky_qr_step(qb, gram, &r2)) {
                // R = R2 R1 (both upper triangular, lower triangles zero).
                Blas<double>::trmm('L', 'U', 'N', 'N', l, l, 1.0, r2.data(), r2.ld(), r.data(),
                                   r.ld());
                done = svd_of_r() <= 1e5;
            }
        }
        if (done) {
            Matrix<double> vd(n, l);
            Blas<double>::gemm('N', 'N', n, l, l, 1.0, qb.data(), qb.ld(), ur.data(), ur.ld(),
                               0.0, vd.data(), vd.ld());
            v = cast<T>(vd);
            ub_t = cast<T>(vr_t);
            std::transform(sd.begin(), sd.end(), s, [](double x) { return T(x); });
            return;
        }
    }
    gesdd('S', bt, s, &v, &ub_t);
}

// How the products of one randomized SVD run: blocks of A of about `block_bytes`
// (RandomizedSvdOptions), on `threads` of the core's threads, polling `stop`.
struct Schedule {
    index block_bytes = index(64) << 20;
    int threads = 1;
    StopPoll* stop = nullptr;
};

// The products of the randomized SVD, on row blocks of a row-major matrix M
// (rows x cols): A itself when A is row-major, A^T when A is column-major, so a
// block is always contiguous memory.
//
// They run on the core's own threads, one range of M's rows each, with the BLAS
// single-threaded: the whole randomized SVD runs so (randomized_svd), because the
// fused kernel's threads (normal_product.hpp) and a threaded BLAS's cannot share
// the cores. OpenBLAS's idle workers spin for a while after every threaded call,
// and on 2 cores they took a third of the time of a float32 call. Within its range,
// each thread makes one BLAS call per block of block_bytes, and polls Ctrl-C
// between blocks.
//
// The panels (X, Y, Z: rows or cols x l) go to BLAS either as they are or
// transposed (l x rows or cols, kTransposedPanels), whichever OpenBLAS runs faster:
// float32 products run 1.2-1.7x faster with M as GEMM's second operand, float64
// ones 1.2-1.8x slower (measured on AVX-512 with SciPy's OpenBLAS 0.3.31, l = 30 to
// 210). Transposing a panel costs rows x l moves against rows x cols x l
// multiply-adds for the product.
template <class T>
class RowBlocks {
  public:
    RowBlocks(const ConstView<T>& m, index panel_columns, const Schedule& schedule)
        : m_(m), schedule_(schedule), l_(panel_columns) {
        const index per_row = std::max<index>(m.cols, 1) * static_cast<index>(sizeof(T));
        block_ = std::clamp<index>(schedule.block_bytes / per_row, 1, std::max<index>(m.rows, 1));
        // Ranges of at least 64 rows (and one for a small M).
        parts_ = static_cast<int>(std::clamp<index>(m.rows / 64, 1, schedule.threads));
    }

    index rows() const { return m_.rows; }

    // Y = M X (rows x l): each thread writes its rows of Y.
    void multiply(const Matrix<T>& x, Matrix<T>& y) const {
        if (kernel_product(m_, x, y, schedule_.threads, schedule_.stop)) return;
        const Panel xp(x);
        Panel yp(y, false);
        run_parts(parts_, [&](int part, int count) {
            const auto [first, last] = part_range(m_.rows, 1, part, count);
            for (index r0 = first; r0 < last; r0 += block_) {
                poll();
                product(r0, std::min(block_, last - r0), xp, yp);
            }
        });
        yp.store(y);
    }

    // Z = M^T Y (cols x l): each thread sums its rows' share, then the shares add up.
    void multiply_transposed(const Matrix<T>& y, Matrix<T>& z) const {
        if (kernel_transposed_product(m_, y, z, schedule_.threads, schedule_.stop)) return;
        const Panel yp(y);
        std::vector<Matrix<T>> shares(static_cast<std::size_t>(parts_ - 1));
        run_parts(parts_, [&](int part, int count) {
            const auto [first, last] = part_range(m_.rows, 1, part, count);
            Matrix<T>& target = part == 0 ? z : shares[static_cast<std::size_t>(part - 1)];
            if (part > 0) target = Matrix<T>(z.rows, z.cols);
            Panel zp(target, first == last);
            for (index r0 = first; r0 < last; r0 += block_) {
                poll();
                transposed_product(r0, std::min(block_, last - r0), yp, zp, r0 > first);
            }
            zp.store(target);
        });
        for (const Matrix<T>& share : shares) {
            for (std::size_t i = 0; i < z.values.size(); ++i) z.values[i] += share.values[i];
        }
    }

    // Z = M^T (M X), reading M from memory once: the fused kernel where this CPU
    // has one (normal_product.hpp), else two BLAS passes, Y = M X and Z = M^T Y.
    // With `kept`, Y = M X is stored there too.
    void normal_product(const Matrix<T>& x, Matrix<T>& z, Matrix<T>* kept = nullptr) const {
        if (kernel_normal_product(m_, x, z, schedule_.threads, schedule_.stop, kept)) return;
        Matrix<T> local;
        Matrix<T>& y = kept ? *kept : local;
        if (y.rows != m_.rows || y.cols != l_) y = Matrix<T>(m_.rows, l_);
        multiply(x, y);
        multiply_transposed(y, z);
    }

  private:
    static constexpr bool kTransposedPanels = std::is_same_v<T, float>;

    // A (rows x l) panel as BLAS sees it: the caller's column-major matrix itself,
    // or (kTransposedPanels) a transposed copy (l x rows), written back by store().
    // A panel of M^T Y when M has no rows is zero: no block writes it.
    class Panel {
      public:
        // An input panel (read only).
        explicit Panel(const Matrix<T>& from) {
            if (kTransposedPanels) {
                copy_ = Matrix<T>(from.cols, from.rows);
                for (index j = 0; j < from.cols; ++j)
                    for (index i = 0; i < from.rows; ++i) copy_(j, i) = from(i, j);
                point_at(copy_);
            } else {
                point_at(const_cast<Matrix<T>&>(from));  // BLAS reads it only
            }
        }
        // An output panel; zeroed only when no product will write it.
        Panel(Matrix<T>& target, bool zero) {
            if (kTransposedPanels) {
                copy_ = Matrix<T>(target.cols, target.rows);  // zeros
                point_at(copy_);
            } else {
                if (zero) std::fill(target.values.begin(), target.values.end(), T(0));
                point_at(target);
            }
        }
        T* data() const { return data_; }
        index ld() const { return ld_; }
        // Address of row `row` of the (rows x l) panel.
        T* row(index r) const { return data_ + (kTransposedPanels ? r * ld_ : r); }
        void store(Matrix<T>& to) const {
            if (!kTransposedPanels) return;  // written in place
            for (index j = 0; j < to.cols; ++j)
                for (index i = 0; i < to.rows; ++i) to(i, j) = copy_(j, i);
        }

      private:
        void point_at(Matrix<T>& m) {
            data_ = m.data();
            ld_ = m.ld();
        }
        Matrix<T> copy_;
        T* data_ = nullptr;
        index ld_ = 1;
    };

    void poll() const {
        if (schedule_.stop) schedule_.stop->poll();
    }

    // Rows [first, first + count) of Y = M X (l = cols of the panels).
    void product(index first, index count, const Panel& x, Panel& y) const {
        const T* block = m_.data + first * m_.ld;
        if (kTransposedPanels) {  // Y_b^T = X^T M_b^T
            Blas<T>::gemm('N', 'N', l_, count, m_.cols, T(1), x.data(), x.ld(), block, m_.ld,
                          T(0), y.row(first), y.ld());
        } else {
            Blas<T>::gemm('T', 'N', count, l_, m_.cols, T(1), block, m_.ld, x.data(), x.ld(),
                          T(0), y.row(first), y.ld());
        }
    }

    // Z (+)= M_b^T Y_b for rows [first, first + count).
    void transposed_product(index first, index count, const Panel& y, Panel& z,
                            bool accumulate) const {
        const T* block = m_.data + first * m_.ld;
        const T beta = accumulate ? T(1) : T(0);
        if (kTransposedPanels) {  // Z^T (+)= Y_b^T M_b
            Blas<T>::gemm('N', 'T', l_, m_.cols, count, T(1), y.row(first), y.ld(), block,
                          m_.ld, beta, z.data(), z.ld());
        } else {
            Blas<T>::gemm('N', 'N', m_.cols, l_, count, T(1), block, m_.ld, y.row(first), y.ld(),
                          beta, z.data(), z.ld());
        }
    }

    ConstView<T> m_;
    Schedule schedule_;
    index l_ = 0;
    index block_ = 1;
    int parts_ = 1;
};

// W <- orth(M^T M W), `iters` times, on the row-major M of `blocks` (rows x cols);
// W is (cols x l). Each iteration reads M once where the kernels run
// (RowBlocks::normal_product), twice on the BLAS path. The
// last W is orthonormal to rounding when `last` is final, else a basis.
template <class T>
void normal_iterations(const RowBlocks<T>& blocks, Matrix<T>& w, index iters,
                       Orthonormal last = Orthonormal::basis) {
    if (iters <= 0) return;
    Matrix<T> z(w.rows, w.cols);
    for (index it = 0; it < iters; ++it) {
        blocks.normal_product(w, z);
        orthonormalize(z, it + 1 == iters ? last : Orthonormal::basis);
        std::swap(w, z);
    }
}

template <class T>
double panel_spread(const Matrix<T>& panel, index k, int power);

// Whether the power iterations may run as one product A^T (A W) each (then one
// orthonormalisation) rather than HMT's two (Algorithm 4.4: W <- orth(A^T orth(A W))),
// from `spread` = (sigma_1 / sigma_k)^2 as panel_spread estimates it (about twice too
// high). In the single product the k-th direction enters at sigma_k^2 beside
// sigma_1^2, and T's rounding moves it by up to about eps * spread of itself; HMT's
// orthonormalisation in between keeps that to eps * sigma_1 / sigma_k. The bound
// 4e-3 is where the measured loss begins (docs/reliability.md, "One product or two
// per power iteration"); past it the iterations are split, at one more pass over A
// per iteration where the fused kernel runs.
template <class T>
bool one_product_suffices(double spread) {
    return double(std::numeric_limits<T>::epsilon()) * spread <= 4e-3;
}

// W <- orth(M^T M W), `iters` times, on the row-major M of `blocks`, as one product
// or two per iteration (one_product_suffices) by `spread`, or, when that is NaN (not
// yet known), by the spread the first iteration's M W shows: the fused kernel keeps
// M W on the way (one pass over M), and a split first iteration reuses it.
template <class T>
void power_iterations(const RowBlocks<T>& blocks, Matrix<T>& w, index iters, index k,
                      double spread, Orthonormal last = Orthonormal::basis) {
    Matrix<T> z(w.rows, w.cols), y;
    for (index it = 0; it < iters; ++it) {
        if (std::isnan(spread)) {
            blocks.normal_product(w, z, &y);
            spread = panel_spread(y, k, 1);
            if (!one_product_suffices<T>(spread)) {
                orthonormalize(y, Orthonormal::basis);
                blocks.multiply_transposed(y, z);
            }
        } else if (one_product_suffices<T>(spread)) {
            blocks.normal_product(w, z);
        } else {
            if (y.rows != blocks.rows() || y.cols != w.cols) y = Matrix<T>(blocks.rows(), w.cols);
            blocks.multiply(w, y);
            orthonormalize(y, Orthonormal::basis);
            blocks.multiply_transposed(y, z);
        }
        orthonormalize(z, it + 1 == iters ? last : Orthonormal::basis);
        std::swap(w, z);
    }
}

// Q = orth(Y) and Bt = A^T Q from Y = A W and Z = A^T Y, without another pass over
// A: Cholesky-QR2 gives Q = Y R^-1 (R upper triangular, R^T R = Y^T Y), so
// A^T Q = Z R^-1. In exact arithmetic that is the same Bt as a product with Q. In
// rounding, Z's error may be amplified by up to cond(Y), so the step is taken only
// when eps (sigma_1 / sigma_l) (sigma_1 / sigma_{k+1}) <= 1, from Y's singular
// values (about A's: W spans A's leading right singular space). That bound is far
// from reached: the amplified error lies mostly in the directions beyond the k kept.
// Measured with the limit lifted, on 3000 x 1500 matrices of rank k plus noise
// (k = 10 to 50, float32 and float64, 3 power iterations), with the estimate from
// 1e-3 to 2e8: the spectral error matched the extra pass's to 1e-6 of itself up to
// an estimate of 12 and to 6e-5 at 1.2e3, and the singular values and U's
// orthonormality stayed at rounding throughout. (And in NumPy, at 3000 x 2000 and
// 5000 x 2000 with spectra 1/i and exp(-i/10), to 1e-6 and 1e-8.) Returns false,
// leaving Y and Z as they were, when the estimate or a Cholesky step refuses (Y
// rank-deficient); the caller then orthonormalises Y and multiplies.
template <class T>
bool orthonormalize_with_product(Matrix<T>& y, Matrix<T>& z, index k) {
    const index m = y.rows, l = y.cols;
    if (m < 4 * l || l == 0) return false;
    // The steps work in float64 on panels of T (cholesky_qr_step); Y and Z change only
    // once every check has passed.
    Matrix<double> r1(l, l), r2(l, l);  // end as R1^-1 and R2^-1
    if (!cholesky_inverse_factor(y, r1)) return false;
    // Y's singular values are R1's, the reciprocals of R1^-1's (descending: s).
    Matrix<double> work = r1;
    std::vector<double> s(static_cast<std::size_t>(l));
    gesdd<double>('N', work, s.data(), nullptr, nullptr);
    const double first = 1 / s.back(), last = 1 / s.front();
    const double next = 1 / s[static_cast<std::size_t>(l - 1 - std::min(k, l - 1))];
    const double estimate =
        double(std::numeric_limits<T>::epsilon()) * (first / last) * (first / next);
    if (!(estimate <= 1.0)) return false;
    if (one_cholesky_step_suffices<T>(first / last)) {
        times_upper(y, r1);
    } else {
        Matrix<T> q = y;
        times_upper(q, r1);
        if (!cholesky_qr_step(q, r2)) return false;
        y = std::move(q);
        // Bt = Z R1^-1 R2^-1, with the two small factors multiplied first.
        Blas<double>::trmm('R', 'U', 'N', 'N', l, l, 1.0, r2.data(), r2.ld(), r1.data(),
                           r1.ld());
    }
    times_upper(z, r1);
    return true;
}

// Steps 2-3 of the randomized SVD in T: Q (m x l), an orthonormal basis of
// range((A A^T)^q A Omega), and Bt = A^T Q (n x l), running `iters` power
// iterations from `start`: Omega, or (`started`) the panel that float32 iterations
// reached (float32_iterations: W for row-major A, orthonormal Q for column-major).
// HMT's Algorithm 4.4 orthonormalises after every product and reads A twice per
// power iteration. Here each iteration is one product A^T (A W) (normal_iterations)
// with one orthonormalisation (two, HMT's, where the spectrum asks for them:
// power_iterations): the same subspace in exact arithmetic; where the
// kernels run, A is read q + 2 times instead of 2q + 2, and q + 1 times for
// row-major A when the last two products come from one pass
// (orthonormalize_with_product).
template <class T>
void range_finder(const ConstView<T>& a, Matrix<T> start, bool started, index iters, index k,
                  const Schedule& schedule, Matrix<T>& q, Matrix<T>& bt) {
    const index l = start.cols;
    if (a.row_major) {
        // Blocks are rows of A: W <- orth(A^T A W) from W = start, then Q = orth(A W)
        // and Bt = A^T Q, both from the one pass Y = A W, Z = A^T Y where that is
        // accurate (orthonormalize_with_product), else with a pass for A^T Q.
        const RowBlocks<T> blocks(a, l, schedule);
        power_iterations(blocks, start, iters, k, std::numeric_limits<double>::quiet_NaN());
        if (a.rows >= 4 * l) {  // tall enough for Cholesky-QR
            blocks.normal_product(start, bt, &q);
            if (orthonormalize_with_product(q, bt, k)) return;
        } else {
            blocks.multiply(start, q);
        }
        orthonormalize(q);
        blocks.multiply_transposed(q, bt);  // Bt = A^T Q
    } else {
        // Blocks are rows of A^T (columns of A): Q = orth(A Omega), Q <- orth(A A^T Q).
        const RowBlocks<T> blocks(a.transposed(), l, schedule);
        double spread = std::numeric_limits<double>::quiet_NaN();
        if (started) {
            q = std::move(start);
        } else {
            blocks.multiply_transposed(start, q);  // A Omega = (A^T)^T Omega
            if (iters > 0) spread = panel_spread(q, k, 1);
            orthonormalize(q, iters > 0 ? Orthonormal::basis : Orthonormal::final);
        }
        power_iterations(blocks, q, iters, k, spread, Orthonormal::final);
        blocks.multiply(q, bt);  // Bt = A^T Q
    }
}

// Writes the row-major view M (rows x cols) times 2^-exponent, rounded to float, to
// `out` (row-major, leading dimension cols).
void scaled_float_copy(const ConstView<double>& m, int exponent, float* out) {
    const double scale = std::ldexp(1.0, -exponent);
    for (index i = 0; i < m.rows; ++i) {
        const double* from = m.data + i * m.ld;
        float* to = out + i * m.cols;
        for (index j = 0; j < m.cols; ++j) to[j] = static_cast<float>(from[j] * scale);
    }
}

// Rows [first, last) of a row-major view as a view.
template <class T>
ConstView<T> row_range(const ConstView<T>& m, index first, index last) {
    return {m.data + first * m.ld, last - first, m.cols, m.ld, true};
}

// How many of `threads` to spread a pass over `entries` values on: at least 2^20 each.
int pass_parts(index entries, int threads) {
    return static_cast<int>(std::clamp<index>(entries >> 20, 1, std::max(1, threads)));
}

// max_abs (matrix.hpp) on up to `threads` threads: a pass over memory that one
// core cannot saturate.
template <class T>
T parallel_max_abs(const ConstView<T>& a, int threads) {
    const ConstView<T> m = a.row_major ? a : a.transposed();  // the same entries
    const int parts = pass_parts(m.rows * m.cols, threads);
    std::vector<T> largest(static_cast<std::size_t>(parts), T(0));
    run_parts(parts, [&](int part, int count) {
        const auto [first, last] = part_range(m.rows, 1, part, count);
        largest[static_cast<std::size_t>(part)] = max_abs(row_range(m, first, last));
    });
    return *std::max_element(largest.begin(), largest.end());  // +inf wins
}

// Float64 A rounded to float32 for the power iterations (float32_iterations): M = A
// (row-major) or A^T (column-major), row-major either way, times 2^-exponent.
struct Float32Copy {
    std::unique_ptr<KeptBuffer<float>> storage;  // null: no copy
    ConstView<float> m;
    int exponent = 0;
};

// Whether the power iterations of this call would run on a float32 copy of A (if
// the spectrum allows: float_iterations_suffice): float64 A, mixed precision asked
// for, at least one iteration to run so, and enough work to pay for the copy:
// 2 m n l >= 1e7, where the iterations' products may go to AMX too. (It was 5e7
// before the first product moved to AMX; alternating in separate processes,
// 1000 x 1000, k = 10, went 6.8-7.3 -> 5.6-6.4 ms with the copy, 2000 x 500
// 5.2-8.5 -> 5.3-6.4, 700 x 700 2.9-4.2 -> 2.6-3.9, 500 x 500 the same.)
template <class T>
bool wants_float32_copy(const ConstView<T>& a, const RandomizedSvdOptions& options) {
    if (!std::is_same_v<T, double> || options.mixed_precision == MixedPrecision::off) {
        return false;
    }
    // Verified iterations run the last product in float64 (verified_iterations).
    const index float_iters = options.mixed_precision == MixedPrecision::verified
                                  ? options.power_iters - 1
                              : a.row_major ? options.power_iters
                                            : options.power_iters - 1;
    const double flops = 2.0 * double(a.rows) * double(a.cols) * double(options.sketch_columns);
    return float_iters >= 1 && flops >= 1e7;
}

// A's largest |entry| (+inf when one is NaN or Inf), on up to `threads` threads.
// When `copy` asks for it (wants_float32_copy), the same pass also rounds A to
// float32 into copy->storage (exponent 0): reading float64 A is the expensive part.
// Without memory for the copy, `copy` is left empty and only the largest is found.
// Room for float64 A's float32 copy (row-major M = A or A^T), not yet written;
// false (no storage) without the memory.
bool allocate_float32_copy(const ConstView<double>& a, Float32Copy& copy) {
    const ConstView<double> m = a.row_major ? a : a.transposed();
    copy.storage = std::make_unique<KeptBuffer<float>>(KeptUse::float32_copy, m.rows * m.cols);
    if (!copy.storage->data()) {
        copy.storage.reset();
        return false;
    }
    copy.m = {copy.storage->data(), m.rows, m.cols, std::max<index>(m.cols, 1), true};
    return true;
}

template <class T>
T largest_entry(const ConstView<T>& a, int threads, Float32Copy* copy) {
    if constexpr (std::is_same_v<T, double>) {
        if (copy) {
            const ConstView<double> m = a.row_major ? a : a.transposed();
            if (allocate_float32_copy(a, *copy)) {
                float* out = copy->storage->data();
                const int parts = pass_parts(m.rows * m.cols, threads);
                std::vector<std::uint64_t> bits(static_cast<std::size_t>(parts), 0);
                run_parts(parts, [&](int part, int count) {
                    const auto [first, last] = part_range(m.rows, 1, part, count);
                    std::uint64_t most = 0;
                    for (index i = first; i < last; ++i) {
                        most = std::max(most, detail::float_copy_max(m.data + i * m.ld, m.cols,
                                                                     out + i * m.cols));
                    }
                    bits[static_cast<std::size_t>(part)] = most;
                });
                const std::uint64_t most = *std::max_element(bits.begin(), bits.end());
                double largest;
                std::memcpy(&largest, &most, sizeof(largest));
                return std::isfinite(largest) ? largest : std::numeric_limits<double>::infinity();
            }
        }
    }
    return parallel_max_abs(a, threads);
}

// Whether the float32 copy of A, rounded as it is (exponent 0), can be used:
// A's largest |entry| finite and in [2^-40, 2^40] (scale_float32_copy).
bool copy_usable_as_is(double largest) {
    return largest >= std::ldexp(1.0, -40) && largest <= std::ldexp(1.0, 40);
}

// Makes the copy that largest_entry rounded (exponent 0) safe for the iterations:
// A^T A W in float32 must neither overflow nor lose A to underflow, so outside
// [2^-40, 2^40] the largest entry is brought to [1, 2) by a power of two (a second
// pass, rare in practice). Drops the copy for A == 0.
void scale_float32_copy(const ConstView<double>& a, double largest, Float32Copy& copy) {
    if (!copy.storage) return;
    if (!(largest > 0)) {
        copy.storage.reset();
        return;
    }
    if (copy_usable_as_is(largest)) return;
    copy.exponent = std::ilogb(largest);
    scaled_float_copy(a.row_major ? a : a.transposed(), copy.exponent, copy.storage->data());
}

// (sigma_1 / sigma_k)^2 of A, estimated from `panel` after `power` products with A
// or A^T A (+inf when the panel cannot tell), for float_iterations_suffice below:
// whether float32 iterations find the subspace well enough for a float64 result.
// Rounding A to float32 perturbs it by about eps32 ||A||. Through the iterations
// that perturbs the k-th wanted direction by at most about eps32 (sigma_1/sigma_k)^2
// of itself; the leak is mostly orthogonal to the residual, so the spectral error
// moves by far less (the float64 products after the iterations do not amplify it).
// Float32 iterations are kept when that estimate is at most 3e-2. Measured on 2000 x
// 1000 matrices (row-major, 4 iterations, 3 seeds), with spectra 1/i (k = 100 to
// 400), 1/i^1.2, 1/i^1.5, 1/i^2, exp(-i/10) and exp(-i/5):
// up to a panel estimate of 4.1e-2 the error moved by at most 1e-4 of itself, as
// often down as up, as a different sketch moves it (between 1.5e-2 and 3e-2, on
// 1/i to 1/i^1.5 at k = 45 to 300: up by 5e-5 at most, down by 9.3e-5); at 0.24
// (past the limit), by 2.6e-3. (On exp(-i/10) and 1/i^2 it moved by under 1e-8 even
// at estimates above 1.) The estimate comes from `panel`, whose singular values are
// about sigma_i^power times those of Omega (within a factor ~1.3 of each other for a
// Gaussian n x l, n >> l); after one iteration from Omega they underestimate
// sigma_k / sigma_1 (the estimate came out about twice eps32 (sigma_1/sigma_k)^2),
// so the test errs towards float64.
template <class T>
double panel_spread(const Matrix<T>& panel, index k, int power) {
    // The panel's squared singular values are the eigenvalues of its Gram matrix,
    // formed in float64 (30 x 30 from 2000 x 30 in 0.05 ms, where gesdd of the
    // panel took 1.1 ms); ascending.
    const index l = panel.cols;
    Matrix<double> gram(l, l);
    gram_upper(panel, gram);
    for (index j = 0; j < l; ++j)
        for (index i = j + 1; i < l; ++i) gram(i, j) = gram(j, i);  // syevd reads 'L'

    std::vector<double> eigenvalues(static_cast<std::size_t>(l));
    symmetric_eigenvalues(gram, eigenvalues.data());
    const double largest = eigenvalues.back();
    const double kth = eigenvalues[static_cast<std::size_t>(l - k)];
    if (!(kth > 0) || !std::isfinite(largest)) return std::numeric_limits<double>::infinity();
    return std::pow(largest / kth, 1.0 / power);  // (sigma_1 / sigma_k)^2
}

// Whether float32 iterations find the subspace, from panel_spread.
bool float_iterations_suffice(double spread) {
    return double(std::numeric_limits<float>::epsilon()) * spread <= 3e-2;
}

// Whether A's largest |entry| puts a power iteration's A^T A W outside LAPACK's safe
// range in T (gesdd scales at the same bounds): then randomized_svd runs on a copy
// of A scaled by a power of two. Zero is safe (nothing to scale); NaN is not outside.
template <class T>
bool outside_safe_range(T largest) {
    const T safe_small = std::sqrt(std::numeric_limits<T>::min()) /
                         std::numeric_limits<T>::epsilon();
    return largest > 0 && (largest < safe_small || largest > 1 / safe_small);
}

// Whether the power iterations can go on with A whose largest |entry| that is.
bool iterations_can_use(float largest) {
    return std::isfinite(largest) && !outside_safe_range(largest);
}

// The error of the bfloat16 pieces' products (amx_product.hpp) in units of ||A||:
// about that of rounding A to 16 significant bits, 2^-16 (float32's epsilon is
// 2^-23). AMX runs the power iterations while 2^-16 (sigma_1 / sigma_k)^2, as
// panel_spread estimates it from the first product (about twice the true value), is
// at most 2 (RandomizedSvdOptions::amx_limit); that first product runs on AMX too
// and is redone in float32 when its estimate is past the limit (first_product).
// Measured by benchmarks/precision_study.py on 2000 x 1000 float32 matrices, k = 10
// to 300, l = k + 10, 3 seeds, spectra 1/sqrt(i), 1/i, 1/i^1.5, 1/i^2, exp(-i/10)
// and exp(-i/5), the limit lifted, against the float32 products
// (benchmarks/results/amx-precision-2026-11-30-first.md): up to a true value of 1.4
// the spectral error moved by at most 3.4e-4 of itself (1/i at k = 150, where the
// error is 1.038 of the optimum), as often down as up, and by at most a 22nd of what
// it moved between the three seeds; 1e-6 on 1/i up to k = 30; by 2.6e-3 to 3.7e-3
// at 50 to 400 and 2.4e-2 at 7.7e3. With the first product in float32 (the study's
// earlier run, amx-precision-2026-11-30.md) the changes were 5.8e-5 up to 1.4: the
// first iteration's rounding reaches the result more than the later ones', but
// stays well inside the spread between sketches. (The float32 iterations' limit,
// 3e-2, comes from a separate study, in which every iteration ran in float32:
// float_iterations_suffice.)
constexpr double kBf16x3Unit = 1.0 / 65536;

// The spread limits of the AMX iterations, in units of 2^-16 (sigma_1 / sigma_k)^2
// as panel_spread estimates it: up to `two_pieces` (amx_limit), A in two bfloat16
// pieces; up to `one_piece` (amx_one_piece_limit, 0.15: a true value of about
// 0.075), the iterations after the first in one (AmxPieces::one: three tile products
// for five, half the split; 0.70-0.75x the time of a pass). The first keeps two:
// its product also makes the estimate. Measured as for the limit above with the
// iterations after the first in one piece
// (benchmarks/results/amx-precision-2026-11-30-one-piece.md, `--pieces one`): up to
// a true value of 0.075 the error moved by at most 2.2e-4 of itself (1/sqrt(i) at
// k = 100, error 1.049 of the optimum; two pieces: 1.6e-4), on the other spectra by
// at most 9.9e-5 (1/i at k = 70; two pieces: 7.3e-5) and 6e-7 up to 0.03 (two
// pieces: 1e-6); up to 1.4, by as much as 7.5e-4 (1/i at k = 300; two pieces:
// 3.4e-4), which is why this limit is lower than amx_limit.
struct AmxLimits {
    double two_pieces, one_piece;
};
AmxLimits amx_limits(const RandomizedSvdOptions& options) {
    return {options.tuning.amx_limit, std::min(options.tuning.amx_limit, options.tuning.amx_one_piece_limit)};
}
// Products smaller than this (2 m n l) stay on the float32 kernels.
constexpr double kAmxMinFlops = 1e7;

// Whether the power iterations of row-major float32 M (rows x cols) with an l-column
// panel may run on AMX, spectrum permitting: AMX is there and the products are
// large enough.
bool amx_may_run(const ConstView<float>& m, index l) {
    const double flops = 2.0 * double(m.rows) * double(m.cols) * double(l);
    return m.row_major && flops >= kAmxMinFlops && amx_enabled();
}

// The first power iteration's product z = M^T M Omega (cols x l) and its
// panel_spread (k wanted): on AMX when it runs there and the spread it shows is within
// amx_limit (it is an estimate from a product off by 2^-16 ||M||^2 ||Omega||, which
// moves it only where the spectrum is far past the limit); else, or when AMX shows a
// spread past the limit, with the float32 products. A refused AMX product costs one
// extra pass over M, and the run then has the very bits of a run without AMX.
// Measured against the float32 products (AVX-512 kernels or OpenBLAS) on 2 cores:
// 1000 x 1000, l = 20: 0.91 against 1.11 ms; 5000 x 2000, l = 60: 13-16 against 18-23
// ms; 10000 x 3000, l = 110: 66 against 112-122 ms.
// amx_product(z) runs the AMX product into z and says how that went: `declined`
// (the float32 products then run), `ran`, or `unusable`: the pass found what
// forbids going on (A's largest |entry| NaN, Inf or outside the range the
// iterations or the float32 copy allow); first_product then returns at once with an
// infinite spread and the caller acts on what was found.
enum class AmxFirst { declined, ran, unusable };

template <class AmxProduct>
double first_product(const RowBlocks<float>& blocks, const Matrix<float>& omega, index k,
                     double amx_limit, Matrix<float>& z, AmxProduct&& amx_product) {
    switch (amx_product(z)) {
        case AmxFirst::unusable: return std::numeric_limits<double>::infinity();
        case AmxFirst::ran: {
            const double spread = panel_spread(z, k, 2);
            if (kBf16x3Unit * spread <= amx_limit) return spread;
            break;
        }
        case AmxFirst::declined: break;
    }
    blocks.normal_product(omega, z);
    return panel_spread(z, k, 2);
}

// The power iterations after the first, on row-major float32 M, from the first
// product z = M^T M Omega (cols x l, not yet orthonormalised) and its panel_spread:
// W <- orth(M^T M W) `iters` times from W = orth(z). On AMX in bfloat16 pieces
// (amx_normal_product) when 2^-16 spread <= amx_limit and the product is large
// enough (2 m n l >= 1e7), A in one piece when 2^-16 spread <= the lower
// amx_one_piece_limit (AmxLimits); else the float32 products. Measured on 2 cores against
// the float32 products (AVX-512 kernels, or OpenBLAS past 2 MiB panels): 1.1-1.4x
// faster at 3000 x 2000, l = 30; 1.3x at 5000 x 2000, l = 60; 1.6x at 10000 x 3000,
// l = 110; 1.8x at 20000 x 5000, l = 210. (first_product puts the first product
// there too.)
Matrix<float> later_iterations(const RowBlocks<float>& blocks, const ConstView<float>& m,
                               Matrix<float> z, double spread, index iters,
                               const AmxLimits& limits, const Schedule& schedule) {
    const bool amx =
        iters > 0 && amx_may_run(m, z.cols) && kBf16x3Unit * spread <= limits.two_pieces;
    const AmxPieces pieces =
        kBf16x3Unit * spread <= limits.one_piece ? AmxPieces::one : AmxPieces::two;
    orthonormalize(z, Orthonormal::basis);
    if (!amx) {
        normal_iterations(blocks, z, iters);
        return z;
    }
    Matrix<float> next(z.rows, z.cols);
    for (index it = 0; it < iters; ++it) {
        if (!amx_normal_product(m, z, next, schedule.threads, schedule.stop, nullptr, pieces)) {
            blocks.normal_product(z, next);
        }
        orthonormalize(next, Orthonormal::basis);
        std::swap(z, next);
    }
    return z;
}

// Whether float32 iterations on AMX may run for A (amx_may_run), from q power
// iterations: the first product then goes there and can find A's largest |entry| on
// the way (float_power_iterations).
bool float_power_iterations_run(const ConstView<float>& a, index l, index iters) {
    return iters >= 2 && amx_may_run(a, l);
}

// All q power iterations of row-major float32 A (W, for range_finder's last pass),
// when they may run on AMX (first_product, later_iterations); nothing (range_finder runs them as
// before) when AMX cannot run or fewer than two iterations are asked for. With
// `largest`, A's largest |entry| comes from the first product's pass (negative when
// that product could not run on AMX after all); nothing when the iterations cannot
// use it (randomized_svd then refuses A or scales it).
std::optional<Matrix<float>> float_power_iterations(const ConstView<float>& a,
                                                    const Matrix<float>& omega, index k,
                                                    index iters, const AmxLimits& limits,
                                                    const Schedule& schedule,
                                                    float* largest = nullptr) {
    if (!float_power_iterations_run(a, omega.cols, iters)) return std::nullopt;
    const RowBlocks<float> blocks(a, omega.cols, schedule);
    Matrix<float> z(a.cols, omega.cols);
    // With `largest`, the AMX product also finds A's largest |entry| (left negative
    // when it does not run).
    const double spread =
        first_product(blocks, omega, k, limits.two_pieces, z, [&](Matrix<float>& out) {
        if (!amx_normal_product(a, omega, out, schedule.threads, schedule.stop, largest))
            return AmxFirst::declined;
        return largest && !iterations_can_use(*largest) ? AmxFirst::unusable : AmxFirst::ran;
    });
    if (largest && !iterations_can_use(*largest)) return std::nullopt;
    // Past AMX's limit and past one float32 product's (one_product_suffices):
    // range_finder runs the iterations from Omega as a run without AMX does.
    if (!(kBf16x3Unit * spread <= limits.two_pieces) && !one_product_suffices<float>(spread)) {
        return std::nullopt;
    }
    return later_iterations(blocks, a, std::move(z), spread, iters - 1, limits, schedule);
}

// Whether float64 A's float32 copy is written by the first power iteration's AMX
// pass (float32_iterations with `rounding`) instead of a pass of its own
// (largest_entry): row-major A that wants the copy (wants_float32_copy) and whose
// iterations may run on AMX. That pass then reads float64 A, rounds it, writes the
// copy and finds A's largest entry, where the separate pass had read A and the
// first product the copy; the copy holds the same bits (static_cast's rounding),
// and so does the result. Alternating old and new builds process by process (8
// rounds of 60 calls): 1000 x 1000, k = 10, 4.4-6.2 -> 3.2-5.2 ms (medians 4.8 ->
// 4.3); 3000 x 2000, k = 20, about 31 -> 28 ms (6 rounds, noisy).
template <class T>
bool copy_in_first_pass(const ConstView<T>& a, const RandomizedSvdOptions& options) {
    const ConstView<float> shape{nullptr, a.rows, a.cols, a.cols, a.row_major};
    return options.mixed_precision == MixedPrecision::fast && wants_float32_copy(a, options) &&
           a.row_major &&
           float_power_iterations_run(shape, options.sketch_columns, options.power_iters);
}

// The power iterations of float64 A on a float32 copy of A, whose products run
// about twice as fast and read half the memory: all q of them for row-major A,
// returning W; for column-major A, Q = orth(A Omega) and all but the last, returning
// Q. range_finder continues from there in float64 (Q = orth(A W), or the last
// iteration, then Bt = A^T Q). For row-major A the iterations go further down, to
// AMX's bfloat16 pieces, where first_product and later_iterations accept. Nothing,
// and float64 all through, when there is no copy (wants_float32_copy,
// largest_entry) or the spectrum makes it unsafe (float_iterations_suffice).
//
// With `rounding` (row-major A whose copy has room but is not yet written:
// copy_in_first_pass), the first product runs on AMX from A itself and writes the
// copy on the way (amx_normal_product_rounding), and *rounding is A's largest
// |entry|: nothing is returned when that does not leave the copy usable as it is
// (NaN, Inf, outside [2^-40, 2^40] or zero: the caller decides, as after
// largest_entry), and *rounding is -1, nothing written, when AMX declined.
template <class T>
std::optional<Matrix<T>> float32_iterations(const ConstView<T>& a, const Matrix<T>& omega,
                                            const RandomizedSvdOptions& options,
                                            const Float32Copy& copy, const Schedule& schedule,
                                            double* rounding = nullptr) {
    if constexpr (!std::is_same_v<T, double>) {
        return std::nullopt;
    } else {
        if (!copy.storage) return std::nullopt;  // not worth it, or no memory for it
        const index k = options.rank, l = omega.cols, iters = options.power_iters;
        const index float_iters = a.row_major ? iters : iters - 1;
        const ConstView<float>& m32 = copy.m;
        const RowBlocks<float> blocks(m32, l, schedule);
        Matrix<float> panel = cast<float>(omega);
        // The first product also decides.
        if (a.row_major) {  // W <- orth(A^T A W)
            Matrix<float> z(m32.cols, l);
            const auto amx_product = [&](Matrix<float>& out) {
                if (rounding) {  // the copy is not written yet: no float32 products
                    if (!amx_normal_product_rounding(a, panel, out, schedule.threads,
                                                     schedule.stop, copy.storage->data(),
                                                     rounding)) {
                        *rounding = -1;
                        return AmxFirst::unusable;
                    }
                    return copy_usable_as_is(*rounding) ? AmxFirst::ran : AmxFirst::unusable;
                }
                return float_power_iterations_run(m32, l, float_iters) &&
                               amx_normal_product(m32, panel, out, schedule.threads,
                                                  schedule.stop)
                           ? AmxFirst::ran
                           : AmxFirst::declined;
            };
            const AmxLimits limits = amx_limits(options);
            const double spread =
                first_product(blocks, panel, k, limits.two_pieces, z, amx_product);
            if (!float_iterations_suffice(spread)) return std::nullopt;
            panel = later_iterations(blocks, m32, std::move(z), spread, float_iters - 1,
                                     limits, schedule);
        } else {  // Q = orth(A Omega), Q <- orth(A A^T Q)
            Matrix<float> q(m32.cols, l);
            blocks.multiply_transposed(panel, q);
            if (!float_iterations_suffice(panel_spread(q, k, 1))) return std::nullopt;
            orthonormalize(q, Orthonormal::basis);
            panel = std::move(q);
            normal_iterations(blocks, panel, float_iters);
        }
        return cast<double>(panel);
    }
}

// ---- Verified mixed precision (MixedPrecision::verified) ----
//
// The power iterations may run below the working precision T (AMX's bfloat16
// pieces, a float32 copy of float64 A) only while that leaves the result what T's
// iterations would have given: the mark the lower precision leaves on an iterate
// (a leak out of the wanted subspace of about unit * (sigma_1 / sigma_k)^2) must
// be at most 1/margin of the leak T's iterations are still removing at that
// point. Both shrink alike in every later iteration, so the ratio holds to the end.
// The leak is measured, not assumed: each product M^T M W also gives the Ritz
// residuals of the iterate W it was applied to (ritz_leak). An iterate found to
// leak less than its precision allows is dropped; the iterations go back to the
// one before it, one precision up. The last product always runs in T, so the last
// lower-precision iterate is measured too. The margin is
// RandomizedSvdOptions::leak_margin; how it was chosen: docs/reliability.md
// ("Verified mixed precision").

// The precisions, lowest first; `working` is T's (float32 for float32 A).
enum class Level { amx = 0, float32 = 1, float64 = 2 };

Level level_above(Level level) { return static_cast<Level>(static_cast<int>(level) + 1); }

// Unit of a level's products relative to ||M||^2 ||W||: bfloat16 pieces carry about
// 16 significant bits (kBf16x3Unit), float32 24.
double level_unit(Level level) {
    switch (level) {
        case Level::amx: return kBf16x3Unit;
        case Level::float32: return double(std::numeric_limits<float>::epsilon());
        case Level::float64: return double(std::numeric_limits<double>::epsilon());
    }
    return 1.0;
}

// How far the top-k Ritz vectors of span(W) (W orthonormal, rows x l) leak out of
// it, from z = M^T M W: max over j of ||z g_j - theta_j W g_j|| / theta_j, with
// (theta_j, g_j) the top-k eigenpairs of W^T z. The residual is orthogonal to span(W)
// and weighs a leak into direction i by 1 - sigma_i^2 / theta_j, so this errs low:
// towards the higher precision. +inf when the panel cannot tell (theta_k <= 0).
template <class P>
double ritz_leak(const Matrix<P>& w, const Matrix<P>& z, index k) {
    const index rows = w.rows, l = w.cols;
    const Matrix<double> wd = cast<double>(w), zd = cast<double>(z);
    Matrix<double> h(l, l);
    Blas<double>::gemm('T', 'N', l, l, rows, 1.0, wd.data(), wd.ld(), zd.data(), zd.ld(), 0.0,
                       h.data(), h.ld());
    for (index j = 0; j < l; ++j) {
        for (index i = j + 1; i < l; ++i) h(i, j) = 0.5 * (h(i, j) + h(j, i));
    }
    std::vector<double> theta(static_cast<std::size_t>(l));
    double query = 0;
    blas_int iquery = 0;
    check_lapack_info(Blas<double>::syevd('V', 'L', l, h.data(), h.ld(), theta.data(), &query,
                                          -1, &iquery, -1),
                      "syevd (workspace query)");
    std::vector<double> buffer(static_cast<std::size_t>(workspace_size(query)));
    std::vector<blas_int> ibuffer(static_cast<std::size_t>(std::max<blas_int>(1, iquery)));
    check_lapack_info(Blas<double>::syevd('V', 'L', l, h.data(), h.ld(), theta.data(),
                                          buffer.data(), static_cast<index>(buffer.size()),
                                          ibuffer.data(), static_cast<index>(ibuffer.size())),
                      "syevd");
    // Ascending: the top k are the last k, the k-th largest first among them.
    const double* g = h.column(l - k);
    Matrix<double> zg(rows, k), wg(rows, k);
    Blas<double>::gemm('N', 'N', rows, k, l, 1.0, zd.data(), zd.ld(), g, h.ld(), 0.0, zg.data(),
                       zg.ld());
    Blas<double>::gemm('N', 'N', rows, k, l, 1.0, wd.data(), wd.ld(), g, h.ld(), 0.0, wg.data(),
                       wg.ld());
    double leak = 0;
    for (index j = 0; j < k; ++j) {
        const double t = theta[static_cast<std::size_t>(l - k + j)];
        if (!(t > 0) || !std::isfinite(t)) return std::numeric_limits<double>::infinity();
        double sum = 0;
        const double* a = zg.column(j);
        const double* b = wg.column(j);
        for (index i = 0; i < rows; ++i) {
            const double r = a[i] - t * b[i];
            sum += r * r;
        }
        leak = std::max(leak, std::sqrt(sum) / t);
    }
    return leak;
}

// Where verified_iterations leaves the power iterations: the panel (W for
// row-major A, orthonormal Q for column-major) after `done` of the q products
// M^T M, for range_finder to go on from in T.
template <class T>
struct Reached {
    Matrix<T> panel;
    index done = 0;
};

// The power iterations of A, as many as the measured leaks allow below T
// (above), then one product in T. M32 is M (A, or A^T for column-major A; row-major
// either way) in float32: the copy of float64 A, or float32 A itself; `lowest` is the
// lowest precision this call may use. Nothing (range_finder from Omega, all in T)
// when the spectrum leaves no room below T or the first iterate fails its check.
template <class T>
std::optional<Reached<T>> verified_iterations(const ConstView<T>& a, const Matrix<T>& omega,
                                              index k, index iters, const ConstView<float>& m32,
                                              Level lowest, double margin,
                                              const Schedule& schedule) {
    constexpr Level working = std::is_same_v<T, double> ? Level::float64 : Level::float32;
    const index l = omega.cols;
    if (iters < 2 || k >= l) return std::nullopt;  // no lower product that T would check
    const RowBlocks<float> blocks(m32, l, schedule);
    // z = M^T M w at `level` or the first above it that runs; returns the level used.
    const auto lower_product = [&](Level level, const Matrix<float>& w, Matrix<float>& z) {
        if (level == Level::amx && amx_may_run(m32, l) &&
            amx_normal_product(m32, w, z, schedule.threads, schedule.stop)) {
            return Level::amx;
        }
        blocks.normal_product(w, z);
        return Level::float32;
    };

    // The first product: M^T M Omega (row-major A), or A Omega (column-major), from
    // which (sigma_1 / sigma_k)^2 is estimated (panel_spread, about twice too high).
    const Matrix<float> omega32 = cast<float>(omega);
    Matrix<float> current(m32.cols, l);
    Level made;
    double spread;
    if (a.row_major) {
        made = lower_product(lowest, omega32, current);
        spread = panel_spread(current, k, 2);
    } else {
        blocks.multiply_transposed(omega32, current);
        made = Level::float32;
        spread = panel_spread(current, k, 1);
    }
    // The least leak an iterate made at `level` must show (`margin` times its mark).
    const auto least_leak = [&](Level level) { return margin * level_unit(level) * spread; };
    Level floor = lowest;
    while (floor < working && !(least_leak(floor) <= 1)) floor = level_above(floor);
    if (floor >= working) return std::nullopt;
    if (made < floor) made = lower_product(floor, omega32, current);
    orthonormalize(current, Orthonormal::basis);

    // `previous`: the last iterate whose leak was measured to be enough, made at
    // `previous_made` (none: the start, Omega). `measured`: that leak (1 for the
    // start), or `current`'s once it has been measured (after a step back).
    // `rate`: the measured factor by which one product shrinks the leak.
    std::optional<Matrix<float>> previous;
    Level previous_made = made;
    double measured = 1, rate = 1;
    bool current_measured = false;
    index done = a.row_major ? 1 : 0;  // products M^T M so far
    Matrix<float> next(current.rows, l);
    while (done + 1 < iters) {  // the last product runs in T
        // The leak the next product's result will have.
        const double expected = measured * rate * (current_measured ? 1.0 : rate);
        Level level = floor;
        while (level < working && !(least_leak(level) <= expected)) level = level_above(level);
        if (level >= working) break;
        const Level used = lower_product(level, current, next);
        const double leak = ritz_leak(current, next, k);
        if (made < working && !(leak >= least_leak(made))) {
            // `current` carries too much of the precision that made it: back to the
            // iterate before, and never that low again.
            floor = std::max(floor, level_above(made));
            if (floor >= working || !previous) return std::nullopt;
            current = std::move(*previous);
            previous.reset();
            made = previous_made;
            current_measured = true;
            rate = 1;
            --done;
            continue;
        }
        if (!current_measured) rate = std::min(1.0, leak / measured);
        measured = leak;
        current_measured = false;
        previous = std::move(current);
        previous_made = made;
        current = next;
        orthonormalize(current, Orthonormal::basis);
        made = used;
        ++done;
    }

    // One product in T, which also measures the last lower-precision iterate.
    const ConstView<T> mt = a.row_major ? a : a.transposed();
    const RowBlocks<T> blocks_t(mt, l, schedule);
    Matrix<T> w = cast<T>(current), z(w.rows, l);
    blocks_t.normal_product(w, z);
    if (made < working && !(ritz_leak(w, z, k) >= least_leak(made))) {
        if (!previous) return std::nullopt;
        w = cast<T>(*previous);
        --done;
        blocks_t.normal_product(w, z);
    }
    ++done;
    orthonormalize(z, done < iters ? Orthonormal::basis : Orthonormal::final);
    return Reached<T>{std::move(z), done};
}

// Steps 2-3 for row-major float64 A after its power iterations ran on the float32
// copy (float32_iterations, which returned W): Y = A W from the copy, in float32,
// then Q = orth(Y) and Bt = A^T Q in float64. This replaces the float64 pass Y = A
// W, Z = A^T Y (then Bt = Z R^-1) by a float32 product and a float64 one (10000 x
// 3000, k = 100: 229 -> 174 ms). Only Y's span enters the result: Q is
// orthonormalised in float64 and B = Q^T A formed from A itself, so the result is
// the exact projection of A onto a basis that rounding A to float32 moved by about
// eps32 ||A||. That moves the error ||A - Q Q^T A|| by at most about eps32 sigma_1,
// against the optimum sigma_(k+1): taken while eps32 sigma_1 / sigma_(k+1) <=
// `limit` (RandomizedSvdOptions::copy_range_limit, 1e-4), as estimated from Y's
// singular values (at most A's, so the estimate errs towards float64). Else (A of
// rank k, or a floor of noise far below sigma_1, where the float64 pass finds the
// optimum to float64 rounding) it returns false, leaving q and bt alone. Measured
// on 2000 x 1000 matrices (spectra 1/sqrt(i) to 1/i^2, exp(-i/10), exp(-i/5), and
// rank 10 over floors of 1e-2 to 1e-6; k = 10 to 300, 3 seeds;
// benchmarks/copy_range_study.py, results/copy-range-2026-11-30.md) against the
// float64 pass: the spectral error moved by at most 2.4e-8 of itself (at eps32
// sigma_1 / sigma_(k+1) = 3.6e-5), the singular values by at most 3.7e-10 sigma_1,
// and U stayed orthonormal to 6e-15.
bool range_from_float32_copy(const ConstView<double>& a, const Float32Copy& copy,
                             const Matrix<double>& w, index k, double limit,
                             const Schedule& schedule, Matrix<double>& q, Matrix<double>& bt) {
    const index l = w.cols;
    if (k >= l || !(limit > 0)) return false;  // no sigma_(k+1) to compare with
    Matrix<float> y(copy.m.rows, l);
    RowBlocks<float>(copy.m, l, schedule).multiply(cast<float>(w), y);
    const double spread = panel_spread(y, k + 1, 1);  // (sigma_1 / sigma_(k+1))^2
    const double moved = double(std::numeric_limits<float>::epsilon()) * std::sqrt(spread);
    if (!(moved <= limit)) return false;
    q = cast<double>(y);
    orthonormalize(q);
    RowBlocks<double>(a, l, schedule).multiply_transposed(q, bt);
    return true;
}

}  // namespace

template <class T>
void apply_sign_convention(Matrix<T>& U, Matrix<T>& Vh) {
    for (index j = 0; j < U.cols; ++j) {
        const T* col = U.column(j);
        // The first entry of largest magnitude: that magnitude in one vectorised pass
        // (max_abs), then where it first occurs (a scalar loop that kept the running
        // best took 2.7 ms of a 10000 x 3000, k = 100 call).
        const T largest = max_abs(ConstView<T>{col, U.rows, 1, U.ld(), false});
        const T* at = std::find_if(col, col + U.rows,
                                   [largest](T value) { return std::abs(value) == largest; });
        const index best = at == col + U.rows ? 0 : at - col;
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
void symmetric_eigenvalues(Matrix<T>& work, T* out) {
    const index n = work.rows;
    if (n == 0) return;
    T query = 0;
    blas_int iquery = 0;
    check_lapack_info(Blas<T>::syevd('N', 'L', n, work.data(), work.ld(), out, &query, -1,
                                     &iquery, -1),
                      "syevd (workspace query)");
    std::vector<T> buffer(static_cast<std::size_t>(workspace_size(query)));
    std::vector<blas_int> ibuffer(static_cast<std::size_t>(std::max<blas_int>(1, iquery)));
    check_lapack_info(Blas<T>::syevd('N', 'L', n, work.data(), work.ld(), out, buffer.data(),
                                     static_cast<index>(buffer.size()), ibuffer.data(),
                                     static_cast<index>(ibuffer.size())),
                      "syevd");
}

template <class T>
void singular_values(const ConstView<T>& a, T* out) {
    if (two_stage_pays<T>(a.rows, a.cols)) {
        two_stage_singular_values(a, out);
        return;
    }
    gesdd_singular_values(a, out);
}

template <class T>
void gesdd_singular_values(const ConstView<T>& a, T* out) {
    LOWRANK_EXPECTS(all_finite(a), "A contains NaN or Inf");
    Matrix<T> work = to_matrix(a);
    gesdd<T>('N', work, out, nullptr, nullptr);
}

template <class T>
void two_stage_singular_values(const ConstView<T>& a, T* out) {
    // One pass for both: the largest |entry| is infinite when an entry is NaN or Inf.
    const T largest = max_abs(a);
    LOWRANK_EXPECTS(std::isfinite(largest), "A contains NaN or Inf");
    if (std::min(a.rows, a.cols) == 0) return;
    // A or A^T, whichever is at least as tall as wide (the same values); for
    // row-major A with rows <= cols that is a plain copy of its memory.
    Matrix<T> work = to_matrix(a.rows > a.cols || (a.rows == a.cols && !a.row_major)
                                   ? a : a.transposed());
    // Outside LAPACK's safe range gesdd scales A; here a power of two does (exact).
    const int exponent = outside_safe_range(largest) ? std::ilogb(largest) : 0;
    if (exponent != 0) {
        for (T& value : work.values) value = std::scalbn(value, -exponent);
    }
    two_stage_values(work, out);
    for (index i = 0; i < work.cols; ++i) out[i] = std::scalbn(std::fabs(out[i]), exponent);
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
Matrix<T> gaussian_sketch(index rows, index cols, std::uint64_t seed, int threads) {
    Matrix<T> omega(rows, cols);
    // Counter-based: any range of the stream is computed on its own, so the parts
    // give the same numbers as one pass (at least 2^12 entries a part: ~20 us of
    // work, against a few us to hand a part to the core's waiting threads).
    const index count = rows * cols;
    const int parts = static_cast<int>(std::clamp<index>(count >> 12, 1, std::max(1, threads)));
    run_parts(parts, [&](int part, int of) {
        const auto [first, last] = part_range(count, 4, part, of);
        philox::fill_gaussian(seed, static_cast<std::uint64_t>(first),
                              static_cast<std::uint64_t>(last - first), omega.data() + first);
    });
    return omega;
}

template <class T>
Matrix<T> gaussian_sketch(index rows, index cols, std::uint64_t seed) {
    return gaussian_sketch<T>(rows, cols, seed, core_threads());
}

template <class T>
SvdResult<T> randomized_svd(const ConstView<T>& a, const RandomizedSvdOptions& options,
                            const ConstView<T>* sketch, StopPoll* stop) {
    const index m = a.rows, n = a.cols, k = options.rank, l = options.sketch_columns;
    validate(options, m, n, sketch ? &sketch->rows : nullptr, sketch ? &sketch->cols : nullptr);
    // The core's threads for the passes over A; from the BLAS's thread count, read
    // before the BLAS is made single-threaded below.
    const int threads = core_threads();
    // A's largest |entry|: NaN and Inf are refused, and outside the safe range the
    // whole computation runs on a scaled copy (outside_safe_range). It takes a pass
    // over A of its own (for float64 A, the one that also writes the float32 copy),
    // except where the first power iteration runs on AMX: that pass finds it
    // (checked right after, before any other), and for float64 A writes the copy
    // too (`rounding`: copy_in_first_pass).
    bool deferred = false, rounding = false;
    Float32Copy copy;
    if constexpr (std::is_same_v<T, float>) {
        deferred = options.mixed_precision == MixedPrecision::fast &&
                   float_power_iterations_run(a, l, options.power_iters);
    } else {
        rounding = copy_in_first_pass(a, options) && allocate_float32_copy(a, copy);
    }
    const T largest =
        deferred || rounding
            ? T(0)
            : largest_entry(a, threads, wants_float32_copy(a, options) ? &copy : nullptr);
    LOWRANK_EXPECTS(std::isfinite(largest), "A contains NaN or Inf");
    const T sketch_largest = sketch ? max_abs(*sketch) : T(1);
    if (sketch) {
        LOWRANK_EXPECTS(std::isfinite(sketch_largest), "sketch contains NaN or Inf");
    }
    // A power iteration forms A^T A W, of size ||A||^2: it overflows or underflows
    // long before A does. Outside LAPACK's safe range for that (gesdd scales at the
    // same bounds) the iterations run on a copy of A scaled by a power of two, exact
    // to the bit, and the singular values are scaled back.
    const auto on_scaled_copy = [&](T most) {
        const int exponent = std::ilogb(most);
        Matrix<T> scaled = to_matrix(a);
        for (T& value : scaled.values) value = std::scalbn(value, -exponent);
        SvdResult<T> out = randomized_svd(scaled.view(), options, sketch, stop);
        for (T& value : out.S) value = std::scalbn(value, exponent);
        return out;
    };
    if (outside_safe_range(largest)) {
        copy.storage.reset();
        return on_scaled_copy(largest);
    }

    // From here on the BLAS runs single-threaded and the products run on the core's
    // threads (RowBlocks), as many as the BLAS would have used: a threaded BLAS's
    // idle workers spin and would compete with them.
    const Schedule schedule{options.tuning.block_bytes, threads, stop};
    const SingleThreadedBlas single_threaded_blas;
    const PanelThreads panel_threads(threads);
    if constexpr (std::is_same_v<T, double>) {
        if (!rounding) scale_float32_copy(a, largest, copy);
    }

    // Step 1: the test matrix Omega (n x l), Gaussian from Philox or given. Only the
    // span of a given one matters, so it is scaled by a power of two (exact) to
    // entries of order 1, like the Gaussian's: A^T A Omega then stays in range too.
    Matrix<T> omega = sketch ? to_matrix(*sketch) : gaussian_sketch<T>(n, l, options.seed, threads);
    if (sketch && sketch_largest > 0) {
        const int exponent = std::ilogb(sketch_largest);
        for (T& value : omega.values) value = std::scalbn(value, -exponent);
    }

    // Steps 2-3: an orthonormal basis Q (m x l) of range((A A^T)^q A Omega), and
    // Bt = (Q^T A)^T = A^T Q (n x l) for step 4. The power iterations run below the
    // working precision when that is safe: float64 input on a float32 copy of A
    // (float32_iterations), and from the second on, for row-major A, on AMX in
    // bfloat16 pieces (later_iterations; float_power_iterations for float32 A). The
    // products in T that follow make the result accurate in T.
    Matrix<T> q(m, l), bt(n, l);
    std::optional<Matrix<T>> reached;  // the panel the lower-precision iterations reached
    index iters_left = options.power_iters;  // and the products M^T M still to run in T
    const bool fast = options.mixed_precision == MixedPrecision::fast;
    if constexpr (std::is_same_v<T, float>) {
        if (fast) {
            float seen = -1;
            reached = float_power_iterations(a, omega, k, options.power_iters,
                                             amx_limits(options), schedule,
                                             deferred ? &seen : nullptr);
            if (deferred) {
                if (seen < 0) seen = largest_entry(a, threads, nullptr);  // (not seen)
                LOWRANK_EXPECTS(std::isfinite(seen), "A contains NaN or Inf");
                if (outside_safe_range(seen)) return on_scaled_copy(seen);
            }
            if (reached) iters_left = 0;
        } else if (options.mixed_precision == MixedPrecision::verified && a.row_major &&
                   amx_may_run(a, l)) {
            if (auto got = verified_iterations(a, omega, k, options.power_iters, a,
                                               Level::amx, options.tuning.leak_margin, schedule)) {
                reached = std::move(got->panel);
                iters_left = options.power_iters - got->done;
            }
        }
    } else if (rounding) {
        // The first pass wrote the copy and found A's largest entry; then the checks
        // that follow largest_entry above. Where the copy needs scaling (or AMX
        // declined after all), the iterations start again from the copy as usual.
        double seen = -1;
        reached = float32_iterations(a, omega, options, copy, schedule, &seen);
        const bool declined = seen < 0;
        if (declined) seen = largest_entry(a, threads, &copy);
        LOWRANK_EXPECTS(std::isfinite(seen), "A contains NaN or Inf");
        if (outside_safe_range(seen)) {
            copy.storage.reset();
            return on_scaled_copy(seen);
        }
        if (declined || !copy_usable_as_is(seen)) {
            scale_float32_copy(a, seen, copy);  // (drops the copy when A is zero)
            reached = float32_iterations(a, omega, options, copy, schedule);
        }
        if (reached) iters_left = a.row_major ? 0 : 1;
    } else if (fast) {
        reached = float32_iterations(a, omega, options, copy, schedule);
        if (reached) iters_left = a.row_major ? 0 : 1;
    } else if (copy.storage) {  // verified
        const Level lowest = a.row_major && amx_may_run(copy.m, l) ? Level::amx : Level::float32;
        if (auto got = verified_iterations(a, omega, k, options.power_iters, copy.m, lowest,
                                           options.tuning.leak_margin, schedule)) {
            reached = std::move(got->panel);
            iters_left = options.power_iters - got->done;
        }
    }
    bool ranged = false;
    if constexpr (std::is_same_v<T, double>) {
        ranged = fast && reached && a.row_major &&
                 range_from_float32_copy(a, copy, *reached, k, options.tuning.copy_range_limit,
                                         schedule, q, bt);
    }
    copy.storage.reset();  // the float64 products need the memory more
    if (!ranged) {
        const bool started = reached.has_value();
        range_finder(a, started ? std::move(*reached) : std::move(omega), started, iters_left, k,
                     schedule, q, bt);
    }

    // Step 4: the small SVD, Bt = V S Ub^T, so B = Ub S V^T.
    Matrix<T> v(n, l), ub_t(l, l);
    std::vector<T> s(static_cast<std::size_t>(l));
    small_svd(bt, s.data(), v, ub_t);
    // Step 5: lift back, U = Q Ub, keeping the top k triplets; Vh = V^T.
    SvdResult<T> out;
    out.U = Matrix<T>(m, k);
    // On the core's threads, a range of rows each (at least 2^20 multiply-adds).
    const int lift_parts = static_cast<int>(
        std::clamp<double>(double(m) * double(k) * double(l) / 1048576.0, 1.0, threads));
    run_parts(lift_parts, [&](int part, int count) {
        const auto [first, last] = part_range(m, 64, part, count);
        if (first == last) return;
        Blas<T>::gemm('N', 'T', last - first, k, l, T(1), q.data() + first, q.ld(), ub_t.data(),
                      ub_t.ld(), T(0), out.U.data() + first, out.U.ld());
    });
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
    template void two_stage_singular_values<T>(const ConstView<T>&, T*);                     \
    template void gesdd_singular_values<T>(const ConstView<T>&, T*);                         \
    template void singular_values_batched<T>(const T*, index, index, index, T*);             \
    template void symmetric_eigenvalues<T>(Matrix<T>&, T*);                                  \
    template SvdResult<T> randomized_svd<T>(const ConstView<T>&, const RandomizedSvdOptions&, \
                                            const ConstView<T>*, StopPoll*);                 \
    template Matrix<T> gaussian_sketch<T>(index, index, std::uint64_t);                      \
    template Matrix<T> gaussian_sketch<T>(index, index, std::uint64_t, int);                 \
    template void apply_sign_convention<T>(Matrix<T>&, Matrix<T>&);

LOWRANK_INSTANTIATE(float)
LOWRANK_INSTANTIATE(double)
#undef LOWRANK_INSTANTIATE

}  // namespace lowrank
