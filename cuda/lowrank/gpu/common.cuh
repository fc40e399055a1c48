// Pieces shared by the CUDA core's .cu files: launch shapes, deterministic block
// reductions, and the helpers both svd.cu and rank.cu call (defined in svd.cu).
#pragma once

#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>

#include "lowrank/common/matrix.hpp"
#include "lowrank/gpu/checks.hpp"
#include "lowrank/gpu/cublas_cusolver.hpp"
#include "lowrank/gpu/resources.hpp"

namespace lowrank::gpu {

constexpr int kThreads = 256;  // threads per block of every kernel here

// Blocks for a grid-stride loop over `count` items (at least 1, at most 4096).
inline unsigned grid_for(index count) {
    const index blocks = (count + kThreads - 1) / kThreads;
    return static_cast<unsigned>(std::min<index>(std::max<index>(blocks, 1), 4096));
}

// Checks that the last kernel launch was accepted.
#define LOWRANK_CHECK_LAUNCH() LOWRANK_CUDA_TRY(cudaGetLastError())

struct MaxOp {
    template <class V>
    __device__ V operator()(V a, V b) const { return a > b ? a : b; }
};
struct SumOp {
    template <class V>
    __device__ V operator()(V a, V b) const { return a + b; }
};

// Reduces one value per thread of a kThreads-wide block, in a fixed order (so the
// result does not depend on scheduling). Every thread gets the result.
template <class V, class Op>
__device__ V block_reduce(V value, Op op, V* shared) {
    shared[threadIdx.x] = value;
    __syncthreads();
    for (int stride = kThreads / 2; stride > 0; stride /= 2) {
        if (static_cast<int>(threadIdx.x) < stride) {
            shared[threadIdx.x] = op(shared[threadIdx.x], shared[threadIdx.x + stride]);
        }
        __syncthreads();
    }
    const V result = shared[0];
    __syncthreads();  // the caller may reuse `shared`
    return result;
}

// Element (i, j) of a view whose data is on the device.
template <class T>
__device__ T element(const ConstView<T>& a, index i, index j) {
    return a.row_major ? a.data[i * a.ld + j] : a.data[i + j * a.ld];
}

// Entry e of a view in storage order (row by row for row-major, column by column
// otherwise): a grid-stride loop over e reads either layout coalesced.
template <class T>
__device__ T stored(const ConstView<T>& a, index e) {
    const index outer = a.row_major ? e / a.cols : e / a.rows;
    const index inner = a.row_major ? e % a.cols : e % a.rows;
    return a.data[outer * a.ld + inner];
}

// --- helpers defined in svd.cu, used by rank.cu -----------------------------------

// Sets *flag to 1 when any entry of the view is NaN or Inf (asynchronously).
template <class T>
void flag_nonfinite(const Resources& resources, const ConstView<T>& a, int* flag);

// All min(m, n) singular values of a view, descending, into `s` (device), by gesvd on
// a copy of A or A^T (whichever is tall). `info` is gesvd's devInfo. Asynchronous.
template <class T>
void singular_values_of(const Resources& resources, const ConstView<T>& a, T* s, int* info);

// Singular values of a row-major stack, as singular_values_batched, checks deferred
// to `checks` (asynchronous; the caller verifies).
template <class T>
void stack_singular_values(const Resources& resources, Checks& checks, const T* a, index batch,
                           index m, index n, T* out);

// How many check slots stack_singular_values takes.
index stack_check_slots(index batch, index m, index n);

}  // namespace lowrank::gpu
