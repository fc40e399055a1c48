#include "lowrank/backend/lapack.hpp"

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <vector>

#include "lowrank/backend/blas_lapack.hpp"
#include "lowrank/common/errors.hpp"

namespace lowrank {

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

#define LOWRANK_INSTANTIATE(T)                                                    \
    template void gesdd<T>(char, Matrix<T>&, T*, Matrix<T>*, Matrix<T>*);         \
    template void householder_orthonormalize<T>(Matrix<T>&);

LOWRANK_INSTANTIATE(float)
LOWRANK_INSTANTIATE(double)
#undef LOWRANK_INSTANTIATE

}  // namespace lowrank
