// Errors of the CUDA core, and one check macro per library (after rapidsai/raft).
//
//   LOWRANK_CUDA_TRY(call)       cudaError_t       -> CudaError
//   LOWRANK_CUBLAS_TRY(call)     cublasStatus_t    -> CudaError (OutOfMemory for ALLOC_FAILED)
//   LOWRANK_CUSOLVER_TRY(call)   cusolverStatus_t  -> CudaError (OutOfMemory for ALLOC_FAILED)
//   allocate_async (resources.hpp)         -> OutOfMemory with the bytes asked for
//   *_TRY_NO_THROW(call) the same, reported on stderr instead (for destructors)
//
// Every exception carries the failing call, file and line. The bindings translate:
//   OutOfMemory -> MemoryError (with the number of bytes asked for)
//   CudaError   -> RuntimeError
//   lowrank::LinAlgError, std::invalid_argument (from lowrank/common/errors.hpp) as on the CPU.
// Plain C++: no Python inside.
#pragma once

#include <cublas_v2.h>
#include <cuda_runtime_api.h>
#include <cusolverDn.h>

#include <cstddef>
#include <cstdio>
#include <stdexcept>
#include <string>

namespace lowrank::gpu {

class CudaError : public std::runtime_error {
  public:
    using std::runtime_error::runtime_error;
};

// A device allocation failed. Not sticky: the process and the device stay usable.
class OutOfMemory : public CudaError {
  public:
    OutOfMemory(std::size_t bytes, const std::string& what)
        : CudaError(what), bytes_(bytes) {}
    std::size_t bytes() const { return bytes_; }

  private:
    std::size_t bytes_;
};

const char* cublas_status_name(cublasStatus_t status);
const char* cusolver_status_name(cusolverStatus_t status);

inline std::string where(const char* call, const char* file, int line) {
    return std::string(call) + " at " + file + ":" + std::to_string(line);
}

[[noreturn]] inline void throw_cuda(cudaError_t status, const char* call, const char* file,
                                    int line) {
    cudaGetLastError();  // clear a non-sticky error so later calls are not blamed for it
    throw CudaError("CUDA error " + std::string(cudaGetErrorName(status)) + " (" +
                    cudaGetErrorString(status) + ") in " + where(call, file, line));
}

// cuBLAS/cuSOLVER could not allocate (a handle or an internal workspace): the size
// is the library's, not known here.
[[noreturn]] inline void throw_library_out_of_memory(const std::string& what) {
    cudaGetLastError();  // clear a non-sticky allocation error
    throw OutOfMemory(0, "out of GPU memory: " + what +
                             " (the library could not allocate its workspace)");
}

}  // namespace lowrank::gpu

#define LOWRANK_CUDA_TRY(call)                                                                   \
    do {                                                                                 \
        const cudaError_t lowrank_status_ = (call);                                      \
        if (lowrank_status_ != cudaSuccess) {                                            \
            ::lowrank::gpu::throw_cuda(lowrank_status_, #call, __FILE__, __LINE__);      \
        }                                                                                \
    } while (0)

#define LOWRANK_CUBLAS_TRY(call)                                                                 \
    do {                                                                                 \
        const cublasStatus_t lowrank_status_ = (call);                                   \
        if (lowrank_status_ != CUBLAS_STATUS_SUCCESS) {                                  \
            const std::string lowrank_what_ =                                            \
                std::string("cuBLAS error ") +                                           \
                ::lowrank::gpu::cublas_status_name(lowrank_status_) + " in " +           \
                ::lowrank::gpu::where(#call, __FILE__, __LINE__);                        \
            if (lowrank_status_ == CUBLAS_STATUS_ALLOC_FAILED) {                         \
                ::lowrank::gpu::throw_library_out_of_memory(lowrank_what_);              \
            }                                                                            \
            throw ::lowrank::gpu::CudaError(lowrank_what_);                              \
        }                                                                                \
    } while (0)

#define LOWRANK_CUSOLVER_TRY(call)                                                               \
    do {                                                                                 \
        const cusolverStatus_t lowrank_status_ = (call);                                 \
        if (lowrank_status_ != CUSOLVER_STATUS_SUCCESS) {                                \
            const std::string lowrank_what_ =                                            \
                std::string("cuSOLVER error ") +                                         \
                ::lowrank::gpu::cusolver_status_name(lowrank_status_) + " in " +         \
                ::lowrank::gpu::where(#call, __FILE__, __LINE__);                        \
            if (lowrank_status_ == CUSOLVER_STATUS_ALLOC_FAILED) {                       \
                ::lowrank::gpu::throw_library_out_of_memory(lowrank_what_);              \
            }                                                                            \
            throw ::lowrank::gpu::CudaError(lowrank_what_);                              \
        }                                                                                \
    } while (0)

#define LOWRANK_CUDA_TRY_NO_THROW(call)                                                          \
    do {                                                                                 \
        const cudaError_t lowrank_status_ = (call);                                      \
        if (lowrank_status_ != cudaSuccess) {                                            \
            std::fprintf(stderr, "lowrank_core: CUDA error %s in %s at %s:%d\n",         \
                         cudaGetErrorName(lowrank_status_), #call, __FILE__, __LINE__);  \
        }                                                                                \
    } while (0)

#define LOWRANK_CUBLAS_TRY_NO_THROW(call)                                                        \
    do {                                                                                 \
        const cublasStatus_t lowrank_status_ = (call);                                   \
        if (lowrank_status_ != CUBLAS_STATUS_SUCCESS) {                                  \
            std::fprintf(stderr, "lowrank_core: cuBLAS error %s in %s at %s:%d\n",       \
                         ::lowrank::gpu::cublas_status_name(lowrank_status_), #call,     \
                         __FILE__, __LINE__);                                            \
        }                                                                                \
    } while (0)

#define LOWRANK_CUSOLVER_TRY_NO_THROW(call)                                                      \
    do {                                                                                 \
        const cusolverStatus_t lowrank_status_ = (call);                                 \
        if (lowrank_status_ != CUSOLVER_STATUS_SUCCESS) {                                \
            std::fprintf(stderr, "lowrank_core: cuSOLVER error %s in %s at %s:%d\n",     \
                         ::lowrank::gpu::cusolver_status_name(lowrank_status_), #call,   \
                         __FILE__, __LINE__);                                            \
        }                                                                                \
    } while (0)
