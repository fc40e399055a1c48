#include "lowrank/svd/small_svd.hpp"

#include <algorithm>
#include <cstddef>
#include <limits>
#include <type_traits>
#include <utility>
#include <vector>

#include "lowrank/backend/blas_lapack.hpp"
#include "lowrank/backend/lapack.hpp"
#include "lowrank/kernels/panel.hpp"
#include "lowrank/runtime/parallel.hpp"
#include "lowrank/svd/orthonormalize.hpp"

namespace lowrank {

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

template <class T>
SvdResult<T> svd_from_range(const Matrix<T>& q, Matrix<T>& bt, index k, int threads) {
    const index m = q.rows, n = bt.rows, l = bt.cols;
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

template void small_svd<float>(Matrix<float>&, float*, Matrix<float>&, Matrix<float>&);
template void small_svd<double>(Matrix<double>&, double*, Matrix<double>&, Matrix<double>&);
template SvdResult<float> svd_from_range<float>(const Matrix<float>&, Matrix<float>&, index, int);
template SvdResult<double> svd_from_range<double>(const Matrix<double>&, Matrix<double>&, index,
                                                  int);

}  // namespace lowrank
