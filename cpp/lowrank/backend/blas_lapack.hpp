// The one place BLAS and LAPACK are declared.
//
// The core links against no BLAS at build time. At import, the Python bindings
// fill a table of function pointers taken from SciPy's `scipy.linalg.cython_blas`
// and `cython_lapack` capsules (the route scikit-learn takes), so the extension
// uses the BLAS SciPy ships and threadpoolctl governs its threads. The
// signatures are the Fortran ones SciPy exposes: every argument by pointer,
// 32-bit integers, no hidden string lengths.
//
// Algorithms call `Blas<T>::gemm(...)` etc.; the s/d pair is named once, here.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <stdexcept>
#include <string>

namespace lowrank {

using blas_int = int;

namespace blas_lapack {

template <class T>
struct Signatures {
    using gemm = void (*)(const char*, const char*, const blas_int*, const blas_int*,
                          const blas_int*, const T*, const T*, const blas_int*, const T*,
                          const blas_int*, const T*, T*, const blas_int*);
    using syrk = void (*)(const char*, const char*, const blas_int*, const blas_int*,
                          const T*, const T*, const blas_int*, const T*, T*, const blas_int*);
    using trmm = void (*)(const char*, const char*, const char*, const char*, const blas_int*,
                          const blas_int*, const T*, const T*, const blas_int*, T*,
                          const blas_int*);
    using gesdd = void (*)(const char*, const blas_int*, const blas_int*, T*, const blas_int*,
                           T*, T*, const blas_int*, T*, const blas_int*, T*, const blas_int*,
                           blas_int*, blas_int*);
    using geqrf = void (*)(const blas_int*, const blas_int*, T*, const blas_int*, T*, T*,
                           const blas_int*, blas_int*);
    using orgqr = void (*)(const blas_int*, const blas_int*, const blas_int*, T*,
                           const blas_int*, const T*, T*, const blas_int*, blas_int*);
    using potrf = void (*)(const char*, const blas_int*, T*, const blas_int*, blas_int*);
    using trtri = void (*)(const char*, const char*, const blas_int*, T*, const blas_int*,
                           blas_int*);
    using syevd = void (*)(const char*, const char*, const blas_int*, T*, const blas_int*, T*,
                           T*, const blas_int*, blas_int*, const blas_int*, blas_int*);
    using gelqf = geqrf;
    using larft = void (*)(const char*, const char*, const blas_int*, const blas_int*, const T*,
                           const blas_int*, const T*, T*, const blas_int*);
    using larfb = void (*)(const char*, const char*, const char*, const char*, const blas_int*,
                           const blas_int*, const blas_int*, const T*, const blas_int*, const T*,
                           const blas_int*, T*, const blas_int*, T*, const blas_int*);
    using gbbrd = void (*)(const char*, const blas_int*, const blas_int*, const blas_int*,
                           const blas_int*, const blas_int*, T*, const blas_int*, T*, T*, T*,
                           const blas_int*, T*, const blas_int*, T*, const blas_int*, T*,
                           blas_int*);
    using lasq1 = void (*)(const blas_int*, T*, T*, T*, blas_int*);
};

// The pointers for one precision. Every member must be set before use.
template <class T>
struct Table {
    typename Signatures<T>::gemm gemm = nullptr;
    typename Signatures<T>::syrk syrk = nullptr;
    typename Signatures<T>::trmm trmm = nullptr;
    typename Signatures<T>::gesdd gesdd = nullptr;
    typename Signatures<T>::geqrf geqrf = nullptr;
    typename Signatures<T>::orgqr orgqr = nullptr;
    typename Signatures<T>::potrf potrf = nullptr;
    typename Signatures<T>::trtri trtri = nullptr;
    typename Signatures<T>::syevd syevd = nullptr;
    typename Signatures<T>::gelqf gelqf = nullptr;
    typename Signatures<T>::larft larft = nullptr;
    typename Signatures<T>::larfb larfb = nullptr;
    typename Signatures<T>::gbbrd gbbrd = nullptr;
    typename Signatures<T>::lasq1 lasq1 = nullptr;
};

struct Functions {
    Table<float> s;
    Table<double> d;
    // Optional (null when the BLAS in use lacks them): the BLAS's thread count, and
    // OpenBLAS's openblas_set_num_threads_local, which sets the calling thread's
    // count and returns the previous one. With both, the core runs BLAS calls
    // single-threaded on threads of its own (see parallel.hpp).
    int (*get_num_threads)() = nullptr;
    int (*set_num_threads_local)(int) = nullptr;
};

// Installs the table (called once by the bindings); throws if an entry is missing.
void install(const Functions& functions);
// The installed table; throws std::logic_error if `install` was never called.
const Functions& installed();

template <class T>
const Table<T>& table();
template <>
inline const Table<float>& table<float>() { return installed().s; }
template <>
inline const Table<double>& table<double>() { return installed().d; }

}  // namespace blas_lapack

// Converts a size to BLAS's 32-bit integer, refusing what does not fit. `smallest`
// is -1 for workspace sizes (-1 asks LAPACK for the size it needs).
inline blas_int to_blas_int(std::int64_t value, const char* what, std::int64_t smallest = 0) {
    if (value < smallest || value > std::numeric_limits<blas_int>::max()) {
        throw std::invalid_argument(std::string(what) + " = " + std::to_string(value) +
                                    " does not fit the 32-bit integers of the BLAS in use");
    }
    return static_cast<blas_int>(value);
}

// Workspace size returned by a LAPACK query (lwork = -1), rounded up.
template <class T>
std::int64_t workspace_size(T query) {
    return std::max<std::int64_t>(1, static_cast<std::int64_t>(std::ceil(static_cast<double>(query))));
}

// Column-major BLAS/LAPACK calls for T in {float, double}, with the integer
// conversions done once here so callers pass 64-bit sizes.
template <class T>
struct Blas {
    static void gemm(char trans_a, char trans_b, std::int64_t m, std::int64_t n, std::int64_t k,
                     T alpha, const T* a, std::int64_t lda, const T* b, std::int64_t ldb, T beta,
                     T* c, std::int64_t ldc) {
        const blas_int m_ = to_blas_int(m, "m"), n_ = to_blas_int(n, "n"),
                       k_ = to_blas_int(k, "k"), lda_ = to_blas_int(lda, "lda"),
                       ldb_ = to_blas_int(ldb, "ldb"), ldc_ = to_blas_int(ldc, "ldc");
        if (m_ == 0 || n_ == 0) return;
        blas_lapack::table<T>().gemm(&trans_a, &trans_b, &m_, &n_, &k_, &alpha, a, &lda_, b,
                                     &ldb_, &beta, c, &ldc_);
    }
    static void syrk(char uplo, char trans, std::int64_t n, std::int64_t k, T alpha, const T* a,
                     std::int64_t lda, T beta, T* c, std::int64_t ldc) {
        const blas_int n_ = to_blas_int(n, "n"), k_ = to_blas_int(k, "k"),
                       lda_ = to_blas_int(lda, "lda"), ldc_ = to_blas_int(ldc, "ldc");
        if (n_ == 0) return;
        blas_lapack::table<T>().syrk(&uplo, &trans, &n_, &k_, &alpha, a, &lda_, &beta, c, &ldc_);
    }
    static void trmm(char side, char uplo, char trans, char diag, std::int64_t m, std::int64_t n,
                     T alpha, const T* a, std::int64_t lda, T* b, std::int64_t ldb) {
        const blas_int m_ = to_blas_int(m, "m"), n_ = to_blas_int(n, "n"),
                       lda_ = to_blas_int(lda, "lda"), ldb_ = to_blas_int(ldb, "ldb");
        if (m_ == 0 || n_ == 0) return;
        blas_lapack::table<T>().trmm(&side, &uplo, &trans, &diag, &m_, &n_, &alpha, a, &lda_, b,
                                     &ldb_);
    }
    // LAPACK calls return `info`; callers decide what a non-zero value means.
    static blas_int gesdd(char jobz, std::int64_t m, std::int64_t n, T* a, std::int64_t lda, T* s,
                          T* u, std::int64_t ldu, T* vt, std::int64_t ldvt, T* work,
                          std::int64_t lwork, blas_int* iwork) {
        const blas_int m_ = to_blas_int(m, "m"), n_ = to_blas_int(n, "n"),
                       lda_ = to_blas_int(lda, "lda"), ldu_ = to_blas_int(ldu, "ldu"),
                       ldvt_ = to_blas_int(ldvt, "ldvt"), lwork_ = to_blas_int(lwork, "lwork", -1);
        blas_int info = 0;
        blas_lapack::table<T>().gesdd(&jobz, &m_, &n_, a, &lda_, s, u, &ldu_, vt, &ldvt_, work,
                                      &lwork_, iwork, &info);
        return info;
    }
    static blas_int geqrf(std::int64_t m, std::int64_t n, T* a, std::int64_t lda, T* tau, T* work,
                          std::int64_t lwork) {
        return householder(blas_lapack::table<T>().geqrf, m, n, a, lda, tau, work, lwork);
    }
    static blas_int orgqr(std::int64_t m, std::int64_t n, std::int64_t k, T* a, std::int64_t lda,
                          const T* tau, T* work, std::int64_t lwork) {
        const blas_int m_ = to_blas_int(m, "m"), n_ = to_blas_int(n, "n"),
                       k_ = to_blas_int(k, "k"), lda_ = to_blas_int(lda, "lda"),
                       lwork_ = to_blas_int(lwork, "lwork", -1);
        blas_int info = 0;
        blas_lapack::table<T>().orgqr(&m_, &n_, &k_, a, &lda_, tau, work, &lwork_, &info);
        return info;
    }
    static blas_int potrf(char uplo, std::int64_t n, T* a, std::int64_t lda) {
        const blas_int n_ = to_blas_int(n, "n"), lda_ = to_blas_int(lda, "lda");
        blas_int info = 0;
        blas_lapack::table<T>().potrf(&uplo, &n_, a, &lda_, &info);
        return info;
    }
    static blas_int trtri(char uplo, char diag, std::int64_t n, T* a, std::int64_t lda) {
        const blas_int n_ = to_blas_int(n, "n"), lda_ = to_blas_int(lda, "lda");
        blas_int info = 0;
        blas_lapack::table<T>().trtri(&uplo, &diag, &n_, a, &lda_, &info);
        return info;
    }
    static blas_int syevd(char jobz, char uplo, std::int64_t n, T* a, std::int64_t lda, T* w,
                          T* work, std::int64_t lwork, blas_int* iwork, std::int64_t liwork) {
        const blas_int n_ = to_blas_int(n, "n"), lda_ = to_blas_int(lda, "lda"),
                       lwork_ = to_blas_int(lwork, "lwork", -1),
                       liwork_ = to_blas_int(liwork, "liwork", -1);
        blas_int info = 0;
        blas_lapack::table<T>().syevd(&jobz, &uplo, &n_, a, &lda_, w, work, &lwork_, iwork,
                                      &liwork_, &info);
        return info;
    }
    static blas_int gelqf(std::int64_t m, std::int64_t n, T* a, std::int64_t lda, T* tau, T* work,
                          std::int64_t lwork) {
        return householder(blas_lapack::table<T>().gelqf, m, n, a, lda, tau, work, lwork);
    }
    // The triangular factor T of the block reflector H = I - V T V^T (larft; no info).
    static void larft(char direct, char storev, std::int64_t n, std::int64_t k, const T* v,
                      std::int64_t ldv, const T* tau, T* t, std::int64_t ldt) {
        const blas_int n_ = to_blas_int(n, "n"), k_ = to_blas_int(k, "k"),
                       ldv_ = to_blas_int(ldv, "ldv"), ldt_ = to_blas_int(ldt, "ldt");
        blas_lapack::table<T>().larft(&direct, &storev, &n_, &k_, v, &ldv_, tau, t, &ldt_);
    }
    // C <- H C, H^T C, C H or C H^T for the block reflector H (larfb; no info).
    static void larfb(char side, char trans, char direct, char storev, std::int64_t m,
                      std::int64_t n, std::int64_t k, const T* v, std::int64_t ldv, const T* t,
                      std::int64_t ldt, T* c, std::int64_t ldc, T* work, std::int64_t ldwork) {
        const blas_int m_ = to_blas_int(m, "m"), n_ = to_blas_int(n, "n"),
                       k_ = to_blas_int(k, "k"), ldv_ = to_blas_int(ldv, "ldv"),
                       ldt_ = to_blas_int(ldt, "ldt"), ldc_ = to_blas_int(ldc, "ldc"),
                       ldwork_ = to_blas_int(ldwork, "ldwork");
        if (m_ == 0 || n_ == 0) return;
        blas_lapack::table<T>().larfb(&side, &trans, &direct, &storev, &m_, &n_, &k_, v, &ldv_,
                                      t, &ldt_, c, &ldc_, work, &ldwork_);
    }
    // Band (kl sub-, ku superdiagonals, in LAPACK's band storage) to bidiagonal form,
    // values only (vect = 'N', no C): d and e receive the bidiagonal.
    static blas_int gbbrd_values(std::int64_t m, std::int64_t n, std::int64_t kl, std::int64_t ku,
                                 T* ab, std::int64_t ldab, T* d, T* e, T* work) {
        const char vect = 'N';
        const blas_int m_ = to_blas_int(m, "m"), n_ = to_blas_int(n, "n"),
                       kl_ = to_blas_int(kl, "kl"), ku_ = to_blas_int(ku, "ku"),
                       ldab_ = to_blas_int(ldab, "ldab"), zero = 0, one = 1;
        T unused = 0;
        blas_int info = 0;
        blas_lapack::table<T>().gbbrd(&vect, &m_, &n_, &zero, &kl_, &ku_, ab, &ldab_, d, e,
                                      &unused, &one, &unused, &one, &unused, &one, work, &info);
        return info;
    }
    // The singular values of the upper bidiagonal (d, e), descending, into d (lasq1).
    static blas_int lasq1(std::int64_t n, T* d, T* e, T* work) {
        const blas_int n_ = to_blas_int(n, "n");
        blas_int info = 0;
        blas_lapack::table<T>().lasq1(&n_, d, e, work, &info);
        return info;
    }

private:
    // geqrf and gelqf: the same arguments, QR or LQ.
    static blas_int householder(typename blas_lapack::Signatures<T>::geqrf factor, std::int64_t m,
                                std::int64_t n, T* a, std::int64_t lda, T* tau, T* work,
                                std::int64_t lwork) {
        const blas_int m_ = to_blas_int(m, "m"), n_ = to_blas_int(n, "n"),
                       lda_ = to_blas_int(lda, "lda"), lwork_ = to_blas_int(lwork, "lwork", -1);
        blas_int info = 0;
        factor(&m_, &n_, a, &lda_, tau, work, &lwork_, &info);
        return info;
    }
};

}  // namespace lowrank
