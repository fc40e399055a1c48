#include "lowrank/backend/blas_lapack.hpp"

#include <stdexcept>

namespace lowrank::blas_lapack {
namespace {

Functions g_functions;
bool g_installed = false;

template <class T>
bool complete(const Table<T>& t) {
    return t.gemm && t.syrk && t.trmm && t.gesdd && t.geqrf && t.orgqr && t.potrf &&
           t.trtri && t.syevd &&
           t.gelqf && t.larft && t.larfb && t.gbbrd && t.lasq1;
}

}  // namespace

void install(const Functions& functions) {
    if (!complete(functions.s) || !complete(functions.d)) {
        throw std::invalid_argument("BLAS/LAPACK table is missing a function");
    }
    g_functions = functions;
    g_installed = true;
}

const Functions& installed() {
    if (!g_installed) {
        throw std::logic_error("lowrank_core: BLAS/LAPACK functions were never installed");
    }
    return g_functions;
}

}  // namespace lowrank::blas_lapack
