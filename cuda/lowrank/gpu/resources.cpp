#include "lowrank/gpu/resources.hpp"

#include <map>
#include <memory>
#include <string>

namespace lowrank::gpu {

const char* cublas_status_name(cublasStatus_t status) {
    switch (status) {
        case CUBLAS_STATUS_SUCCESS: return "CUBLAS_STATUS_SUCCESS";
        case CUBLAS_STATUS_NOT_INITIALIZED: return "CUBLAS_STATUS_NOT_INITIALIZED";
        case CUBLAS_STATUS_ALLOC_FAILED: return "CUBLAS_STATUS_ALLOC_FAILED";
        case CUBLAS_STATUS_INVALID_VALUE: return "CUBLAS_STATUS_INVALID_VALUE";
        case CUBLAS_STATUS_ARCH_MISMATCH: return "CUBLAS_STATUS_ARCH_MISMATCH";
        case CUBLAS_STATUS_MAPPING_ERROR: return "CUBLAS_STATUS_MAPPING_ERROR";
        case CUBLAS_STATUS_EXECUTION_FAILED: return "CUBLAS_STATUS_EXECUTION_FAILED";
        case CUBLAS_STATUS_INTERNAL_ERROR: return "CUBLAS_STATUS_INTERNAL_ERROR";
        case CUBLAS_STATUS_NOT_SUPPORTED: return "CUBLAS_STATUS_NOT_SUPPORTED";
        case CUBLAS_STATUS_LICENSE_ERROR: return "CUBLAS_STATUS_LICENSE_ERROR";
        default: return "unknown cuBLAS status";
    }
}

const char* cusolver_status_name(cusolverStatus_t status) {
    switch (status) {
        case CUSOLVER_STATUS_SUCCESS: return "CUSOLVER_STATUS_SUCCESS";
        case CUSOLVER_STATUS_NOT_INITIALIZED: return "CUSOLVER_STATUS_NOT_INITIALIZED";
        case CUSOLVER_STATUS_ALLOC_FAILED: return "CUSOLVER_STATUS_ALLOC_FAILED";
        case CUSOLVER_STATUS_INVALID_VALUE: return "CUSOLVER_STATUS_INVALID_VALUE";
        case CUSOLVER_STATUS_ARCH_MISMATCH: return "CUSOLVER_STATUS_ARCH_MISMATCH";
        case CUSOLVER_STATUS_EXECUTION_FAILED: return "CUSOLVER_STATUS_EXECUTION_FAILED";
        case CUSOLVER_STATUS_INTERNAL_ERROR: return "CUSOLVER_STATUS_INTERNAL_ERROR";
        case CUSOLVER_STATUS_MATRIX_TYPE_NOT_SUPPORTED:
            return "CUSOLVER_STATUS_MATRIX_TYPE_NOT_SUPPORTED";
        case CUSOLVER_STATUS_NOT_SUPPORTED: return "CUSOLVER_STATUS_NOT_SUPPORTED";
        default: return "unknown cuSOLVER status";
    }
}

void* allocate_async(std::size_t bytes, cudaStream_t stream) {
    void* pointer = nullptr;
    const cudaError_t status = cudaMallocAsync(&pointer, bytes, stream);
    if (status == cudaErrorMemoryAllocation) {
        cudaGetLastError();  // not sticky: clear it, the device stays usable
        throw OutOfMemory(bytes, "out of GPU memory: lowrank_core asked for " +
                                     std::to_string(bytes) + " bytes (cudaMallocAsync)");
    }
    if (status != cudaSuccess) throw_cuda(status, "cudaMallocAsync", __FILE__, __LINE__);
    return pointer;
}

void* allocate_persistent(std::size_t bytes, int* device) {
    LOWRANK_CUDA_TRY(cudaGetDevice(device));
    void* pointer = nullptr;
    const cudaError_t status = cudaMalloc(&pointer, bytes);
    if (status == cudaErrorMemoryAllocation) {
        cudaGetLastError();  // not sticky: clear it, the device stays usable
        throw OutOfMemory(bytes, "out of GPU memory: lowrank_core asked for " +
                                     std::to_string(bytes) + " bytes (cudaMalloc)");
    }
    if (status != cudaSuccess) throw_cuda(status, "cudaMalloc", __FILE__, __LINE__);
    return pointer;
}

void free_persistent(void* pointer, int device) noexcept {
    int previous = -1;
    if (cudaGetDevice(&previous) != cudaSuccess) {
        cudaGetLastError();
        return;  // no usable runtime (e.g. at exit): the driver reclaims the memory
    }
    if (previous != device) LOWRANK_CUDA_TRY_NO_THROW(cudaSetDevice(device));
    const cudaError_t status = cudaFree(pointer);
    if (status == cudaErrorCudartUnloading || status == cudaErrorContextIsDestroyed) {
        cudaGetLastError();  // freed at interpreter exit, after the runtime: nothing to do
    } else if (status != cudaSuccess) {
        std::fprintf(stderr, "lowrank_core: CUDA error %s in cudaFree at %s:%d\n",
                     cudaGetErrorName(status), __FILE__, __LINE__);
    }
    if (previous != device) LOWRANK_CUDA_TRY_NO_THROW(cudaSetDevice(previous));
}

DeviceGuard::DeviceGuard(int device) {
    LOWRANK_CUDA_TRY(cudaGetDevice(&previous_));
    if (device != previous_) LOWRANK_CUDA_TRY(cudaSetDevice(device));
}

DeviceGuard::~DeviceGuard() { LOWRANK_CUDA_TRY_NO_THROW(cudaSetDevice(previous_)); }

namespace {

// The handles of one device. Created once and kept for the life of the process: a
// handle destroyed at interpreter exit could outlive the CUDA context.
struct DeviceHandles {
    std::mutex mutex;
    cublasHandle_t cublas = nullptr;
    cusolverDnHandle_t cusolver = nullptr;
};

DeviceHandles& handles_for(int device) {
    static std::mutex registry_mutex;
    static auto* registry = new std::map<int, std::unique_ptr<DeviceHandles>>();
    std::lock_guard<std::mutex> lock(registry_mutex);
    auto& slot = (*registry)[device];
    if (!slot) slot = std::make_unique<DeviceHandles>();
    return *slot;
}

}  // namespace

Resources::Resources(int device, cudaStream_t stream) : device_(device), stream_(stream) {
    DeviceHandles& handles = handles_for(device);
    lock_ = std::unique_lock<std::mutex>(handles.mutex);
    if (handles.cublas == nullptr) LOWRANK_CUBLAS_TRY(cublasCreate(&handles.cublas));
    if (handles.cusolver == nullptr) LOWRANK_CUSOLVER_TRY(cusolverDnCreate(&handles.cusolver));
    cublas_ = handles.cublas;
    cusolver_ = handles.cusolver;
    LOWRANK_CUBLAS_TRY(cublasSetStream(cublas_, stream_));
    LOWRANK_CUBLAS_TRY(cublasSetPointerMode(cublas_, CUBLAS_POINTER_MODE_HOST));
    LOWRANK_CUSOLVER_TRY(cusolverDnSetStream(cusolver_, stream_));
}

Resources::~Resources() = default;

void Resources::synchronize() const { LOWRANK_CUDA_TRY(cudaStreamSynchronize(stream_)); }

}  // namespace lowrank::gpu
