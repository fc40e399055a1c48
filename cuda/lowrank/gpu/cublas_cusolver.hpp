// cuBLAS and cuSOLVER for float and double, named once (the s/d pairs of the CPU
// core's Blas<T>, on the GPU). Each wrapper checks its status with the library's macro.
// Dimensions are int, as the libraries take them; callers check with `to_int`.
#pragma once

#include <cublas_v2.h>
#include <cusolverDn.h>

#include <climits>
#include <cstdint>
#include <stdexcept>
#include <string>

#include "lowrank/gpu/errors.hpp"

namespace lowrank::gpu {

// A dimension as the int the libraries take; larger is a ValueError, not an overflow.
inline int to_int(std::int64_t value, const char* what) {
    if (value < 0 || value > INT_MAX) {
        throw std::invalid_argument(std::string(what) + " = " + std::to_string(value) +
                                    " is too large for cuBLAS/cuSOLVER (at most 2^31 - 1)");
    }
    return static_cast<int>(value);
}

inline cublasOperation_t op_of(char op) { return op == 'T' ? CUBLAS_OP_T : CUBLAS_OP_N; }

template <class T>
struct Lib;

#define LOWRANK_GPU_TRAITS(T, S)                                                              \
    template <>                                                                               \
    struct Lib<T> {                                                                           \
        static void gemm(cublasHandle_t h, char ta, char tb, int m, int n, int k, T alpha,     \
                         const T* a, int lda, const T* b, int ldb, T beta, T* c, int ldc) {   \
            LOWRANK_CUBLAS_TRY(cublas##S##gemm(h, op_of(ta), op_of(tb), m, n, k, &alpha, a, lda, b,   \
                                       ldb, &beta, c, ldc));                                  \
        }                                                                                     \
        /* C = alpha op(A) + beta op(B), (m x n). */                                          \
        static void geam(cublasHandle_t h, char ta, char tb, int m, int n, T alpha,           \
                         const T* a, int lda, T beta, const T* b, int ldb, T* c, int ldc) {   \
            LOWRANK_CUBLAS_TRY(cublas##S##geam(h, op_of(ta), op_of(tb), m, n, &alpha, a, lda, &beta,  \
                                       b, ldb, c, ldc));                                      \
        }                                                                                     \
        static int geqrf_size(cusolverDnHandle_t h, int m, int n, T* a, int lda) {            \
            int lwork = 0;                                                                    \
            LOWRANK_CUSOLVER_TRY(cusolverDn##S##geqrf_bufferSize(h, m, n, a, lda, &lwork));            \
            return lwork;                                                                     \
        }                                                                                     \
        static void geqrf(cusolverDnHandle_t h, int m, int n, T* a, int lda, T* tau, T* work, \
                          int lwork, int* info) {                                             \
            LOWRANK_CUSOLVER_TRY(cusolverDn##S##geqrf(h, m, n, a, lda, tau, work, lwork, info));       \
        }                                                                                     \
        static int orgqr_size(cusolverDnHandle_t h, int m, int n, int k, const T* a, int lda, \
                              const T* tau) {                                                 \
            int lwork = 0;                                                                    \
            LOWRANK_CUSOLVER_TRY(cusolverDn##S##orgqr_bufferSize(h, m, n, k, a, lda, tau, &lwork));    \
            return lwork;                                                                     \
        }                                                                                     \
        static void orgqr(cusolverDnHandle_t h, int m, int n, int k, T* a, int lda,           \
                          const T* tau, T* work, int lwork, int* info) {                      \
            LOWRANK_CUSOLVER_TRY(cusolverDn##S##orgqr(h, m, n, k, a, lda, tau, work, lwork, info));    \
        }                                                                                     \
        static int gesvd_size(cusolverDnHandle_t h, int m, int n) {                           \
            int lwork = 0;                                                                    \
            LOWRANK_CUSOLVER_TRY(cusolverDn##S##gesvd_bufferSize(h, m, n, &lwork));                    \
            return lwork;                                                                     \
        }                                                                                     \
        /* m >= n (cuSOLVER's requirement); rwork has min(m, n) - 1 entries. */               \
        static void gesvd(cusolverDnHandle_t h, signed char jobu, signed char jobvt, int m,   \
                          int n, T* a, int lda, T* s, T* u, int ldu, T* vt, int ldvt,         \
                          T* work, int lwork, T* rwork, int* info) {                          \
            LOWRANK_CUSOLVER_TRY(cusolverDn##S##gesvd(h, jobu, jobvt, m, n, a, lda, s, u, ldu, vt,     \
                                              ldvt, work, lwork, rwork, info));               \
        }                                                                                     \
        static int gesvdj_batched_size(cusolverDnHandle_t h, int m, int n, const T* a,        \
                                       int lda, const T* s, const T* u, const T* v,           \
                                       gesvdjInfo_t params, int batch) {                      \
            int lwork = 0;                                                                    \
            LOWRANK_CUSOLVER_TRY(cusolverDn##S##gesvdjBatched_bufferSize(                              \
                h, CUSOLVER_EIG_MODE_NOVECTOR, m, n, a, lda, s, u, m, v, n,                   \
                &lwork, params, batch));                                                      \
            return lwork;                                                                     \
        }                                                                                     \
        /* u (m x m) and v (n x n) per matrix: not computed, given for safety. */             \
        static void gesvdj_batched(cusolverDnHandle_t h, int m, int n, T* a, int lda, T* s,   \
                                   T* u, T* v, T* work, int lwork, int* info,                 \
                                   gesvdjInfo_t params, int batch) {                          \
            LOWRANK_CUSOLVER_TRY(cusolverDn##S##gesvdjBatched(h, CUSOLVER_EIG_MODE_NOVECTOR, m, n, a,  \
                                                      lda, s, u, m, v, n, work,               \
                                                      lwork, info, params, batch));           \
        }                                                                                     \
        static int syevd_size(cusolverDnHandle_t h, cublasFillMode_t uplo, int n, const T* a, \
                              int lda, const T* w) {                                          \
            int lwork = 0;                                                                    \
            LOWRANK_CUSOLVER_TRY(cusolverDn##S##syevd_bufferSize(h, CUSOLVER_EIG_MODE_NOVECTOR, uplo,  \
                                                         n, a, lda, w, &lwork));              \
            return lwork;                                                                     \
        }                                                                                     \
        static void syevd(cusolverDnHandle_t h, cublasFillMode_t uplo, int n, T* a, int lda,  \
                          T* w, T* work, int lwork, int* info) {                              \
            LOWRANK_CUSOLVER_TRY(cusolverDn##S##syevd(h, CUSOLVER_EIG_MODE_NOVECTOR, uplo, n, a, lda,  \
                                              w, work, lwork, info));                         \
        }                                                                                     \
    };

LOWRANK_GPU_TRAITS(float, S)
LOWRANK_GPU_TRAITS(double, D)
#undef LOWRANK_GPU_TRAITS

// Owns a gesvdjInfo_t (the parameters of the Jacobi SVD).
class GesvdjParams {
  public:
    GesvdjParams() { LOWRANK_CUSOLVER_TRY(cusolverDnCreateGesvdjInfo(&params_)); }
    ~GesvdjParams() { LOWRANK_CUSOLVER_TRY_NO_THROW(cusolverDnDestroyGesvdjInfo(params_)); }
    GesvdjParams(const GesvdjParams&) = delete;
    GesvdjParams& operator=(const GesvdjParams&) = delete;
    gesvdjInfo_t get() const { return params_; }

  private:
    gesvdjInfo_t params_ = nullptr;
};

}  // namespace lowrank::gpu
