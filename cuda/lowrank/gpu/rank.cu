// Numerical rank, rank measures and relative error on the GPU. The same rules as
// cpp/lowrank/spectrum/rank.cpp; see rank.hpp for the contract.
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "lowrank/common/errors.hpp"
#include "lowrank/gpu/common.cuh"
#include "lowrank/gpu/rank.hpp"

namespace lowrank::gpu {
namespace {

// One block per matrix b: the count of s[b, :] strictly above the threshold, with the
// rules of cpp/lowrank/spectrum/rank.cpp (Default compares in T, Absolute/Relative in double).
template <class T>
__global__ void rank_count_kernel(const T* s, index p, Threshold kind, const double* thresholds,
                                  T default_rtol, std::int64_t* out) {
    __shared__ T shared_max[kThreads];
    __shared__ std::int64_t shared_count[kThreads];
    const index b = blockIdx.x;
    const T* values = s + b * p;
    T local_max = T(0);
    for (index i = threadIdx.x; i < p; i += blockDim.x) local_max = MaxOp()(local_max, values[i]);
    const T s_max = block_reduce(local_max, MaxOp(), shared_max);
    std::int64_t count = 0;
    if (kind == Threshold::Default) {
        const T tol = s_max * default_rtol;
        for (index i = threadIdx.x; i < p; i += blockDim.x) count += values[i] > tol;
    } else {
        const double tol = kind == Threshold::Absolute
                               ? thresholds[b]
                               : static_cast<double>(s_max) * thresholds[b];
        for (index i = threadIdx.x; i < p; i += blockDim.x) {
            count += static_cast<double>(values[i]) > tol;
        }
    }
    const std::int64_t total = block_reduce(count, SumOp(), shared_count);
    if (threadIdx.x == 0) out[b] = total;
}

// One block per matrix b: erank, stable rank or entropy rank of s[b, :], as
// spectral_measure in cpp/lowrank/spectrum/rank.cpp (in double, on s / s_max; 0 for a zero spectrum).
template <class T>
__global__ void measure_kernel(const T* s, index p, Measure measure, double* out) {
    __shared__ double shared[kThreads];
    const index b = blockIdx.x;
    const T* values = s + b * p;
    double local = 0.0;
    for (index i = threadIdx.x; i < p; i += blockDim.x) {
        local = MaxOp()(local, static_cast<double>(values[i]));
    }
    const double largest = block_reduce(local, MaxOp(), shared);
    if (largest == 0.0) {
        if (threadIdx.x == 0) out[b] = 0.0;  // the zero matrix: rank 0 by every measure
        return;
    }
    double partial_sum = 0.0, partial_sum_sq = 0.0;
    for (index i = threadIdx.x; i < p; i += blockDim.x) {
        const double v = static_cast<double>(values[i]) / largest;
        partial_sum += v;
        partial_sum_sq += v * v;
    }
    const double sum = block_reduce(partial_sum, SumOp(), shared);
    const double sum_sq = block_reduce(partial_sum_sq, SumOp(), shared);
    double result = 0.0;
    if (measure == Measure::Effective) {
        result = sum * sum / sum_sq;
    } else if (measure == Measure::Stable) {
        result = sum_sq;
    } else {
        double partial_entropy = 0.0;
        for (index i = threadIdx.x; i < p; i += blockDim.x) {
            const double q = static_cast<double>(values[i]) / largest / sum;
            if (q > 0.0) partial_entropy -= q * log(q);
        }
        result = exp(block_reduce(partial_entropy, SumOp(), shared));
    }
    if (threadIdx.x == 0) out[b] = result;
}

template <class T>
__global__ void absolute_kernel(T* x, index count) {
    for (index e = blockIdx.x * static_cast<index>(blockDim.x) + threadIdx.x; e < count;
         e += static_cast<index>(gridDim.x) * blockDim.x) {
        x[e] = x[e] < T(0) ? -x[e] : x[e];
    }
}

// Frobenius norms of two contiguous arrays x, y of `count` entries, without overflow:
// pass 1 finds max |x| and max |y|, pass 2 sums squares scaled by them. Each pass
// writes one partial per block; a one-block pass combines them in a fixed order, so
// the result is deterministic.
template <class T>
__global__ void max_abs_partials(const T* x, const T* y, index count, double* partials) {
    __shared__ double shared[kThreads];
    double mx = 0.0, my = 0.0;
    for (index e = blockIdx.x * static_cast<index>(blockDim.x) + threadIdx.x; e < count;
         e += static_cast<index>(gridDim.x) * blockDim.x) {
        mx = MaxOp()(mx, fabs(static_cast<double>(x[e])));
        my = MaxOp()(my, fabs(static_cast<double>(y[e])));
    }
    mx = block_reduce(mx, MaxOp(), shared);
    my = block_reduce(my, MaxOp(), shared);
    if (threadIdx.x == 0) {
        partials[2 * blockIdx.x] = mx;
        partials[2 * blockIdx.x + 1] = my;
    }
}

template <class T>
__global__ void scaled_sum_squares_partials(const T* x, const T* y, index count,
                                            const double* scales, double* partials) {
    __shared__ double shared[kThreads];
    const double sx = scales[0], sy = scales[1];
    double px = 0.0, py = 0.0;
    for (index e = blockIdx.x * static_cast<index>(blockDim.x) + threadIdx.x; e < count;
         e += static_cast<index>(gridDim.x) * blockDim.x) {
        if (sx > 0.0) {
            const double v = static_cast<double>(x[e]) / sx;
            px += v * v;
        }
        if (sy > 0.0) {
            const double v = static_cast<double>(y[e]) / sy;
            py += v * v;
        }
    }
    px = block_reduce(px, SumOp(), shared);
    py = block_reduce(py, SumOp(), shared);
    if (threadIdx.x == 0) {
        partials[2 * blockIdx.x] = px;
        partials[2 * blockIdx.x + 1] = py;
    }
}

// Per block: max |a| and max |b| over the block's entries (each view in its own
// storage order), as one pair of partials.
template <class T>
__global__ void max_abs_view_partials(ConstView<T> a, ConstView<T> b, double* partials) {
    __shared__ double shared[kThreads];
    const index count = a.rows * a.cols;
    double ma = 0.0, mb = 0.0;
    for (index e = blockIdx.x * static_cast<index>(blockDim.x) + threadIdx.x; e < count;
         e += static_cast<index>(gridDim.x) * blockDim.x) {
        ma = MaxOp()(ma, fabs(static_cast<double>(stored(a, e))));
        mb = MaxOp()(mb, fabs(static_cast<double>(stored(b, e))));
    }
    ma = block_reduce(ma, MaxOp(), shared);
    mb = block_reduce(mb, MaxOp(), shared);
    if (threadIdx.x == 0) {
        partials[2 * blockIdx.x] = ma;
        partials[2 * blockIdx.x + 1] = mb;
    }
}

__device__ inline float times_power_of_two(float x, int exponent) { return scalbnf(x, exponent); }
__device__ inline double times_power_of_two(double x, int exponent) { return scalbn(x, exponent); }

// Column-major (m x n, ld m): difference = 2^-e A - 2^-e B and own = 2^-e_a A, each
// operand scaled exactly before the one subtraction (the rule of cpp/lowrank/spectrum/rank.cpp).
template <class T>
__global__ void scaled_difference_kernel(ConstView<T> a, ConstView<T> b, int exponent,
                                         int exponent_a, T* difference, T* own) {
    const index count = a.rows * a.cols;
    for (index e = blockIdx.x * static_cast<index>(blockDim.x) + threadIdx.x; e < count;
         e += static_cast<index>(gridDim.x) * blockDim.x) {
        const index i = e % a.rows, j = e / a.rows;
        const T x = element(a, i, j), y = element(b, i, j);
        own[e] = times_power_of_two(x, -exponent_a);
        difference[e] = times_power_of_two(x, -exponent) - times_power_of_two(y, -exponent);
    }
}

// One block: combines `blocks` pairs of partials into out[0], out[1] (max or sum).
template <class Op>
__global__ void combine_pairs(const double* partials, unsigned blocks, Op op, double* out) {
    __shared__ double shared[kThreads];
    double a = 0.0, b = 0.0;
    for (unsigned i = threadIdx.x; i < blocks; i += blockDim.x) {
        a = op(a, partials[2 * i]);
        b = op(b, partials[2 * i + 1]);
    }
    a = block_reduce(a, op, shared);
    b = block_reduce(b, op, shared);
    if (threadIdx.x == 0) {
        out[0] = a;
        out[1] = b;
    }
}

// |eigenvalues| of each symmetric matrix of a row-major stack (reading its lower
// triangle), into `s` (batch x n); devInfo checks deferred to `checks`.
template <class T>
void hermitian_absolute_eigenvalues(const Resources& resources, Checks& checks, const T* a,
                                    index batch, index n, T* s) {
    if (batch == 0 || n == 0) return;
    const index size = n * n;
    const int ni = to_int(n, "n");
    // The stored row-major A read column-major is A^T; A's lower triangle is the
    // upper triangle of A^T, which is what numpy.linalg.eigvalsh(UPLO="L") reads.
    DeviceBuffer<T> copy(batch * size, resources.stream());
    LOWRANK_CUDA_TRY(cudaMemcpyAsync(copy.data(), a, static_cast<std::size_t>(batch * size) * sizeof(T),
                             cudaMemcpyDeviceToDevice, resources.stream()));
    const cublasFillMode_t upper = CUBLAS_FILL_MODE_UPPER;
    const int lwork =
        std::max(Lib<T>::syevd_size(resources.cusolver(), upper, ni, copy.data(), ni, s), 1);
    DeviceBuffer<T> work(lwork, resources.stream());
    int* info = checks.infos("syevd", batch);  // one devInfo per matrix
    for (index b = 0; b < batch; ++b) {
        Lib<T>::syevd(resources.cusolver(), upper, ni, copy.data() + b * size, ni, s + b * n,
                      work.data(), lwork, info + b);
    }
    absolute_kernel<T><<<grid_for(batch * n), kThreads, 0, resources.stream()>>>(s, batch * n);
    LOWRANK_CHECK_LAUNCH();
}

}  // namespace

template <class T>
void matrix_rank_batched(const Resources& resources, const T* a, index batch, index m, index n,
                         Threshold kind, const double* thresholds, bool hermitian,
                         std::int64_t* out) {
    LOWRANK_EXPECTS(batch >= 0 && m >= 0 && n >= 0, "the stack has a negative dimension");
    LOWRANK_EXPECTS(!hermitian || m == n, "hermitian=True needs square matrices");
    LOWRANK_EXPECTS(kind == Threshold::Default || thresholds != nullptr || batch == 0,
                    "a threshold is required");
    if (batch == 0) return;
    const index p = std::min(m, n);
    Checks checks(resources, 1 + batch);
    const ConstView<T> all{a, batch * m, n, std::max<index>(n, 1), true};
    flag_nonfinite(resources, all, checks.flag("A contains NaN or Inf"));
    checks.verify_inputs();  // before the solvers: cuSOLVER is never given NaN or Inf
    DeviceBuffer<T> s(batch * p, resources.stream());
    if (hermitian) {
        hermitian_absolute_eigenvalues(resources, checks, a, batch, n, s.data());
    } else {
        stack_singular_values(resources, checks, a, batch, m, n, s.data());
    }
    const T default_rtol = static_cast<T>(std::max(m, n)) * std::numeric_limits<T>::epsilon();
    rank_count_kernel<T><<<to_int(batch, "batch"), kThreads, 0, resources.stream()>>>(
        s.data(), p, kind, thresholds, default_rtol, out);
    LOWRANK_CHECK_LAUNCH();
    checks.verify();
}

template <class T>
void rank_measure_batched(const Resources& resources, const T* a, index batch, index m,
                          index n, Measure measure, double* out) {
    LOWRANK_EXPECTS(batch >= 0 && m >= 0 && n >= 0, "the stack has a negative dimension");
    if (batch == 0) return;
    const index p = std::min(m, n);
    Checks checks(resources, 1 + stack_check_slots(batch, m, n));
    const ConstView<T> all{a, batch * m, n, std::max<index>(n, 1), true};
    flag_nonfinite(resources, all, checks.flag("A contains NaN or Inf"));
    checks.verify_inputs();  // before the solvers: cuSOLVER is never given NaN or Inf
    DeviceBuffer<T> s(batch * p, resources.stream());
    stack_singular_values(resources, checks, a, batch, m, n, s.data());
    measure_kernel<T><<<to_int(batch, "batch"), kThreads, 0, resources.stream()>>>(
        s.data(), p, measure, out);
    LOWRANK_CHECK_LAUNCH();
    checks.verify();
}

template <class T>
double relative_error(const Resources& resources, const ConstView<T>& a, const ConstView<T>& b,
                      Norm norm) {
    LOWRANK_EXPECTS(a.rows == b.rows && a.cols == b.cols, "A and B must have the same shape");
    const index m = a.rows, n = a.cols, p = std::min(m, n);
    const cudaStream_t stream = resources.stream();
    Checks checks(resources, 4);
    flag_nonfinite(resources, a, checks.flag("A contains NaN or Inf"));
    flag_nonfinite(resources, b, checks.flag("B contains NaN or Inf"));
    const index count = m * n;
    double largest[2] = {0.0, 0.0};  // max |A|, max |B|
    if (count > 0) {
        const unsigned blocks = grid_for(count);
        DeviceBuffer<double> partials(2 * static_cast<index>(blocks), stream);
        DeviceBuffer<double> results(2, stream);
        max_abs_view_partials<T><<<blocks, kThreads, 0, stream>>>(a, b, partials.data());
        LOWRANK_CHECK_LAUNCH();
        combine_pairs<<<1, kThreads, 0, stream>>>(partials.data(), blocks, MaxOp(),
                                                  results.data());
        LOWRANK_CHECK_LAUNCH();
        LOWRANK_CUDA_TRY(cudaMemcpyAsync(largest, results.data(), 2 * sizeof(double),
                                 cudaMemcpyDeviceToHost, stream));
    }
    // Synchronises (`largest` is filled); before gesvd: cuSOLVER never sees NaN or Inf.
    checks.verify_inputs();
    // Near the overflow threshold A - B can overflow, and tiny entries lose digits as
    // subnormals (as in cpp/lowrank/spectrum/rank.cpp). So A - B is formed with both scaled by one power
    // of two that brings the larger entry near 1, ||A|| from A scaled by its own, and
    // the two powers are put back in double at the end (exact; the ratio may exceed
    // T's range). The maxima are T values, exact in double: ilogb agrees with T's.
    const double largest_both = std::max(largest[0], largest[1]);
    const int exponent = largest_both > 0 ? std::ilogb(largest_both) : 0;
    const int exponent_a = largest[0] > 0 ? std::ilogb(largest[0]) : 0;
    DeviceBuffer<T> difference(count, stream), a_copy(count, stream);
    if (count > 0) {
        scaled_difference_kernel<T><<<grid_for(count), kThreads, 0, stream>>>(
            a, b, exponent, exponent_a, difference.data(), a_copy.data());
        LOWRANK_CHECK_LAUNCH();
    }
    double numerator = 0.0, denominator = 0.0;
    if (norm == Norm::Frobenius) {
        std::vector<double> host(4, 0.0);
        if (count > 0) {
            const unsigned blocks = grid_for(count);
            DeviceBuffer<double> partials(2 * static_cast<index>(blocks), stream);
            DeviceBuffer<double> results(4, stream);  // scales (2), scaled sums (2)
            max_abs_partials<T><<<blocks, kThreads, 0, stream>>>(
                difference.data(), a_copy.data(), count, partials.data());
            LOWRANK_CHECK_LAUNCH();
            combine_pairs<<<1, kThreads, 0, stream>>>(partials.data(), blocks, MaxOp(),
                                                      results.data());
            LOWRANK_CHECK_LAUNCH();
            scaled_sum_squares_partials<T><<<blocks, kThreads, 0, stream>>>(
                difference.data(), a_copy.data(), count, results.data(), partials.data());
            LOWRANK_CHECK_LAUNCH();
            combine_pairs<<<1, kThreads, 0, stream>>>(partials.data(), blocks, SumOp(),
                                                      results.data() + 2);
            LOWRANK_CHECK_LAUNCH();
            LOWRANK_CUDA_TRY(cudaMemcpyAsync(host.data(), results.data(), 4 * sizeof(double),
                                     cudaMemcpyDeviceToHost, stream));
        }
        checks.verify();  // synchronises: `host` is filled
        numerator = host[0] * std::sqrt(host[2]);
        denominator = host[1] * std::sqrt(host[3]);
    } else {
        DeviceBuffer<T> s_difference(p, stream), s_a(p, stream);
        T host[2] = {T(0), T(0)};
        if (p > 0) {
            const index ld = std::max<index>(m, 1);
            const ConstView<T> d{difference.data(), m, n, ld, false};
            const ConstView<T> own{a_copy.data(), m, n, ld, false};
            singular_values_of(resources, d, s_difference.data(), checks.info("gesvd"));
            singular_values_of(resources, own, s_a.data(), checks.info("gesvd"));
            LOWRANK_CUDA_TRY(cudaMemcpyAsync(&host[0], s_difference.data(), sizeof(T),
                                     cudaMemcpyDeviceToHost, stream));
            LOWRANK_CUDA_TRY(cudaMemcpyAsync(&host[1], s_a.data(), sizeof(T), cudaMemcpyDeviceToHost,
                                     stream));
        }
        checks.verify();
        numerator = static_cast<double>(host[0]);
        denominator = static_cast<double>(host[1]);
    }
    if (denominator == 0.0) {
        return numerator == 0.0 ? 0.0 : std::numeric_limits<double>::infinity();
    }
    return std::ldexp(numerator / denominator, exponent - exponent_a);
}

#define LOWRANK_INSTANTIATE(T)                                                                 \
    template void matrix_rank_batched<T>(const Resources&, const T*, index, index, index,      \
                                         Threshold, const double*, bool, std::int64_t*);       \
    template void rank_measure_batched<T>(const Resources&, const T*, index, index, index,     \
                                          Measure, double*);                                   \
    template double relative_error<T>(const Resources&, const ConstView<T>&,                   \
                                      const ConstView<T>&, Norm);

LOWRANK_INSTANTIATE(float)
LOWRANK_INSTANTIATE(double)
#undef LOWRANK_INSTANTIATE

}  // namespace lowrank::gpu
