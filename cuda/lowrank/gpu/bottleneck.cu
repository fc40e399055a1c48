// The linear bottleneck network on the GPU. The steps mirror cpp/lowrank/bottleneck/network.cpp one
// for one (the same names where there is a counterpart); see bottleneck.hpp for
// the contract.
//
// One training step, for L layers (batch = columns, as the CPU core):
//   forward   L GEMMs; the hidden layers' biases by bias_scale_kernel; the output
//             layer's bias is added inside the residual kernel instead.
//   residual  output_residual_kernel: y + b - t, the loss partial sums (double), the
//             output delta 2 (y - t) / (m b) and the partial row sums of that delta
//             (the output bias's gradient) in ONE pass over the output; then
//             finish_residual_kernel (one block) adds the step's loss to the epoch's
//             sum on the device and finishes the bias gradient, in a fixed order.
//   backward  per layer one GEMM for dW (a copy for the exact mode's first layer), one
//             for the next delta, and the hidden biases' gradients as a GEMM with a
//             vector of ones.
//   step      optimizer_kernel: SGD, momentum or Adam on ALL parameters at once (they
//             live in one flat array), step size and Adam's bias corrections from the
//             host as kernel arguments.
// Per epoch: the fixed set is gathered in the epoch's order (one kernel for X, one for
// the targets; the order is computed on the host as the CPU core does, samples
// indices uploaded), or the stream's fresh vectors are drawn for the whole epoch (one
// Philox kernel and one GEMM for the targets); then one double comes back.
#include <cuda_runtime.h>

#include <algorithm>
#include <chrono>
#include <exception>
#include <cmath>
#include <limits>
#include <optional>
#include <string>
#include <utility>

#include "lowrank/common/errors.hpp"
#include "lowrank/common/philox.hpp"
#include "lowrank/gpu/bottleneck.hpp"
#include "lowrank/gpu/common.cuh"

namespace lowrank::gpu {
namespace {

constexpr index kAlign = 32;   // offsets in the flat parameter array (128 bytes of float)
constexpr index kChunk = 64;   // columns per thread in output_residual_kernel (at least)
constexpr index kMaxGridY = 65535;

index round_up(index value, index multiple) { return (value + multiple - 1) / multiple * multiple; }

// Lib<T>::gemm with 64-bit sizes checked into cuBLAS's int.
template <class T>
void gemm(cublasHandle_t handle, char ta, char tb, index m, index n, index k, T alpha,
          const T* a, index lda, const T* b, index ldb, T beta, T* c, index ldc) {
    Lib<T>::gemm(handle, ta, tb, to_int(m, "m"), to_int(n, "n"), to_int(k, "k"), alpha, a,
                 to_int(lda, "lda"), b, to_int(ldb, "ldb"), beta, c, to_int(ldc, "ldc"));
}

// C (m x n, ld m) = alpha op(A): a scaled copy or transpose (cuBLAS geam with beta 0).
template <class T>
void scaled_copy(cublasHandle_t handle, char op, index m, index n, T alpha, const T* a,
                 index lda, T* c) {
    const int mi = to_int(m, "m"), ni = to_int(n, "n"), ld = to_int(lda, "lda");
    Lib<T>::geam(handle, op, op, mi, ni, alpha, a, ld, T(0), a, ld, c, mi);
}

void copy_device(void* to, const void* from, std::size_t bytes, cudaStream_t stream) {
    if (bytes > 0) {
        LOWRANK_CUDA_TRY(cudaMemcpyAsync(to, from, bytes, cudaMemcpyDeviceToDevice, stream));
    }
}

template <class T>
std::size_t bytes_of(index count) {
    return static_cast<std::size_t>(count) * sizeof(T);
}

__device__ inline float device_sqrt(float x) { return sqrtf(x); }
__device__ inline double device_sqrt(double x) { return sqrt(x); }

__device__ inline index thread_index() {
    return blockIdx.x * static_cast<index>(blockDim.x) + threadIdx.x;
}
__device__ inline index thread_stride() { return static_cast<index>(gridDim.x) * blockDim.x; }

// --- kernels --------------------------------------------------------------------------

// Entries [first, first + count) of a Philox stream's Gaussian sequence: the rule of
// lowrank/common/philox.hpp's fill_gaussian (entry e is lane e % 4 of counter e / 4).
template <class T>
__global__ void gaussian_stream_kernel(std::uint64_t seed, std::uint64_t first,
                                       std::uint64_t count, std::uint32_t stream,
                                       std::uint32_t substream, T* out) {
    const std::uint64_t begin = first / 4, end = (first + count + 3) / 4, last = first + count;
    for (std::uint64_t c = begin + blockIdx.x * static_cast<std::uint64_t>(blockDim.x) +
                           threadIdx.x;
         c < end; c += static_cast<std::uint64_t>(gridDim.x) * blockDim.x) {
        double z[4];
        philox::gaussian4(seed, c, z, stream, substream);
        for (int lane = 0; lane < 4; ++lane) {
            const std::uint64_t e = 4 * c + static_cast<std::uint64_t>(lane);
            if (e >= first && e < last) out[e - first] = static_cast<T>(z[lane]);
        }
    }
}

// Per block: max |a| over the block's entries (storage order, coalesced either layout).
template <class T>
__global__ void abs_max_partials_kernel(ConstView<T> a, double* partials) {
    __shared__ double shared[kThreads];
    const index total = a.rows * a.cols;
    double local = 0.0;
    for (index e = thread_index(); e < total; e += thread_stride()) {
        const index outer = a.row_major ? e / a.cols : e / a.rows;
        const index inner = a.row_major ? e % a.cols : e % a.rows;
        local = MaxOp()(local, fabs(static_cast<double>(a.data[outer * a.ld + inner])));
    }
    const double result = block_reduce(local, MaxOp(), shared);
    if (threadIdx.x == 0) partials[blockIdx.x] = result;
}

// Per block: the sum of (a / largest)^2 over the block's entries.
template <class T>
__global__ void scaled_sum_squares_partials_kernel(ConstView<T> a, double largest,
                                                   double* partials) {
    __shared__ double shared[kThreads];
    const index total = a.rows * a.cols;
    double local = 0.0;
    for (index e = thread_index(); e < total; e += thread_stride()) {
        const index outer = a.row_major ? e / a.cols : e / a.rows;
        const index inner = a.row_major ? e % a.cols : e % a.rows;
        const double v = static_cast<double>(a.data[outer * a.ld + inner]) / largest;
        local += v * v;
    }
    const double result = block_reduce(local, SumOp(), shared);
    if (threadIdx.x == 0) partials[blockIdx.x] = result;
}

// out (m x n, ld m) = A / s, each entry divided in double and rounded to T once.
template <class T>
__global__ void scaled_copy_kernel(ConstView<T> a, double s, T* out) {
    const index total = a.rows * a.cols;
    for (index e = thread_index(); e < total; e += thread_stride()) {
        const index i = e % a.rows, j = e / a.rows;
        out[e] = static_cast<T>(static_cast<double>(element(a, i, j)) / s);
    }
}

// out[:, j] = in[:, order[j]] for (rows x cols) column-major arrays, ld rows.
template <class T>
__global__ void gather_columns_kernel(const T* in, index rows, const index* order, index cols,
                                      T* out) {
    const index total = rows * cols;
    for (index e = thread_index(); e < total; e += thread_stride()) {
        const index i = e % rows, j = e / rows;
        out[e] = in[i + order[j] * rows];
    }
}

template <class T>
__global__ void fill_kernel(T* x, index count, T value) {
    for (index e = thread_index(); e < count; e += thread_stride()) x[e] = value;
}

// a(i, j) = (a(i, j) + bias[i]) * scale on a (rows x cols) block, ld rows; bias may be
// null. (The forward pass's bias, and predict's scaling back, in one pass.)
template <class T>
__global__ void bias_scale_kernel(T* a, index rows, index cols, const T* bias, T scale) {
    const index total = rows * cols;
    for (index e = thread_index(); e < total; e += thread_stride()) {
        T v = a[e];
        if (bias != nullptr) v += bias[e % rows];
        a[e] = v * scale;
    }
}

// The first layer on the exact mode's design [I_n, 0]: out (rows x (n + 1), ld rows)
// is W_0 (rows x n, ld rows) followed by the column b_0 (zeros without a bias).
template <class T>
__global__ void exact_first_layer_kernel(const T* w0, index rows, index n, const T* b0, T* out) {
    const index body = rows * n, total = rows * (n + 1);
    for (index e = thread_index(); e < total; e += thread_stride()) {
        out[e] = e < body ? w0[e] : (b0 != nullptr ? b0[e - body] : T(0));
    }
}

// The output layer's residual, in one pass over the (m x cols) output y (ld m), the
// output layer's GEMM without its bias. Thread i of block (bx, c) takes row
// i = bx * kThreads + threadIdx.x and the columns [c * chunk, (c + 1) * chunk):
//   v = y(i, j) + bias[i] for j >= bias_from (the output bias; bias may be null)
//   d = v - t(i, j) for j < target_cols, d = v otherwise (the exact mode's last column)
//   delta(i, j) = factor * d
// Per block one partial sum of d^2 (double) to loss_partials[c * gridDim.x + bx]; per
// thread the sum of delta(i, j) over its columns j >= bias_from, in column order, to
// bias_partials[c * m + i] (when not null). Adjacent threads touch adjacent rows of a
// column, so every access is coalesced.
template <class T>
__global__ void output_residual_kernel(const T* y, index m, index cols, const T* bias,
                                       index bias_from, const T* t, index ldt, index target_cols,
                                       T factor, index chunk, T* delta, double* loss_partials,
                                       T* bias_partials) {
    __shared__ double shared[kThreads];
    const index i = blockIdx.x * static_cast<index>(kThreads) + threadIdx.x;
    const index c = blockIdx.y;
    const index begin = c * chunk, end = begin + chunk < cols ? begin + chunk : cols;
    double squares = 0.0;
    T bias_sum = T(0);
    if (i < m) {
        const T b = bias != nullptr ? bias[i] : T(0);
        for (index j = begin; j < end; ++j) {
            T v = y[i + j * m];
            if (j >= bias_from) v += b;
            const T d = j < target_cols ? v - t[i + j * ldt] : v;
            squares += static_cast<double>(d) * static_cast<double>(d);
            const T g = factor * d;
            delta[i + j * m] = g;
            if (j >= bias_from) bias_sum += g;
        }
    }
    const double block_total = block_reduce(squares, SumOp(), shared);
    if (threadIdx.x == 0) loss_partials[c * gridDim.x + blockIdx.x] = block_total;
    if (bias_partials != nullptr && i < m) bias_partials[c * m + i] = bias_sum;
}

// One block: *loss_sum += (sum of the loss partials) / divisor * weight, and
// bias_gradient[i] = the sum over chunks of bias_partials[c * m + i] (when not null),
// both in a fixed order.
template <class T>
__global__ void finish_residual_kernel(const double* loss_partials, index partial_count,
                                       const T* bias_partials, index chunks, index m,
                                       double divisor, double weight, double* loss_sum,
                                       T* bias_gradient) {
    __shared__ double shared[kThreads];
    double local = 0.0;
    for (index p = threadIdx.x; p < partial_count; p += blockDim.x) local += loss_partials[p];
    const double total = block_reduce(local, SumOp(), shared);
    if (threadIdx.x == 0) *loss_sum += total / divisor * weight;
    if (bias_gradient == nullptr) return;
    for (index i = threadIdx.x; i < m; i += blockDim.x) {
        T sum = T(0);
        for (index c = 0; c < chunks; ++c) sum += bias_partials[c * m + i];
        bias_gradient[i] = sum;
    }
}

// The optimizer's constants for one step, computed on the host.
template <class T>
struct StepArguments {
    Optimizer kind;
    T rate, c1, c2;  // step size; Adam's bias corrections 1 / (1 - beta^t)
    T momentum, beta1, beta2, one_minus_beta1, one_minus_beta2, epsilon;
};

// One optimizer step on `count` parameters, as BottleneckNetwork::step.
template <class T>
__global__ void optimizer_kernel(StepArguments<T> s, index count, T* p, T* m1, T* m2,
                                 const T* g) {
    for (index e = thread_index(); e < count; e += thread_stride()) {
        const T gradient = g[e];
        switch (s.kind) {
            case Optimizer::Sgd:
                p[e] -= s.rate * gradient;
                break;
            case Optimizer::Momentum: {
                const T velocity = s.momentum * m1[e] + gradient;
                m1[e] = velocity;
                p[e] -= s.rate * velocity;
                break;
            }
            case Optimizer::Adam: {
                const T first = s.beta1 * m1[e] + s.one_minus_beta1 * gradient;
                const T second = s.beta2 * m2[e] + s.one_minus_beta2 * (gradient * gradient);
                m1[e] = first;
                m2[e] = second;
                p[e] -= s.rate * (first * s.c1) / (device_sqrt(second * s.c2) + s.epsilon);
                break;
            }
            case Optimizer::GaussNewton:  // refused by the constructor
                break;
        }
    }
}

// out (k x k, ld k) = the upper triangle of the leading k x k block of a (ld lda).
template <class T>
__global__ void upper_triangle_kernel(const T* a, index lda, index k, T* out) {
    const index total = k * k;
    for (index e = thread_index(); e < total; e += thread_stride()) {
        const index i = e % k, j = e / k;
        out[e] = i <= j ? a[i + j * lda] : T(0);
    }
}

template <class T>
void launch_bias_scale(cudaStream_t stream, T* a, index rows, index cols, const T* bias,
                       T scale) {
    if (rows * cols == 0) return;
    bias_scale_kernel<T><<<grid_for(rows * cols), kThreads, 0, stream>>>(a, rows, cols, bias,
                                                                        scale);
    LOWRANK_CHECK_LAUNCH();
}

}  // namespace

// --- construction ---------------------------------------------------------------------

template <class T>
GpuBottleneck<T>::GpuBottleneck(BottleneckConfig config, std::vector<Matrix<T>> initial_weights,
                                std::vector<std::vector<T>> initial_biases)
    : config_(std::move(config)),
      initial_weights_(std::move(initial_weights)),
      initial_biases_(std::move(initial_biases)) {
    validate(config_);
    // The GPU core trains with gradient steps and a fixed budget only.
    LOWRANK_EXPECTS(config_.optimizer != Optimizer::GaussNewton,
                    "optimizer 'gauss_newton' is not implemented on the GPU: use 'sgd', "
                    "'momentum' or 'adam', or fit a NumPy array");
    LOWRANK_EXPECTS(config_.tol == 0,
                    "tol (the stopping rule of data='exact') is not implemented on the GPU: "
                    "leave it None there (a fixed budget of epochs), or fit a NumPy array");
    const index layer_count = layers();
    LOWRANK_EXPECTS(static_cast<index>(initial_weights_.size()) == layer_count &&
                        static_cast<index>(initial_biases_.size()) == layer_count,
                    "the initial parameters need one weight and one bias per layer");
    for (index l = 0; l < layer_count; ++l) {
        const index out = config_.widths[l + 1], in = config_.widths[l];
        const Matrix<T>& w = initial_weights_[l];
        LOWRANK_EXPECTS(w.rows == out && w.cols == in,
                        "initial weight " + std::to_string(l) + " must have shape (" +
                            std::to_string(out) + ", " + std::to_string(in) + ")");
        LOWRANK_EXPECTS(static_cast<index>(initial_biases_[l].size()) == out,
                        "initial bias " + std::to_string(l) + " must have " +
                            std::to_string(out) + " entries");
        if (!config_.bias) std::fill(initial_biases_[l].begin(), initial_biases_[l].end(), T(0));
    }
    index cursor = 0;
    for (index l = 0; l < layer_count; ++l) {
        weight_offset_.push_back(cursor);
        cursor += round_up(config_.widths[l + 1] * config_.widths[l], kAlign);
    }
    for (index l = 0; l < layer_count; ++l) {
        bias_offset_.push_back(cursor);
        cursor += round_up(config_.widths[l + 1], kAlign);
    }
    flat_size_ = cursor;
}

template <class T>
index GpuBottleneck<T>::rank() const {
    return config_.widths[choke_index(config_.widths)];
}

template <class T>
void GpuBottleneck<T>::check_fitted() const {
    if (parameters_.data() == nullptr) {
        throw std::logic_error("the GPU bottleneck network has no parameters on a device until "
                               "it is fitted");
    }
    int current = -1;
    LOWRANK_CUDA_TRY(cudaGetDevice(&current));
    LOWRANK_EXPECTS(current == parameters_.device(),
                    "the network's parameters are on GPU " +
                        std::to_string(parameters_.device()) + ", this call is on GPU " +
                        std::to_string(current));
}

// --- training -------------------------------------------------------------------------

// The workspaces and the steps of one fit: the device side of BottleneckNetwork's
// forward_internal, backward_internal, batch_gradients/exact_gradients and step.
template <class T>
struct GpuBottleneck<T>::Training {
    // Declared first, destroyed last: the device stays current while buffers are freed.
    std::optional<Resources> resources;
    GpuBottleneck& net;
    const int device;
    const cudaStream_t stream;
    const std::vector<index>& widths;
    const index layer_count, m;
    DeviceBuffer<T> gradients, moment1, moment2;
    DeviceBuffer<T> saved_parameters, saved_moment1, saved_moment2;
    index saved_steps = 0;
    std::vector<DeviceBuffer<T>> activations, deltas;  // [l] is (widths[l] x batch), l >= 1
    DeviceBuffer<T> ones;
    DeviceBuffer<double> loss_sum, loss_partials;
    DeviceBuffer<T> bias_partials;
    index chunk = kChunk;
    const T* input = nullptr;  // nullptr: the exact mode's design [I_n, 0]
    index input_ld = 0;

    Training(GpuBottleneck& network, int device_id, cudaStream_t caller_stream)
        : net(network),
          device(device_id),
          stream(caller_stream),
          widths(network.config_.widths),
          layer_count(network.layers()),
          m(network.output_width()) {
        resources.emplace(device, stream);
    }

    cublasHandle_t blas() const { return resources->cublas(); }
    T* parameters() { return net.parameters_.data(); }
    T* weight(index l) { return parameters() + net.weight_offset_[l]; }
    T* bias(index l) { return parameters() + net.bias_offset_[l]; }
    T* weight_gradient(index l) { return gradients.data() + net.weight_offset_[l]; }
    T* bias_gradient(index l) { return gradients.data() + net.bias_offset_[l]; }

    // Workspaces for batches of up to `capacity` columns; gradients and moments zero.
    void allocate(index capacity) {
        const index size = net.flat_size_;
        gradients = DeviceBuffer<T>(size, stream);
        moment1 = DeviceBuffer<T>(size, stream);
        moment2 = DeviceBuffer<T>(size, stream);
        saved_parameters = DeviceBuffer<T>(size, stream);
        saved_moment1 = DeviceBuffer<T>(size, stream);
        saved_moment2 = DeviceBuffer<T>(size, stream);
        for (DeviceBuffer<T>* buffer : {&gradients, &moment1, &moment2}) {
            LOWRANK_CUDA_TRY(cudaMemsetAsync(buffer->data(), 0, bytes_of<T>(size), stream));
        }
        activations.clear();
        deltas.clear();
        activations.resize(widths.size());
        deltas.resize(widths.size());
        for (std::size_t l = 1; l < widths.size(); ++l) {
            activations[l] = DeviceBuffer<T>(widths[l] * capacity, stream);
            deltas[l] = DeviceBuffer<T>(widths[l] * capacity, stream);
        }
        ones = DeviceBuffer<T>(capacity, stream);
        fill_kernel<T><<<grid_for(capacity), kThreads, 0, stream>>>(ones.data(), capacity, T(1));
        LOWRANK_CHECK_LAUNCH();
        // The residual's launch shape for up to `capacity` columns (gridDim.y <= 65535).
        chunk = std::max(kChunk, (capacity + kMaxGridY - 1) / kMaxGridY);
        const index chunks = (capacity + chunk - 1) / chunk;
        const index row_blocks = (m + kThreads - 1) / kThreads;
        loss_partials = DeviceBuffer<double>(row_blocks * chunks, stream);
        bias_partials = DeviceBuffer<T>(chunks * m, stream);
        loss_sum = DeviceBuffer<double>(1, stream);
        LOWRANK_CUDA_TRY(cudaMemsetAsync(loss_sum.data(), 0, sizeof(double), stream));
    }

    // The layers on x (n x batch, ld ldx), or on [I_n, 0] when x is null; biases on the
    // columns from bias_from. The output layer's bias is left to the residual.
    void forward(const T* x, index batch, index ldx, index bias_from) {
        input = x;
        input_ld = ldx;
        const bool with_bias = net.config_.bias;
        for (index l = 0; l < layer_count; ++l) {
            const index rows = widths[l + 1], cols = widths[l];
            T* out = activations[l + 1].data();
            if (l == 0 && x == nullptr) {
                // Layer 0 is never the output layer (there is at least one hidden
                // layer), so its bias is added here, to the last column only.
                exact_first_layer_kernel<T><<<grid_for(rows * batch), kThreads, 0, stream>>>(
                    weight(0), rows, cols, with_bias ? bias(0) : nullptr, out);
                LOWRANK_CHECK_LAUNCH();
                continue;
            }
            const T* in = l == 0 ? x : activations[l].data();
            const index ld_in = l == 0 ? ldx : cols;
            gemm<T>(blas(), 'N', 'N', rows, batch, cols, T(1), weight(l), rows, in, ld_in, T(0),
                    out, rows);
            if (with_bias && l + 1 < layer_count) {
                launch_bias_scale<T>(stream, out + bias_from * rows, rows, batch - bias_from,
                                     bias(l), T(1));
            }
        }
    }

    // The output's residual against t (m x target_cols, ld ldt; zero beyond), the loss
    // added to the epoch's sum as (sum of squares / divisor) * weight, the output delta
    // scaled by `factor`, and the output bias's gradient.
    void residual(index batch, index bias_from, const T* t, index ldt, index target_cols,
                  T factor, double divisor, double weight_of_step) {
        const index row_blocks = (m + kThreads - 1) / kThreads;
        const index chunks = (batch + chunk - 1) / chunk;
        const bool with_bias = net.config_.bias;
        const index last = layer_count - 1;
        const dim3 grid(static_cast<unsigned>(row_blocks), static_cast<unsigned>(chunks));
        output_residual_kernel<T><<<grid, kThreads, 0, stream>>>(
            activations[layer_count].data(), m, batch, with_bias ? bias(last) : nullptr,
            bias_from, t, ldt, target_cols, factor, chunk, deltas[layer_count].data(),
            loss_partials.data(), with_bias ? bias_partials.data() : nullptr);
        LOWRANK_CHECK_LAUNCH();
        finish_residual_kernel<T><<<1, kThreads, 0, stream>>>(
            loss_partials.data(), row_blocks * chunks, bias_partials.data(), chunks, m, divisor,
            weight_of_step, loss_sum.data(), with_bias ? bias_gradient(last) : nullptr);
        LOWRANK_CHECK_LAUNCH();
    }

    // The gradients of every weight and hidden bias from the output delta.
    void backward(index batch, index bias_from) {
        const bool with_bias = net.config_.bias;
        for (index l = layer_count - 1; l >= 0; --l) {
            const index rows = widths[l + 1], cols = widths[l];
            const T* delta = deltas[l + 1].data();
            // dL/dW_l = delta_{l+1} H_l^T
            if (l == 0 && input == nullptr) {  // H_0 = [I_n, 0]
                copy_device(weight_gradient(0), delta, bytes_of<T>(rows * cols), stream);
            } else {
                const T* h = l == 0 ? input : activations[l].data();
                const index ld_h = l == 0 ? input_ld : cols;
                gemm<T>(blas(), 'N', 'T', rows, cols, batch, T(1), delta, rows, h, ld_h, T(0),
                        weight_gradient(l), rows);
            }
            // dL/db_l = the row sums of delta_{l+1} over the columns that carry the bias
            // (the output layer's came with the residual)
            if (with_bias && l + 1 < layer_count) {
                const index count = batch - bias_from;
                gemm<T>(blas(), 'N', 'N', rows, 1, count, T(1), delta + bias_from * rows, rows,
                        ones.data(), count, T(0), bias_gradient(l), rows);
            }
            // delta_l = W_l^T delta_{l+1} (not needed for the input)
            if (l > 0) {
                gemm<T>(blas(), 'T', 'N', cols, batch, rows, T(1), weight(l), rows, delta, rows,
                        T(0), deltas[l].data(), cols);
            }
        }
    }

    void step(double lr) {
        ++net.steps_;
        StepArguments<T> s{};
        s.kind = net.config_.optimizer;
        s.rate = static_cast<T>(lr);
        if (s.kind == Optimizer::Adam) {  // bias corrections 1 / (1 - beta^t)
            const double t = static_cast<double>(net.steps_);
            s.c1 = static_cast<T>(1.0 / (1.0 - std::pow(OptimizerConstants::beta1, t)));
            s.c2 = static_cast<T>(1.0 / (1.0 - std::pow(OptimizerConstants::beta2, t)));
        }
        s.momentum = static_cast<T>(OptimizerConstants::momentum);
        s.beta1 = static_cast<T>(OptimizerConstants::beta1);
        s.beta2 = static_cast<T>(OptimizerConstants::beta2);
        s.one_minus_beta1 = static_cast<T>(1.0 - OptimizerConstants::beta1);
        s.one_minus_beta2 = static_cast<T>(1.0 - OptimizerConstants::beta2);
        s.epsilon = static_cast<T>(OptimizerConstants::epsilon);
        // Without biases only the weights move (they come first in the flat arrays).
        const index count = net.config_.bias ? net.flat_size_ : net.bias_offset_[0];
        optimizer_kernel<T><<<grid_for(count), kThreads, 0, stream>>>(
            s, count, parameters(), moment1.data(), moment2.data(), gradients.data());
        LOWRANK_CHECK_LAUNCH();
    }

    void save() {
        const std::size_t bytes = bytes_of<T>(net.flat_size_);
        copy_device(saved_parameters.data(), parameters(), bytes, stream);
        copy_device(saved_moment1.data(), moment1.data(), bytes, stream);
        copy_device(saved_moment2.data(), moment2.data(), bytes, stream);
        saved_steps = net.steps_;
    }

    void restore() {
        const std::size_t bytes = bytes_of<T>(net.flat_size_);
        copy_device(parameters(), saved_parameters.data(), bytes, stream);
        copy_device(moment1.data(), saved_moment1.data(), bytes, stream);
        copy_device(moment2.data(), saved_moment2.data(), bytes, stream);
        net.steps_ = saved_steps;
    }

    // The device's handles again after the epoch callback threw; never throws (the
    // callback's exception goes on).
    void reacquire() noexcept {
        try {
            if (!resources) resources.emplace(device, stream);
        } catch (const std::exception& error) {
            std::fprintf(stderr, "lowrank_core: reacquiring the GPU failed: %s\n", error.what());
        }
    }

    // After an exception: back to the last checkpoint, finished before the exception
    // leaves fit (a later call may read the parameters from another stream). Never
    // throws; a failure is reported on stderr (the original exception goes on).
    void restore_after_error() noexcept {
        try {
            if (!resources) resources.emplace(device, stream);
            if (saved_parameters.data() != nullptr) restore();
            resources->synchronize();
        } catch (const std::exception& error) {
            std::fprintf(stderr, "lowrank_core: restoring the GPU network failed: %s\n",
                         error.what());
        }
    }

    // ||a||_F: max |a| first, then the sum of squares scaled by it (no overflow).
    // Per-block partials come back to the host (twice).
    double frobenius_norm(const ConstView<T>& a) {
        const index total = a.rows * a.cols;
        const unsigned blocks = grid_for(total);
        DeviceBuffer<double> partials(blocks, stream);
        std::vector<double> host(blocks);
        abs_max_partials_kernel<T><<<blocks, kThreads, 0, stream>>>(a, partials.data());
        LOWRANK_CHECK_LAUNCH();
        LOWRANK_CUDA_TRY(cudaMemcpyAsync(host.data(), partials.data(), blocks * sizeof(double),
                                 cudaMemcpyDeviceToHost, stream));
        resources->synchronize();
        double largest = 0;
        for (const double v : host) largest = std::max(largest, v);
        if (!(largest > 0)) return 0.0;
        scaled_sum_squares_partials_kernel<T><<<blocks, kThreads, 0, stream>>>(a, largest,
                                                                               partials.data());
        LOWRANK_CHECK_LAUNCH();
        LOWRANK_CUDA_TRY(cudaMemcpyAsync(host.data(), partials.data(), blocks * sizeof(double),
                                 cudaMemcpyDeviceToHost, stream));
        resources->synchronize();
        double sum = 0;
        for (const double v : host) sum += v;
        return largest * std::sqrt(sum);
    }
};

// Restores the last checkpoint when the scope is left by an exception.
template <class T>
struct GpuBottleneck<T>::RestoreOnError {
    Training& training;
    int exceptions_before;
    ~RestoreOnError() {
        if (std::uncaught_exceptions() > exceptions_before) training.restore_after_error();
    }
};

template <class T>
const std::vector<double>& GpuBottleneck<T>::fit(int device, cudaStream_t stream,
                                                 const ConstView<T>& a,
                                                 const TrainingHooks& hooks) {
    const index m = output_width(), n = input_width();
    LOWRANK_EXPECTS(a.rows == m && a.cols == n, "A must have shape (m, n) = (" +
                                                    std::to_string(m) + ", " +
                                                    std::to_string(n) + ")");
    LOWRANK_EXPECTS(a.data != nullptr && a.ld >= std::max<index>(a.row_major ? a.cols : a.rows, 1),
                    "A has no data or a leading dimension below its extent");
    Training t(*this, device, stream);
    {
        Checks checks(*t.resources, 1);
        flag_nonfinite(*t.resources, a, checks.flag("A contains NaN or Inf"));
        checks.verify();
    }

    // Every fit starts from the seed's initial weights (the CPU network's initialize()).
    steps_ = 0;
    scale_ = 1.0;
    loss_history_.clear();
    if (parameters_.data() == nullptr || parameters_.device() != device) {
        parameters_ = PersistentBuffer<T>(flat_size_);
    }
    {
        std::vector<T> flat(static_cast<std::size_t>(flat_size_), T(0));
        for (index l = 0; l < layers(); ++l) {
            std::copy(initial_weights_[l].values.begin(), initial_weights_[l].values.end(),
                      flat.begin() + weight_offset_[l]);
            std::copy(initial_biases_[l].begin(), initial_biases_[l].end(),
                      flat.begin() + bias_offset_[l]);
        }
        // (From pageable memory: the call returns once `flat` has been read.)
        LOWRANK_CUDA_TRY(cudaMemcpyAsync(parameters_.data(), flat.data(), bytes_of<T>(flat_size_),
                                 cudaMemcpyHostToDevice, stream));
    }

    // From here on, an exception leaves the parameters at the last checkpoint (or the
    // initial weights), with all their writes finished (the CPU core's catch/restore).
    const RestoreOnError restore_on_error{t, std::uncaught_exceptions()};

    // 1. Scale: train on A / s with s = ||A||_F / ||W0||_F, W0 the initial map (the
    // CPU core's rule; 1 when either is zero).
    double s = 1.0;
    {
        DeviceBuffer<T> initial_map(m * n, stream);
        chain_product(*t.resources, 0, layers(), 1.0, initial_map.data());
        const double a_norm = t.frobenius_norm(a);
        const double initial_norm = t.frobenius_norm(ConstView<T>{initial_map.data(), m, n, m,
                                                                  false});
        if (a_norm > 0 && initial_norm > 0) s = a_norm / initial_norm;
        if (!std::isfinite(s) || !(s > 0)) s = 1.0;
    }
    DeviceBuffer<T> scaled(m * n, stream);
    scaled_copy_kernel<T><<<grid_for(m * n), kThreads, 0, stream>>>(a, s, scaled.data());
    LOWRANK_CHECK_LAUNCH();

    const BottleneckConfig& c = config_;
    const index samples = c.samples, batch_size = std::min(c.batch_size, c.samples);
    const index epoch_steps = steps_per_epoch(c);
    const double total_steps = static_cast<double>(epoch_steps * c.epochs);

    // 2. Data: the fixed set X (n x samples) and its targets (A / s) X, drawn once, and
    // the epoch's shuffled copies; or the stream's vectors of one epoch.
    DeviceBuffer<T> x_all, t_all, x_epoch, t_epoch;
    DeviceBuffer<index> order_device;
    std::vector<index> order;
    std::vector<double> uniforms;
    if (c.data == DataMode::Fixed) {
        x_all = DeviceBuffer<T>(n * samples, stream);
        t_all = DeviceBuffer<T>(m * samples, stream);
        const auto count = static_cast<std::uint64_t>(n * samples);
        gaussian_stream_kernel<T><<<grid_for(static_cast<index>((count + 3) / 4)), kThreads, 0,
                                    stream>>>(c.seed, 0, count, philox::data_stream, 0,
                                              x_all.data());
        LOWRANK_CHECK_LAUNCH();
        gemm<T>(t.blas(), 'N', 'N', m, samples, n, T(1), scaled.data(), m, x_all.data(), n, T(0),
                t_all.data(), m);
        order.resize(static_cast<std::size_t>(samples));
        uniforms.resize(static_cast<std::size_t>(samples));
        order_device = DeviceBuffer<index>(samples, stream);
    }
    if (c.data != DataMode::Exact) {
        x_epoch = DeviceBuffer<T>(n * samples, stream);
        t_epoch = DeviceBuffer<T>(m * samples, stream);
    }
    t.allocate(c.data == DataMode::Exact ? n + 1 : batch_size);

    t.save();
    scale_ = s;
    using clock = std::chrono::steady_clock;
    auto last_poll = clock::now();
    const auto poll_interval = std::chrono::duration<double>(hooks.poll_seconds);
    index steps_done = 0;
    auto poll = [&] {
        ++steps_done;
        if (!hooks.poll) return;
        const auto now = clock::now();
        if (now - last_poll < poll_interval) return;
        last_poll = now;
        // hooks.poll may run Python code (a signal handler, the progress bar) that calls
        // the CUDA core on this device: like the epoch callback, it runs without this
        // call's hold on the device's handles (else such a call would wait for the lock
        // forever). The stream is drained first, so that no queued work of this call
        // shares the handles' workspaces with the other call's.
        t.resources->synchronize();
        t.resources.reset();
        bool stop = false;
        try {
            stop = hooks.poll(static_cast<double>(steps_done) / total_steps);
        } catch (...) {
            t.reacquire();  // the device current again while the buffers are freed
            throw;
        }
        t.resources.emplace(device, stream);
        if (stop) throw Interrupted();
    };

    for (index epoch = 0; epoch < c.epochs; ++epoch) {
        if (c.data == DataMode::Exact) {
            // 3a. Full-batch gradient descent on the expected loss (design [I_n, 0],
            // the bias on the last column only), the step size on the cosine of
            // ExactSchedule.
            const T factor = static_cast<T>(2.0 / static_cast<double>(m));
            for (index k = 0; k < epoch_steps; ++k) {
                t.forward(nullptr, n + 1, n, n);
                t.residual(n + 1, n, scaled.data(), m, n, factor, static_cast<double>(m),
                           1.0);
                t.backward(n + 1, n);
                const double progress = static_cast<double>(epoch * epoch_steps + k) /
                                        total_steps;
                t.step(ExactSchedule::step_size(c.lr, progress));
                poll();
            }
        } else {
            // 3b. The epoch's data: the fixed set in this epoch's order (the CPU
            // core's Fisher-Yates shuffle from the shuffle stream, substream =
            // epoch, on the host), or fresh vectors from the data stream, numbered
            // on from the last epoch's (entries epoch * samples * n onwards).
            if (c.data == DataMode::Fixed) {
                philox::fill_uniform(c.seed, 0, static_cast<std::uint64_t>(samples),
                                     uniforms.data(), philox::shuffle_stream,
                                     static_cast<std::uint32_t>(epoch));
                for (index i = 0; i < samples; ++i) order[static_cast<std::size_t>(i)] = i;
                for (index i = samples - 1; i > 0; --i) {
                    const index j = std::min<index>(
                        i, static_cast<index>(uniforms[static_cast<std::size_t>(i)] *
                                              static_cast<double>(i + 1)));
                    std::swap(order[static_cast<std::size_t>(i)],
                              order[static_cast<std::size_t>(j)]);
                }
                // (The previous epoch ended with a synchronisation, so its gathers
                // are done with the index array.)
                LOWRANK_CUDA_TRY(cudaMemcpyAsync(order_device.data(), order.data(),
                                         bytes_of<index>(samples), cudaMemcpyHostToDevice,
                                         stream));
                gather_columns_kernel<T><<<grid_for(n * samples), kThreads, 0, stream>>>(
                    x_all.data(), n, order_device.data(), samples, x_epoch.data());
                LOWRANK_CHECK_LAUNCH();
                gather_columns_kernel<T><<<grid_for(m * samples), kThreads, 0, stream>>>(
                    t_all.data(), m, order_device.data(), samples, t_epoch.data());
                LOWRANK_CHECK_LAUNCH();
            } else {
                const auto first = static_cast<std::uint64_t>(epoch * samples * n);
                const auto count = static_cast<std::uint64_t>(n * samples);
                gaussian_stream_kernel<T><<<grid_for(static_cast<index>(count / 4 + 2)),
                                            kThreads, 0, stream>>>(
                    c.seed, first, count, philox::data_stream, 0, x_epoch.data());
                LOWRANK_CHECK_LAUNCH();
                gemm<T>(t.blas(), 'N', 'N', m, samples, n, T(1), scaled.data(), m,
                        x_epoch.data(), n, T(0), t_epoch.data(), m);
            }
            for (index start = 0; start < samples; start += batch_size) {
                const index b = std::min(batch_size, samples - start);
                const T* x = x_epoch.data() + start * n;
                const T* target = t_epoch.data() + start * m;
                // loss = sum (y - t)^2 / (m b), added to the epoch's sum times b
                t.forward(x, b, n, 0);
                t.residual(b, 0, target, m, b,
                           static_cast<T>(2.0 / static_cast<double>(m * b)),
                           static_cast<double>(m * b), static_cast<double>(b));
                t.backward(b, 0);
                t.step(c.lr);
                poll();
            }
        }
        // The epoch's mean loss: one double back to the host, the sum reset, and
        // the checkpoint taken, then the one synchronisation of the epoch.
        double epoch_sum = 0;
        LOWRANK_CUDA_TRY(cudaMemcpyAsync(&epoch_sum, t.loss_sum.data(), sizeof(double),
                                 cudaMemcpyDeviceToHost, stream));
        LOWRANK_CUDA_TRY(cudaMemsetAsync(t.loss_sum.data(), 0, sizeof(double), stream));
        t.save();
        t.resources->synchronize();
        const double per = c.data == DataMode::Exact ? static_cast<double>(epoch_steps)
                                                     : static_cast<double>(samples);
        // In the units of A; (loss * s) * s keeps a zero loss 0 when s^2 would overflow.
        const double epoch_loss = epoch_sum / per * s * s;
        loss_history_.push_back(epoch_loss);
        if (hooks.on_epoch) {
            // The callback runs without this call's hold on the device's handles,
            // so that it may call the CUDA core itself.
            t.resources.reset();
            bool go_on = false;
            try {
                go_on = hooks.on_epoch(epoch + 1, epoch_loss);
            } catch (...) {
                t.reacquire();  // the device current again while the buffers are freed
                throw;
            }
            t.resources.emplace(device, stream);
            if (!go_on) break;
        }
    }
    return loss_history_;
}

// --- the learned map ------------------------------------------------------------------

template <class T>
void GpuBottleneck<T>::chain_product(const Resources& resources, index first, index last,
                                     double scale, T* out) const {
    const cudaStream_t stream = resources.stream();
    const index cols = config_.widths[first];
    const T* current = weight(first);
    index current_rows = config_.widths[first + 1];
    DeviceBuffer<T> held;
    for (index l = first + 1; l < last; ++l) {
        const index rows = config_.widths[l + 1];
        DeviceBuffer<T> next(rows * cols, stream);
        gemm<T>(resources.cublas(), 'N', 'N', rows, cols, current_rows, T(1), weight(l), rows,
                current, current_rows, T(0), next.data(), rows);
        held = std::move(next);
        current = held.data();
        current_rows = rows;
    }
    scaled_copy<T>(resources.cublas(), 'N', current_rows, cols, static_cast<T>(scale), current,
                   current_rows, out);
}

template <class T>
void GpuBottleneck<T>::right_factor(const Resources& resources, T* out) const {
    check_fitted();  // R = W_{c-1} ... W_0
    chain_product(resources, 0, choke_index(config_.widths), 1.0, out);
    resources.synchronize();
}

template <class T>
void GpuBottleneck<T>::left_factor(const Resources& resources, T* out) const {
    check_fitted();  // L = s W_{L-1} ... W_c
    chain_product(resources, choke_index(config_.widths), layers(), scale_, out);
    resources.synchronize();
}

template <class T>
void GpuBottleneck<T>::matrix(const Resources& resources, T* out) const {
    check_fitted();
    const index m = output_width(), n = input_width(), k = rank(), c = choke_index(config_.widths);
    DeviceBuffer<T> left(m * k, resources.stream()), right(k * n, resources.stream());
    chain_product(resources, c, layers(), scale_, left.data());
    chain_product(resources, 0, c, 1.0, right.data());
    gemm<T>(resources.cublas(), 'N', 'N', m, n, k, T(1), left.data(), m, right.data(), k, T(0),
            out, m);
    resources.synchronize();
}

template <class T>
void GpuBottleneck<T>::intercept(const Resources& resources, T* out) const {
    check_fitted();  // the output for x = 0: h_{l+1} = W_l h_l + b_l
    const cudaStream_t stream = resources.stream();
    DeviceBuffer<T> h(config_.widths[1], stream);
    copy_device(h.data(), bias(0), bytes_of<T>(config_.widths[1]), stream);
    for (index l = 1; l < layers(); ++l) {
        const index rows = config_.widths[l + 1], cols = config_.widths[l];
        DeviceBuffer<T> next(rows, stream);
        copy_device(next.data(), bias(l), bytes_of<T>(rows), stream);
        gemm<T>(resources.cublas(), 'N', 'N', rows, 1, cols, T(1), weight(l), rows, h.data(),
                cols, T(1), next.data(), rows);
        h = std::move(next);
    }
    scaled_copy<T>(resources.cublas(), 'N', output_width(), 1, static_cast<T>(scale_), h.data(),
                   output_width(), out);
    resources.synchronize();
}

template <class T>
void GpuBottleneck<T>::predict(const Resources& resources, const T* x, index batch,
                               T* out) const {
    check_fitted();
    LOWRANK_EXPECTS(batch >= 0, "the batch has a negative size");
    if (batch == 0) return;
    LOWRANK_EXPECTS(x != nullptr && out != nullptr, "X is missing");
    const cudaStream_t stream = resources.stream();
    index widest = 1;
    for (std::size_t l = 1; l + 1 < config_.widths.size(); ++l) {
        widest = std::max(widest, config_.widths[l]);
    }
    DeviceBuffer<T> ping(widest * batch, stream), pong(widest * batch, stream);
    const T* in = x;
    for (index l = 0; l < layers(); ++l) {
        const index rows = config_.widths[l + 1], cols = config_.widths[l];
        const bool last = l + 1 == layers();
        T* to = last ? out : (l % 2 == 0 ? ping.data() : pong.data());
        gemm<T>(resources.cublas(), 'N', 'N', rows, batch, cols, T(1), weight(l), rows, in, cols,
                T(0), to, rows);
        // The bias (the CPU's forward), and on the output the scale s (its predict).
        if (config_.bias || last) {
            launch_bias_scale<T>(stream, to, rows, batch, config_.bias ? bias(l) : nullptr,
                                 last ? static_cast<T>(scale_) : T(1));
        }
        in = to;
    }
    resources.synchronize();
}

template <class T>
std::vector<T> GpuBottleneck<T>::singular_values(const Resources& resources) const {
    // W = L R = (Q_L R_L)(Q_R R_R)^T, so W's singular values are those of R_L R_R^T.
    check_fitted();
    const cudaStream_t stream = resources.stream();
    const cublasHandle_t handle = resources.cublas();
    const index m = output_width(), n = input_width(), k = rank(), c = choke_index(config_.widths);
    DeviceBuffer<T> left(m * k, stream), right(k * n, stream), right_t(n * k, stream);
    chain_product(resources, c, layers(), scale_, left.data());
    chain_product(resources, 0, c, 1.0, right.data());
    scaled_copy<T>(handle, 'T', n, k, T(1), right.data(), k, right_t.data());

    Checks checks(resources, 3);
    const int mi = to_int(m, "m"), ni = to_int(n, "n"), ki = to_int(k, "k");
    DeviceBuffer<T> tau(k, stream);
    const int lwork =
        std::max({Lib<T>::geqrf_size(resources.cusolver(), mi, ki, left.data(), mi),
                  Lib<T>::geqrf_size(resources.cusolver(), ni, ki, right_t.data(), ni), 1});
    DeviceBuffer<T> work(lwork, stream);
    Lib<T>::geqrf(resources.cusolver(), mi, ki, left.data(), mi, tau.data(), work.data(), lwork,
                  checks.info("geqrf"));
    Lib<T>::geqrf(resources.cusolver(), ni, ki, right_t.data(), ni, tau.data(), work.data(),
                  lwork, checks.info("geqrf"));
    DeviceBuffer<T> r_left(k * k, stream), r_right(k * k, stream), core(k * k, stream);
    upper_triangle_kernel<T><<<grid_for(k * k), kThreads, 0, stream>>>(left.data(), m, k,
                                                                      r_left.data());
    LOWRANK_CHECK_LAUNCH();
    upper_triangle_kernel<T><<<grid_for(k * k), kThreads, 0, stream>>>(right_t.data(), n, k,
                                                                      r_right.data());
    LOWRANK_CHECK_LAUNCH();
    gemm<T>(handle, 'N', 'T', k, k, k, T(1), r_left.data(), k, r_right.data(), k, T(0),
            core.data(), k);
    DeviceBuffer<T> sigma(k, stream);
    singular_values_of(resources, ConstView<T>{core.data(), k, k, k, false}, sigma.data(),
                       checks.info("gesvd"));
    std::vector<T> host(static_cast<std::size_t>(k));
    LOWRANK_CUDA_TRY(cudaMemcpyAsync(host.data(), sigma.data(), bytes_of<T>(k), cudaMemcpyDeviceToHost,
                             stream));
    checks.verify();  // synchronises
    return host;
}

template <class T>
index GpuBottleneck<T>::numerical_rank(const Resources& resources) const {
    const std::vector<T> sigma = singular_values(resources);
    return learned_map_rank(sigma, input_width(), output_width());
}

template <class T>
std::pair<std::vector<Matrix<T>>, std::vector<std::vector<T>>> GpuBottleneck<T>::parameters(
    const Resources* resources) const {
    if (parameters_.data() == nullptr || resources == nullptr) {
        return {initial_weights_, initial_biases_};
    }
    check_fitted();
    std::vector<T> flat(static_cast<std::size_t>(flat_size_));
    LOWRANK_CUDA_TRY(cudaMemcpyAsync(flat.data(), parameters_.data(), bytes_of<T>(flat_size_),
                             cudaMemcpyDeviceToHost, resources->stream()));
    resources->synchronize();
    std::vector<Matrix<T>> weights;
    std::vector<std::vector<T>> biases;
    for (index l = 0; l < layers(); ++l) {
        const index rows = config_.widths[l + 1], cols = config_.widths[l];
        Matrix<T> w(rows, cols);
        std::copy(flat.begin() + weight_offset_[l], flat.begin() + weight_offset_[l] + rows * cols,
                  w.values.begin());
        weights.push_back(std::move(w));
        biases.emplace_back(flat.begin() + bias_offset_[l], flat.begin() + bias_offset_[l] + rows);
    }
    return {std::move(weights), std::move(biases)};
}

template class GpuBottleneck<float>;
template class GpuBottleneck<double>;

}  // namespace lowrank::gpu
