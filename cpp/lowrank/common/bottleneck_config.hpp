// The bottleneck network's configuration, shared by the CPU and the GPU core: what is
// trained (widths, bias, initialisation, optimizer, data mode), the constants the
// core fixes, the hooks of the training loop, and the checks both cores run.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <limits>
#include <string>
#include <vector>

#include "lowrank/common/matrix.hpp"

namespace lowrank {

enum class Init { HeNormal, GlorotUniform, Orthogonal };
enum class Optimizer { Sgd, Momentum, Adam, GaussNewton };
enum class DataMode { Fixed, Stream, Exact };

struct BottleneckConfig {
    // n, the hidden widths in order, m: at least one hidden layer.
    std::vector<index> widths;
    bool bias = true;
    Init init = Init::HeNormal;
    Optimizer optimizer = Optimizer::Adam;
    double lr = 1e-3;
    index epochs = 10;
    index samples = 10000;   // vectors per epoch (data Fixed and Stream)
    index batch_size = 32;   // vectors per step (data Fixed and Stream)
    DataMode data = DataMode::Fixed;
    std::uint64_t seed = 0;
    // data Exact only: stop once the gradient of the expected loss (all weights and
    // biases) has a norm <= tol times its norm at the initial weights; 0 runs exactly
    // `epochs` epochs. With tol > 0 the run is capped at `max_epochs` epochs, and the
    // gradient optimizers restart their cosine schedule every `epochs` epochs.
    double tol = 0;
    index max_epochs = 1000;
};

// Optimizer constants (Keras's defaults, the framework of the paper).
struct OptimizerConstants {
    static constexpr double momentum = 0.9;  // v = momentum v + g; p -= lr v
    static constexpr double beta1 = 0.9;     // Adam
    static constexpr double beta2 = 0.999;
    static constexpr double epsilon = 1e-7;
};

// What data="exact" does, fixed by the core (documented in the Python docstring):
// each epoch is `exact_steps_per_epoch` full-batch steps, and the step size follows a
// cosine from `exact_lr_peak` * lr down to `exact_lr_floor` * lr over the whole run.
struct ExactSchedule {
    static constexpr index steps_per_epoch = 1000;
    static constexpr double lr_peak = 10.0;
    static constexpr double lr_floor = 1e-2;

    // The step size at `progress` (steps done / all steps of the run, in [0, 1)).
    static double step_size(double lr, double progress) {
        constexpr double pi = 3.14159265358979323846;
        return lr * (lr_floor + (lr_peak - lr_floor) * 0.5 * (1.0 + std::cos(pi * progress)));
    }
};

// Optimizer::GaussNewton (data Exact only): each epoch is one sweep that solves the
// two layers next to the choke point, each exactly by least squares with the others
// fixed (the Gauss-Newton step of that block, exact since the network is linear in
// it); the other layers keep their initial weights. It reaches the optimum only when
// they keep full rank: every hidden width before the choke point >= n and every one
// after it >= m (`gauss_newton_reaches_optimum`).
bool gauss_newton_reaches_optimum(const std::vector<index>& widths);

// How the training loop talks to its caller, without knowing who it is.
struct TrainingHooks {
    // After each completed epoch (1-based) with its mean loss; false stops training.
    std::function<bool(index epoch, double loss)> on_epoch;
    // Polled about every `poll_seconds` with the fraction of the run done; true
    // interrupts: the network goes back to its last completed epoch and `fit`
    // throws Interrupted.
    std::function<bool(double fraction_done)> poll;
    double poll_seconds = 0.1;
};

// The widths as "(n, hidden..., m)", for messages.
std::string width_list(const std::vector<index>& widths);

// "config.field must ..." when a configuration is unusable.
void validate(const BottleneckConfig& config);

// Training steps in one epoch: one sweep for GaussNewton, ExactSchedule's full-batch
// steps for data="exact", else the mini-batches that cover the samples.
inline index steps_per_epoch(const BottleneckConfig& c) {
    const index batch_size = std::min(c.batch_size, c.samples);
    if (c.optimizer == Optimizer::GaussNewton) return 1;
    return c.data == DataMode::Exact ? ExactSchedule::steps_per_epoch
                                     : (c.samples + batch_size - 1) / batch_size;
}
// The choke point: index into widths of the first narrowest hidden layer.
index choke_index(const std::vector<index>& widths);

// Numerical rank of a learned map (m x n) from its singular values, with NumPy's
// default tolerance s_max * max(m, n) * eps(T), computed in double: in T, s_max *
// max(m, n) alone overflows for s_max near T's largest value (both devices use it).
template <class T>
index learned_map_rank(const std::vector<T>& sigma, index m, index n) {
    if (sigma.empty()) return 0;
    const double largest = static_cast<double>(*std::max_element(sigma.begin(), sigma.end()));
    const double tol = largest * static_cast<double>(std::max(m, n)) *
                       static_cast<double>(std::numeric_limits<T>::epsilon());
    index count = 0;
    for (const T v : sigma) count += static_cast<double>(v) > tol;
    return count;
}

}  // namespace lowrank
