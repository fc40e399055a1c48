// The linear bottleneck network on the GPU: lowrank/bottleneck/network.hpp's BottleneckNetwork<T>,
// step for step, on device memory (see that header for the network, the layout and
// the scale s). The same configuration, the same initial weights (drawn on the host
// by the CPU network and handed in), the same Philox streams for the training data
// and the shuffles, the same optimizers and the same exact-mode schedule, so a seed
// gives the same training on both devices, to rounding.
//
// Device state. The parameters of all layers live in ONE flat device array (every
// weight, then every bias, each starting on a 32-element boundary, zeros between), so
// that the optimizer updates all of them in one kernel and a checkpoint is one copy.
// Gradients and optimizer moments have the same layout. Only the parameters outlive
// a call (PersistentBuffer, on the device of the last fit); every workspace belongs to
// the call that uses it and is ordered on the caller's stream.
//
// Streams. Every routine takes the device and the caller's stream (CuPy's current
// stream) and orders all its work on that stream (resources.hpp), and synchronises it
// before it returns. `fit` synchronises once per epoch, to read the epoch's loss (one
// double, accumulated on the device) back to the host; it holds the device's handles
// (a Resources) only while it issues GPU work, never while the epoch callback or the
// poll (Ctrl-C check, progress) runs, so Python code run there (a callback, a signal
// handler) may call the CUDA core itself.
//
// Plain C++ (no CUDA types but the stream): the bindings include it.
#pragma once

#include <cuda_runtime_api.h>

#include <utility>
#include <vector>

#include "lowrank/common/bottleneck_config.hpp"
#include "lowrank/common/matrix.hpp"
#include "lowrank/gpu/resources.hpp"

namespace lowrank::gpu {

template <class T>
class GpuBottleneck {
  public:
    // Validates the configuration (as the CPU network) and keeps the initial weights
    // and biases, which must have the shapes the widths give (weight l is
    // widths[l+1] x widths[l]; biases are taken as zeros when config.bias is false).
    GpuBottleneck(BottleneckConfig config, std::vector<Matrix<T>> initial_weights,
                  std::vector<std::vector<T>> initial_biases);

    const BottleneckConfig& config() const { return config_; }
    index layers() const { return static_cast<index>(config_.widths.size()) - 1; }
    index rank() const;
    index input_width() const { return config_.widths.front(); }
    index output_width() const { return config_.widths.back(); }
    double scale() const { return scale_; }
    index steps_taken() const { return steps_; }
    const std::vector<double>& loss_history() const { return loss_history_; }
    // The device that holds the parameters, -1 before the first fit.
    int device() const { return parameters_.data() != nullptr ? parameters_.device() : -1; }

    // Trains from the initial weights on a (m x n, device memory, either layout), on
    // `stream` of `device`; returns the loss history (one mean loss per completed
    // epoch, units of a). After an exception (Ctrl-C from hooks.poll, an error in
    // hooks.on_epoch) the parameters are those of the last completed epoch.
    const std::vector<double>& fit(int device, cudaStream_t stream, const ConstView<T>& a,
                                   const TrainingHooks& hooks = {});

    // Outputs are caller-owned device arrays on device(), column-major, written on
    // resources.stream(), ready when the call returns. Each throws std::logic_error
    // before the first fit.
    void left_factor(const Resources& resources, T* out) const;   // (m x k), ld m
    void right_factor(const Resources& resources, T* out) const;  // (k x n), ld k
    void matrix(const Resources& resources, T* out) const;        // (m x n), ld m
    void intercept(const Resources& resources, T* out) const;     // m entries
    // The network on x (n x b, ld n: a C-contiguous (b, n) array), scaled back: out
    // (m x b, ld m: a C-contiguous (b, m) array).
    void predict(const Resources& resources, const T* x, index batch, T* out) const;
    // Singular values of W = L R (k, descending), from the QR factors of L and R^T, as
    // the CPU network: k numbers come back to the host.
    std::vector<T> singular_values(const Resources& resources) const;
    // Numerical rank of W (NumPy's default tolerance), never above k.
    index numerical_rank(const Resources& resources) const;
    // The raw parameters (trained units), copied to the host; the initial ones before
    // the first fit. For tests and inspection.
    std::pair<std::vector<Matrix<T>>, std::vector<std::vector<T>>> parameters(
        const Resources* resources) const;

  private:
    struct Training;        // the workspaces and steps of one fit (bottleneck.cu)
    struct RestoreOnError;  // back to the last checkpoint when fit throws
    void check_fitted() const;
    const T* weight(index l) const { return parameters_.data() + weight_offset_[l]; }
    const T* bias(index l) const { return parameters_.data() + bias_offset_[l]; }
    // W_{last-1} ... W_first times `scale`, (widths[last] x widths[first]), to out.
    void chain_product(const Resources& resources, index first, index last, double scale,
                       T* out) const;

    BottleneckConfig config_;
    std::vector<Matrix<T>> initial_weights_;
    std::vector<std::vector<T>> initial_biases_;
    // Offsets (elements) into the flat arrays; weights end at bias_offset_[0].
    std::vector<index> weight_offset_, bias_offset_;
    index flat_size_ = 0;
    PersistentBuffer<T> parameters_;
    index steps_ = 0;
    double scale_ = 1.0;
    std::vector<double> loss_history_;
};

}  // namespace lowrank::gpu
