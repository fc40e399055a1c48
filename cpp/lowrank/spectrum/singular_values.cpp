#include "lowrank/spectrum/singular_values.hpp"

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <vector>

#include "lowrank/backend/blas_lapack.hpp"
#include "lowrank/backend/lapack.hpp"
#include "lowrank/common/errors.hpp"
#include "lowrank/runtime/parallel.hpp"
#include "lowrank/spectrum/band_reduction.hpp"

namespace lowrank {

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

#define LOWRANK_INSTANTIATE(T)                                                               \
    template void singular_values<T>(const ConstView<T>&, T*);                               \
    template void two_stage_singular_values<T>(const ConstView<T>&, T*);                     \
    template void gesdd_singular_values<T>(const ConstView<T>&, T*);                         \
    template void singular_values_batched<T>(const T*, index, index, index, T*);             \
    template void symmetric_eigenvalues<T>(Matrix<T>&, T*);

LOWRANK_INSTANTIATE(float)
LOWRANK_INSTANTIATE(double)
#undef LOWRANK_INSTANTIATE

}  // namespace lowrank
