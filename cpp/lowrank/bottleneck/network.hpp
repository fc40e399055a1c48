// The linear "bottleneck" network: widths n -> hidden... -> m, linear activations,
// mean-squared-error loss on pairs (x, A x) with standard Gaussian x. Because
// E[x x^T] = I, the expected loss is ||W - A||_F^2 / m + ||c||^2 / m, where W is the
// product of the weight matrices and c the bias the network adds to every output;
// the narrowest hidden layer (the "choke point", width k) caps the rank of W at k.
//
// Layout: a batch of b vectors is a column-major (width x b) matrix, one vector per
// column, so a C-contiguous NumPy (b, n) array is the core's (n x b) batch as is.
// Weight l is (widths[l+1] x widths[l]), column-major; bias l has widths[l+1] entries.
// Every product is a GEMM through Blas<T>; the rest are plain loops.
//
// Training runs on A / s, s = ||A||_F / ||W0||_F with W0 the initial map (1 for a zero
// A), so that the targets A x / s are as large as the initial network's outputs
// whatever the scale of A; the maps the network reports (matrix, factors, predict,
// the losses) are scaled back by s. The weights stay in the trained units; `scale`
// says what s was.
#pragma once

#include <algorithm>
#include <cstdint>
#include <limits>
#include <functional>
#include <string>
#include <vector>

#include "lowrank/common/bottleneck_config.hpp"
#include "lowrank/common/matrix.hpp"

namespace lowrank {

// What a network holds beyond its configuration: the parameters (trained units), the
// optimizer's state, the scale s and the loss history of the last fit. Enough to
// rebuild a trained network elsewhere (pickling) that gives the same map and takes
// the same next optimizer step.
template <class T>
struct BottleneckState {
    std::vector<Matrix<T>> weights, weight_moment1, weight_moment2;
    std::vector<std::vector<T>> biases, bias_moment1, bias_moment2;
    index steps = 0;
    double scale = 1.0;
    std::vector<double> loss_history;
};

template <class T>
class BottleneckNetwork {
  public:
    // Validates the configuration and draws the initial weights from `seed`.
    explicit BottleneckNetwork(BottleneckConfig config);

    const BottleneckConfig& config() const { return config_; }
    index layers() const { return static_cast<index>(weights_.size()); }
    index rank() const { return config_.widths[static_cast<std::size_t>(choke_index(config_.widths))]; }
    index input_width() const { return config_.widths.front(); }
    index output_width() const { return config_.widths.back(); }
    double scale() const { return scale_; }
    // A value of the trained units in the units of A: multiplied by s in double, so
    // that s past T's range (float32: A near its limit) still gives a finite result.
    T scaled_back(T value) const { return static_cast<T>(static_cast<double>(value) * scale_); }
    index steps_taken() const { return steps_; }
    const std::vector<double>& loss_history() const { return loss_history_; }

    // The raw parameters (trained units). Setting them resets the optimizer.
    const std::vector<Matrix<T>>& weights() const { return weights_; }
    const std::vector<std::vector<T>>& biases() const { return biases_; }
    void set_parameters(const std::vector<Matrix<T>>& weights,
                        const std::vector<std::vector<T>>& biases);
    // The whole state, and setting it back (shapes checked against the widths; the
    // scale must be finite and > 0).
    BottleneckState<T> state() const;
    void set_state(BottleneckState<T> state);
    // The gradients of the last `batch_gradients` or `exact_gradients` call.
    const std::vector<Matrix<T>>& weight_gradients() const { return weight_gradients_; }
    const std::vector<std::vector<T>>& bias_gradients() const { return bias_gradients_; }

    // The raw network on a batch x (n x b, column-major, leading dimension ldx):
    // writes (m x b) to out (leading dimension ldo).
    void forward(const T* x, index batch, index ldx, T* out, index ldo);
    // MSE loss of the batch x (n x b) against targets t (m x b), mean over all m b
    // entries, and its gradient for every weight and bias. Returns the loss.
    double batch_gradients(const T* x, const T* t, index batch, index ldx, index ldt);
    // The expected loss ||W - a||_F^2 / m + ||c||^2 / m and its exact gradients,
    // for a (m x n). Returns the loss.
    double exact_gradients(const ConstView<T>& a);
    // The mean squared error over the columns of a design x (n x cols, leading
    // dimension ldx; nullptr is [I_n, 0], n + 1 columns) against targets t (m x cols),
    // the bias reaching only the columns j >= bias_from, summed over columns and
    // divided by m (so [I_n, 0] against [a, 0] with bias_from = n is exact_gradients),
    // and its gradients. Returns the loss.
    double design_gradients(const T* x, index ldx, const ConstView<T>& t, index bias_from);
    // ||gradients of the last *_gradients call||_2 over every weight and bias, in double.
    double gradient_norm() const;
    // One optimizer step with the current gradients and step size lr.
    void step(double lr);

    // Trains from the initial weights on a (m x n) as configured (see DataMode);
    // returns the loss history (one mean loss per completed epoch, units of a).
    const std::vector<double>& fit(const ConstView<T>& a, const TrainingHooks& hooks = {});
    // Trains from the initial weights on the full-batch loss of a design (see
    // design_gradients: x is n x cols, nullptr for [I_n, 0]; t is m x cols), as
    // data Exact does on [I_n, 0] and [A, 0]; `loss_offset` (units of t, squared) is
    // added to every reported loss. Needs data Exact. The targets are scaled as A is.
    const std::vector<double>& fit_design(const ConstView<T>& x, const ConstView<T>& t,
                                          index bias_from, double loss_offset,
                                          const TrainingHooks& hooks = {});
    // Trains from the initial weights on the fixed pairs (x_i, y_i): x (n x N), y
    // (m x N), one pair per column, in shuffled mini-batches as data Fixed does with
    // its drawn vectors (N in place of `samples`). Needs data Fixed.
    const std::vector<double>& fit_pairs(const ConstView<T>& x, const ConstView<T>& y,
                                         const TrainingHooks& hooks = {});
    // Whether the last fit stopped by its tol (data Exact), and the relative gradient
    // norm it measured last (NaN when none was measured).
    bool converged() const { return converged_; }
    double relative_gradient() const { return relative_gradient_; }

    // The learned map, scaled back: L (m x k) = s W_L ... W_{c+1}, R (k x n) =
    // W_c ... W_1 with c the choke point, and W = L R (m x n).
    Matrix<T> left_factor() const;
    Matrix<T> right_factor() const;
    Matrix<T> matrix() const;
    // The output for x = 0, scaled back: the bias the network adds to every output.
    std::vector<T> intercept() const;
    // Singular values of W = L R (k of them, descending), from the k x k core of the
    // QR factors of L and R^T, so there are never more than k.
    std::vector<T> singular_values() const;
    // Numerical rank of W with NumPy's default tolerance: singular values above
    // s_max * max(m, n) * eps(T). Never above k.
    index numerical_rank() const;
    // The network applied to x (n x b) and scaled back: (m x b) to out.
    void predict(const T* x, index batch, index ldx, T* out, index ldo);

  private:
    void initialize();
    void ensure_workspace(index batch);
    void forward_internal(const T* x, index batch, index ldx, index bias_from);
    void backward_internal(index batch, index bias_from);
    // The training loop shared by fit, fit_design and fit_pairs. For data Exact,
    // design/targets are the full batch (targets already divided by s); for Fixed with
    // pairs, x_pairs/t_pairs (targets divided by s); else the vectors are drawn and
    // their targets are scaled_a times them.
    void train(double s, const Matrix<T>* scaled_a, const T* design, index design_ld,
               const Matrix<T>* targets, index bias_from, double loss_offset,
               const Matrix<T>* x_pairs, const Matrix<T>* t_pairs, const TrainingHooks& hooks);
    // Optimizer::GaussNewton's state for one fit (network.cpp).
    class GaussNewtonSweep;
    void apply_adam(T* p, T* m1, T* m2, const T* g, std::size_t count, T rate, T c1, T c2);
    // The parameters, optimizer state and step count (not the scale or the losses):
    // what a fit goes back to on Ctrl-C.
    using Checkpoint = BottleneckState<T>;
    void save(Checkpoint& checkpoint) const;
    void restore(const Checkpoint& checkpoint);

    BottleneckConfig config_;
    std::vector<Matrix<T>> weights_;
    std::vector<std::vector<T>> biases_;
    std::vector<Matrix<T>> weight_gradients_;
    std::vector<std::vector<T>> bias_gradients_;
    // Optimizer state: first moments (momentum velocity / Adam m) and Adam second moments.
    std::vector<Matrix<T>> weight_moment1_, weight_moment2_;
    std::vector<std::vector<T>> bias_moment1_, bias_moment2_;
    index steps_ = 0;
    double scale_ = 1.0;
    std::vector<double> loss_history_;
    bool converged_ = false;
    double relative_gradient_ = std::numeric_limits<double>::quiet_NaN();
    // Workspace: activations[l] is (widths[l] x batch) for l >= 1 (the input is not
    // copied), deltas[l] is the loss gradient at activation l.
    std::vector<Matrix<T>> activations_, deltas_;
    const T* input_ = nullptr;
    index input_ld_ = 0;
    index workspace_batch_ = -1;
};

}  // namespace lowrank
