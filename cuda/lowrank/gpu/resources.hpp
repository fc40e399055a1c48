// Resources of the CUDA core: device buffers, library handles, and the caller's stream.
//
// STREAM CONTRACT. Every routine of the CUDA core takes the caller's stream (CuPy's
// current stream on the array's device) and orders ALL of its work on it: kernels,
// cuBLAS and cuSOLVER calls, copies, and the allocation and release of its workspaces
// (cudaMallocAsync / cudaFreeAsync). Inputs may therefore be produced by earlier work
// on that stream, and outputs may be used by later work on it without further
// synchronisation. A routine synchronises the stream after the NaN/Inf scan of its
// inputs (so that no solver runs on NaN or Inf) and once more before it returns,
// because it must read LAPACK's devInfo back to raise the right error; results
// returned to Python are then ready. No other stream is touched; no
// managed memory is used.
//
// `Resources` caches one cuBLAS and one cuSOLVER handle per device (created on first
// use, for the life of the process) and binds them to the caller's stream for the
// duration of one call. A per-device mutex serialises calls that share a handle, so
// two host threads with different streams never race on the handle's stream.
// Plain C++: no Python inside.
#pragma once

#include <cublas_v2.h>
#include <cuda_runtime_api.h>
#include <cusolverDn.h>

#include <cstddef>
#include <cstdint>
#include <mutex>
#include <utility>

#include "lowrank/gpu/errors.hpp"

namespace lowrank::gpu {

using index = std::int64_t;

// Allocates `bytes` on `stream` (stream-ordered); a failure is OutOfMemory with the size.
void* allocate_async(std::size_t bytes, cudaStream_t stream);

// Owns `count` elements of T in device memory, allocated and freed on one stream.
template <class T>
class DeviceBuffer {
  public:
    DeviceBuffer() = default;
    DeviceBuffer(index count, cudaStream_t stream)
        : count_(count > 0 ? count : 0), stream_(stream) {
        if (count_ > 0) {
            data_ = static_cast<T*>(
                allocate_async(static_cast<std::size_t>(count_) * sizeof(T), stream));
        }
    }
    DeviceBuffer(const DeviceBuffer&) = delete;
    DeviceBuffer& operator=(const DeviceBuffer&) = delete;
    DeviceBuffer(DeviceBuffer&& other) noexcept { swap(other); }
    DeviceBuffer& operator=(DeviceBuffer&& other) noexcept {
        DeviceBuffer(std::move(other)).swap(*this);
        return *this;
    }
    ~DeviceBuffer() {
        if (data_ != nullptr) LOWRANK_CUDA_TRY_NO_THROW(cudaFreeAsync(data_, stream_));
    }

    T* data() { return data_; }
    const T* data() const { return data_; }
    index size() const { return count_; }

  private:
    void swap(DeviceBuffer& other) noexcept {
        std::swap(data_, other.data_);
        std::swap(count_, other.count_);
        std::swap(stream_, other.stream_);
    }
    T* data_ = nullptr;
    index count_ = 0;
    cudaStream_t stream_ = nullptr;
};

// Allocates `bytes` on the current device with cudaMalloc (not stream-ordered); a
// failure is OutOfMemory with the size. Writes the device to *device.
void* allocate_persistent(std::size_t bytes, int* device);
// Frees what allocate_persistent returned (cudaFree on its device); never throws.
void free_persistent(void* pointer, int device) noexcept;

// Owns `count` elements of T in device memory that outlive the call that made them:
// state kept between calls (the bottleneck network's parameters), which later calls
// may read from another stream, or after the stream that wrote it is gone. So it is
// not tied to a stream: cudaMalloc on the current device, cudaFree (which waits for
// the device) on release. Its owner synchronises the stream that writes it before the
// writing call returns.
template <class T>
class PersistentBuffer {
  public:
    PersistentBuffer() = default;
    explicit PersistentBuffer(index count) : count_(count > 0 ? count : 0) {
        if (count_ > 0) {
            data_ = static_cast<T*>(
                allocate_persistent(static_cast<std::size_t>(count_) * sizeof(T), &device_));
        }
    }
    PersistentBuffer(const PersistentBuffer&) = delete;
    PersistentBuffer& operator=(const PersistentBuffer&) = delete;
    PersistentBuffer(PersistentBuffer&& other) noexcept { swap(other); }
    PersistentBuffer& operator=(PersistentBuffer&& other) noexcept {
        PersistentBuffer(std::move(other)).swap(*this);
        return *this;
    }
    ~PersistentBuffer() {
        if (data_ != nullptr) free_persistent(data_, device_);
    }

    T* data() { return data_; }
    const T* data() const { return data_; }
    index size() const { return count_; }
    int device() const { return device_; }

  private:
    void swap(PersistentBuffer& other) noexcept {
        std::swap(data_, other.data_);
        std::swap(count_, other.count_);
        std::swap(device_, other.device_);
    }
    T* data_ = nullptr;
    index count_ = 0;
    int device_ = -1;
};

// Makes `device` current for a scope, restoring the previous device after.
class DeviceGuard {
  public:
    explicit DeviceGuard(int device);
    ~DeviceGuard();
    DeviceGuard(const DeviceGuard&) = delete;
    DeviceGuard& operator=(const DeviceGuard&) = delete;

  private:
    int previous_ = 0;
};

// Everything one call of the CUDA core works with: the device (current for the
// call), the caller's stream, and the device's handles bound to that stream.
// Construct one at the top of a routine; it holds the device's lock until destroyed.
class Resources {
  public:
    Resources(int device, cudaStream_t stream);
    ~Resources();
    Resources(const Resources&) = delete;
    Resources& operator=(const Resources&) = delete;

    cudaStream_t stream() const { return stream_; }
    cublasHandle_t cublas() const { return cublas_; }
    cusolverDnHandle_t cusolver() const { return cusolver_; }
    // Waits for all work of this call (cudaStreamSynchronize on the caller's stream).
    void synchronize() const;

  private:
    DeviceGuard device_;
    std::unique_lock<std::mutex> lock_;
    cudaStream_t stream_;
    cublasHandle_t cublas_ = nullptr;
    cusolverDnHandle_t cusolver_ = nullptr;
};

}  // namespace lowrank::gpu
