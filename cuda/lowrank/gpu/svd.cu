// Exact and randomized SVD, batched singular values and the Gaussian sketch on the GPU.
// The steps mirror cpp/lowrank/svd/randomized.cpp; see svd.hpp for the contract.
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <string>

#include "lowrank/common/errors.hpp"
#include "lowrank/common/philox.hpp"
#include "lowrank/gpu/common.cuh"
#include "lowrank/gpu/svd.hpp"

namespace lowrank::gpu {
namespace {

// --- kernels --------------------------------------------------------------------------

template <class T>
__global__ void nonfinite_kernel(ConstView<T> a, int* flag) {
    const index total = a.rows * a.cols;
    for (index e = blockIdx.x * static_cast<index>(blockDim.x) + threadIdx.x; e < total;
         e += static_cast<index>(gridDim.x) * blockDim.x) {
        if (!isfinite(stored(a, e))) *flag = 1;  // benign race: every writer writes 1
    }
}

// Entries [0, total) of the column-major sketch: thread c draws Philox block c, which
// gives entries 4c .. 4c+3 (the rule of lowrank/common/philox.hpp's fill_gaussian).
template <class T>
__global__ void sketch_kernel(std::uint64_t seed, std::uint64_t total, T* out) {
    const std::uint64_t blocks = (total + 3) / 4;
    for (std::uint64_t c = blockIdx.x * static_cast<std::uint64_t>(blockDim.x) + threadIdx.x;
         c < blocks; c += static_cast<std::uint64_t>(gridDim.x) * blockDim.x) {
        double z[4];
        philox::gaussian4(seed, c, z);
        for (int lane = 0; lane < 4; ++lane) {
            const std::uint64_t e = 4 * c + static_cast<std::uint64_t>(lane);
            if (e < total) out[e] = static_cast<T>(z[lane]);
        }
    }
}

// One block per column j of U (m x k, ld m): find the first entry of largest
// magnitude; if it is negative, negate column j of U and row j of Vh (k x n, ld k).
template <class T>
__global__ void sign_kernel(T* U, index m, index k, T* Vh, index n) {
    __shared__ T shared_magnitude[kThreads];
    __shared__ index shared_index[kThreads];
    __shared__ bool flip;
    const index j = blockIdx.x;
    T* column = U + j * m;
    T best = T(-1);
    index best_index = m;
    for (index i = threadIdx.x; i < m; i += blockDim.x) {
        const T magnitude = column[i] < T(0) ? -column[i] : column[i];
        if (magnitude > best) {  // strict: each thread keeps its first maximum
            best = magnitude;
            best_index = i;
        }
    }
    shared_magnitude[threadIdx.x] = best;
    shared_index[threadIdx.x] = best_index;
    __syncthreads();
    for (int stride = kThreads / 2; stride > 0; stride /= 2) {
        if (static_cast<int>(threadIdx.x) < stride) {
            const T other = shared_magnitude[threadIdx.x + stride];
            const index other_index = shared_index[threadIdx.x + stride];
            if (other > shared_magnitude[threadIdx.x] ||
                (other == shared_magnitude[threadIdx.x] &&
                 other_index < shared_index[threadIdx.x])) {
                shared_magnitude[threadIdx.x] = other;
                shared_index[threadIdx.x] = other_index;
            }
        }
        __syncthreads();
    }
    if (threadIdx.x == 0) flip = shared_index[0] < m && column[shared_index[0]] < T(0);
    __syncthreads();
    if (!flip) return;
    for (index i = threadIdx.x; i < m; i += blockDim.x) column[i] = -column[i];
    for (index c = threadIdx.x; c < n; c += blockDim.x) Vh[j + c * k] = -Vh[j + c * k];
}

// out[b] = column-major copy of the row-major (m x n) matrix in[b].
template <class T>
__global__ void transpose_stack_kernel(const T* in, index batch, index m, index n, T* out) {
    const index size = m * n, total = batch * size;
    for (index e = blockIdx.x * static_cast<index>(blockDim.x) + threadIdx.x; e < total;
         e += static_cast<index>(gridDim.x) * blockDim.x) {
        const index b = e / size, r = e % size;
        const index i = r % m, j = r / m;
        out[e] = in[b * size + i * n + j];
    }
}

// --- host helpers ---------------------------------------------------------------------

// The op that turns the stored column-major matrix of a view into the view's matrix
// ('T' for row-major), and the op for its transpose.
template <class T>
char op_of_view(const ConstView<T>& a) { return a.row_major ? 'T' : 'N'; }
template <class T>
char op_of_transpose(const ConstView<T>& a) { return a.row_major ? 'N' : 'T'; }

// A contiguous column-major copy of A, or of A^T when A is wide: the tall matrix B
// that cuSOLVER's gesvd accepts (it needs rows >= cols).
template <class T>
struct Tall {
    DeviceBuffer<T> data;
    int rows = 0, cols = 0;
    bool transposed = false;  // B = A^T
};

template <class T>
Tall<T> tall_copy(const Resources& resources, const ConstView<T>& a) {
    Tall<T> b;
    b.transposed = a.rows < a.cols;
    b.rows = to_int(std::max(a.rows, a.cols), "max(m, n)");
    b.cols = to_int(std::min(a.rows, a.cols), "min(m, n)");
    b.data = DeviceBuffer<T>(static_cast<index>(b.rows) * b.cols, resources.stream());
    if (b.cols == 0) return b;
    const char op = b.transposed ? op_of_transpose(a) : op_of_view(a);
    const int ld = to_int(a.ld, "leading dimension");
    // B = op(X) + 0 * op(X): geam is cuBLAS's copy-with-transpose.
    Lib<T>::geam(resources.cublas(), op, op, b.rows, b.cols, T(1), a.data, ld, T(0), a.data, ld,
                 b.data.data(), b.rows);
    return b;
}

// gesvd of a tall column-major (rows x cols) matrix that it may overwrite.
// With vectors: U (rows x cols, ld rows), VT (cols x cols, ld cols).
template <class T>
void gesvd(const Resources& resources, int rows, int cols, T* b, T* s, T* u, T* vt, int* info) {
    const int lwork = Lib<T>::gesvd_size(resources.cusolver(), rows, cols);
    DeviceBuffer<T> work(std::max(lwork, 1), resources.stream());
    DeviceBuffer<T> rwork(std::max(cols, 1), resources.stream());
    const signed char job = u != nullptr ? 'S' : 'N';
    Lib<T>::gesvd(resources.cusolver(), job, job, rows, cols, b, rows, s, u, rows, vt, cols,
                  work.data(), std::max(lwork, 1), rwork.data(), info);
}

// Replaces the columns of the tall panel Y (rows x cols, ld rows) by an orthonormal
// basis of their span (Householder QR: geqrf then orgqr).
template <class T>
void orthonormalize(const Resources& resources, Checks& checks, T* y, int rows, int cols) {
    DeviceBuffer<T> tau(std::max(cols, 1), resources.stream());
    const int lwork = std::max({Lib<T>::geqrf_size(resources.cusolver(), rows, cols, y, rows),
                                Lib<T>::orgqr_size(resources.cusolver(), rows, cols, cols, y,
                                                   rows, tau.data()),
                                1});
    DeviceBuffer<T> work(lwork, resources.stream());
    Lib<T>::geqrf(resources.cusolver(), rows, cols, y, rows, tau.data(), work.data(), lwork,
                  checks.info("geqrf"));
    Lib<T>::orgqr(resources.cusolver(), rows, cols, cols, y, rows, tau.data(), work.data(),
                  lwork, checks.info("orgqr"));
}

// Fixes signs (the largest-magnitude entry of each column of U positive).
template <class T>
void apply_sign_convention(const Resources& resources, T* U, index m, index k, T* Vh, index n) {
    if (k == 0) return;
    sign_kernel<T><<<to_int(k, "k"), kThreads, 0, resources.stream()>>>(U, m, k, Vh, n);
    LOWRANK_CHECK_LAUNCH();
}

template <class T>
void check_view(const ConstView<T>& a, const char* name) {
    LOWRANK_EXPECTS(a.rows >= 0 && a.cols >= 0, std::string(name) + " has a negative dimension");
    const index min_ld = a.row_major ? a.cols : a.rows;
    LOWRANK_EXPECTS(a.ld >= std::max<index>(min_ld, 1),
                    std::string(name) + " has a leading dimension below its extent");
    LOWRANK_EXPECTS(a.data != nullptr || a.rows * a.cols == 0,
                    std::string(name) + " has no data");
}

}  // namespace

// --- helpers shared with rank.cu ------------------------------------------------------

template <class T>
void flag_nonfinite(const Resources& resources, const ConstView<T>& a, int* flag) {
    const index total = a.rows * a.cols;
    if (total == 0) return;
    nonfinite_kernel<T><<<grid_for(total), kThreads, 0, resources.stream()>>>(a, flag);
    LOWRANK_CHECK_LAUNCH();
}

template <class T>
void singular_values_of(const Resources& resources, const ConstView<T>& a, T* s, int* info) {
    Tall<T> b = tall_copy(resources, a);
    if (b.cols == 0) return;
    gesvd<T>(resources, b.rows, b.cols, b.data.data(), s, nullptr, nullptr, info);
}

index stack_check_slots(index batch, index m, index n) {
    if (batch == 0 || std::min(m, n) == 0) return 0;
    return batch;  // one devInfo per matrix, whichever solver runs
}

template <class T>
void stack_singular_values(const Resources& resources, Checks& checks, const T* a, index batch,
                           index m, index n, T* out) {
    const index p = std::min(m, n);
    if (batch == 0 || p == 0) return;
    const index size = m * n;
    // Column-major tall copies: the stored row-major (m x n) matrix read column-major
    // is A^T (n x m), tall when n >= m; otherwise transpose to A (m x n).
    DeviceBuffer<T> copy(batch * size, resources.stream());
    const bool use_transpose_of_a = n >= m;
    if (use_transpose_of_a) {
        LOWRANK_CUDA_TRY(cudaMemcpyAsync(copy.data(), a, static_cast<std::size_t>(batch * size) * sizeof(T),
                                 cudaMemcpyDeviceToDevice, resources.stream()));
    } else {
        transpose_stack_kernel<T><<<grid_for(batch * size), kThreads, 0, resources.stream()>>>(
            a, batch, m, n, copy.data());
        LOWRANK_CHECK_LAUNCH();
    }
    const int rows = to_int(std::max(m, n), "max(m, n)");
    const int cols = to_int(p, "min(m, n)");
    if (rows <= 32) {
        // Small matrices: one batched Jacobi SVD (accurate to high relative precision).
        const int count = to_int(batch, "batch");
        GesvdjParams params;
        LOWRANK_CUSOLVER_TRY(cusolverDnXgesvdjSetSortEig(params.get(), 1));  // descending
        DeviceBuffer<T> u(batch * rows * rows, resources.stream());
        DeviceBuffer<T> v(batch * cols * cols, resources.stream());
        const int lwork = std::max(
            Lib<T>::gesvdj_batched_size(resources.cusolver(), rows, cols, copy.data(), rows,
                                        out, u.data(), v.data(), params.get(), count),
            1);
        DeviceBuffer<T> work(lwork, resources.stream());
        int* info = checks.infos("gesvdjBatched", batch);  // one devInfo per matrix
        Lib<T>::gesvdj_batched(resources.cusolver(), rows, cols, copy.data(), rows, out,
                               u.data(), v.data(), work.data(), lwork, info, params.get(),
                               count);
        return;
    }
    // Larger matrices: gesvd per matrix, one workspace, all on the stream.
    const int lwork = std::max(Lib<T>::gesvd_size(resources.cusolver(), rows, cols), 1);
    DeviceBuffer<T> work(lwork, resources.stream());
    DeviceBuffer<T> rwork(std::max(cols, 1), resources.stream());
    int* info = checks.infos("gesvd", batch);  // one devInfo per matrix
    for (index b = 0; b < batch; ++b) {
        Lib<T>::gesvd(resources.cusolver(), 'N', 'N', rows, cols, copy.data() + b * size, rows,
                      out + b * p, nullptr, rows, nullptr, cols, work.data(), lwork,
                      rwork.data(), info + b);
    }
}

// --- public routines ------------------------------------------------------------------

template <class T>
void gaussian_sketch(const Resources& resources, index rows, index cols, std::uint64_t seed,
                     T* out) {
    LOWRANK_EXPECTS(rows >= 0 && cols >= 0, "rows and cols must be >= 0");
    const index total = rows * cols;
    if (total == 0) return;
    sketch_kernel<T><<<grid_for((total + 3) / 4), kThreads, 0, resources.stream()>>>(
        seed, static_cast<std::uint64_t>(total), out);
    LOWRANK_CHECK_LAUNCH();
    resources.synchronize();
}

template <class T>
void exact_svd(const Resources& resources, const ConstView<T>& a, index k, T* U, T* S, T* Vh) {
    check_view(a, "A");
    const index m = a.rows, n = a.cols, p = std::min(m, n);
    LOWRANK_EXPECTS(k >= 1 && k <= p, "k must be between 1 and min(m, n) = " + std::to_string(p));
    Checks checks(resources, 2);
    flag_nonfinite(resources, a, checks.flag("A contains NaN or Inf"));
    checks.verify_inputs();  // before gesvd: cuSOLVER is never given NaN or Inf

    Tall<T> b = tall_copy(resources, a);  // B = A (m >= n) or A^T (m < n), rows >= cols = p
    DeviceBuffer<T> s(p, resources.stream());
    DeviceBuffer<T> ub(static_cast<index>(b.rows) * b.cols, resources.stream());
    DeviceBuffer<T> vtb(static_cast<index>(b.cols) * b.cols, resources.stream());
    gesvd<T>(resources, b.rows, b.cols, b.data.data(), s.data(), ub.data(), vtb.data(),
             checks.info("gesvd"));

    const int mi = to_int(m, "m"), ni = to_int(n, "n"), ki = to_int(k, "k");
    const int pi = b.cols;
    const cudaStream_t stream = resources.stream();
    LOWRANK_CUDA_TRY(cudaMemcpyAsync(S, s.data(), static_cast<std::size_t>(k) * sizeof(T),
                             cudaMemcpyDeviceToDevice, stream));
    if (!b.transposed) {
        // A = Ub S VTb: U = Ub[:, :k] (contiguous), Vh = VTb[:k, :].
        LOWRANK_CUDA_TRY(cudaMemcpyAsync(U, ub.data(), static_cast<std::size_t>(m * k) * sizeof(T),
                                 cudaMemcpyDeviceToDevice, stream));
        Lib<T>::geam(resources.cublas(), 'N', 'N', ki, ni, T(1), vtb.data(), pi, T(0),
                     vtb.data(), pi, Vh, ki);
    } else {
        // A^T = Ub S VTb, so A = VTb^T S Ub^T: U = (VTb[:k, :])^T, Vh = (Ub[:, :k])^T.
        Lib<T>::geam(resources.cublas(), 'T', 'T', mi, ki, T(1), vtb.data(), pi, T(0),
                     vtb.data(), pi, U, mi);
        Lib<T>::geam(resources.cublas(), 'T', 'T', ki, ni, T(1), ub.data(), b.rows, T(0),
                     ub.data(), b.rows, Vh, ki);
    }
    apply_sign_convention(resources, U, m, k, Vh, n);
    checks.verify();
}

template <class T>
void randomized_svd(const Resources& resources, const ConstView<T>& a,
                    const RandomizedSvdOptions& options, const ConstView<T>* sketch, T* U,
                    T* S, T* Vh) {
    check_view(a, "A");
    const index m = a.rows, n = a.cols, k = options.rank, l = options.sketch_columns;
    validate(options, m, n, sketch ? &sketch->rows : nullptr, sketch ? &sketch->cols : nullptr);
    if (sketch) check_view(*sketch, "sketch");
    const int mi = to_int(m, "m"), ni = to_int(n, "n"), ki = to_int(k, "k"),
              li = to_int(l, "sketch columns"), lda = to_int(a.ld, "leading dimension of A");
    const cudaStream_t stream = resources.stream();
    const cublasHandle_t blas = resources.cublas();
    Checks checks(resources, 2 + 2 * (1 + 2 * options.power_iters) + 1);
    flag_nonfinite(resources, a, checks.flag("A contains NaN or Inf"));
    if (sketch) flag_nonfinite(resources, *sketch, checks.flag("sketch contains NaN or Inf"));
    checks.verify_inputs();  // before geqrf/orgqr/gesvd: cuSOLVER is never given NaN or Inf

    // Step 1: the test matrix Omega (n x l), Gaussian from Philox or given.
    DeviceBuffer<T> omega(n * l, stream);
    if (sketch) {
        const char op = op_of_view(*sketch);
        const int ld = to_int(sketch->ld, "leading dimension of sketch");
        Lib<T>::geam(blas, op, op, ni, li, T(1), sketch->data, ld, T(0), sketch->data, ld,
                     omega.data(), ni);
    } else {
        sketch_kernel<T><<<grid_for((n * l + 3) / 4), kThreads, 0, stream>>>(
            options.seed, static_cast<std::uint64_t>(n * l), omega.data());
        LOWRANK_CHECK_LAUNCH();
    }
    // Step 2: sample the range, Y = A Omega, and orthonormalise: Q (m x l).
    const char op_a = op_of_view(a), op_at = op_of_transpose(a);
    DeviceBuffer<T> q(m * l, stream);
    Lib<T>::gemm(blas, op_a, 'N', mi, li, ni, T(1), a.data, lda, omega.data(), ni, T(0),
                 q.data(), mi);
    orthonormalize(resources, checks, q.data(), mi, li);
    // Step 3: power iterations, re-orthonormalising after every product
    // (HMT Algorithm 4.4): Z = orth(A^T Q), Q = orth(A Z).
    DeviceBuffer<T> z(n * l, stream);
    for (index it = 0; it < options.power_iters; ++it) {
        Lib<T>::gemm(blas, op_at, 'N', ni, li, mi, T(1), a.data, lda, q.data(), mi, T(0),
                     z.data(), ni);
        orthonormalize(resources, checks, z.data(), ni, li);
        Lib<T>::gemm(blas, op_a, 'N', mi, li, ni, T(1), a.data, lda, z.data(), ni, T(0),
                     q.data(), mi);
        orthonormalize(resources, checks, q.data(), mi, li);
    }
    // Step 4: project, B = Q^T A (l x n), and take its small SVD. gesvd wants a tall
    // matrix, so form B^T = A^T Q (n x l, n >= l) = Ut S VTt; then B = VTt^T S Ut^T.
    DeviceBuffer<T> bt(n * l, stream);
    Lib<T>::gemm(blas, op_at, 'N', ni, li, mi, T(1), a.data, lda, q.data(), mi, T(0), bt.data(),
                 ni);
    DeviceBuffer<T> s(l, stream), ut(n * l, stream), vtt(l * l, stream);
    gesvd<T>(resources, ni, li, bt.data(), s.data(), ut.data(), vtt.data(), checks.info("gesvd"));
    // Step 5: lift back, U = Q Ub[:, :k] = Q (VTt[:k, :])^T, Vh = (Ut[:, :k])^T, S = s[:k].
    Lib<T>::gemm(blas, 'N', 'T', mi, ki, li, T(1), q.data(), mi, vtt.data(), li, T(0), U, mi);
    Lib<T>::geam(blas, 'T', 'T', ki, ni, T(1), ut.data(), ni, T(0), ut.data(), ni, Vh, ki);
    LOWRANK_CUDA_TRY(cudaMemcpyAsync(S, s.data(), static_cast<std::size_t>(k) * sizeof(T),
                             cudaMemcpyDeviceToDevice, stream));
    apply_sign_convention(resources, U, m, k, Vh, n);
    checks.verify();
}

template <class T>
void singular_values_batched(const Resources& resources, const T* a, index batch, index m,
                             index n, T* out) {
    LOWRANK_EXPECTS(batch >= 0 && m >= 0 && n >= 0, "the stack has a negative dimension");
    Checks checks(resources, 1 + stack_check_slots(batch, m, n));
    // The whole stack as one row-major (batch * m x n) matrix, for the NaN/Inf scan.
    const ConstView<T> all{a, batch * m, n, std::max<index>(n, 1), true};
    flag_nonfinite(resources, all, checks.flag("A contains NaN or Inf"));
    checks.verify_inputs();  // before the solvers: cuSOLVER is never given NaN or Inf
    stack_singular_values(resources, checks, a, batch, m, n, out);
    checks.verify();
}

#define LOWRANK_INSTANTIATE(T)                                                                 \
    template void flag_nonfinite<T>(const Resources&, const ConstView<T>&, int*);              \
    template void singular_values_of<T>(const Resources&, const ConstView<T>&, T*, int*);      \
    template void stack_singular_values<T>(const Resources&, Checks&, const T*, index, index,  \
                                           index, T*);                                         \
    template void gaussian_sketch<T>(const Resources&, index, index, std::uint64_t, T*);       \
    template void exact_svd<T>(const Resources&, const ConstView<T>&, index, T*, T*, T*);      \
    template void randomized_svd<T>(const Resources&, const ConstView<T>&,                     \
                                    const RandomizedSvdOptions&, const ConstView<T>*, T*, T*,  \
                                    T*);                                                       \
    template void singular_values_batched<T>(const Resources&, const T*, index, index, index,  \
                                             T*);

LOWRANK_INSTANTIATE(float)
LOWRANK_INSTANTIATE(double)
#undef LOWRANK_INSTANTIATE

}  // namespace lowrank::gpu
