#include "lowrank/bottleneck/network.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <limits>
#include <optional>
#include <string>

#include "lowrank/backend/blas_lapack.hpp"
#include "lowrank/common/errors.hpp"
#include "lowrank/common/philox.hpp"
#include "lowrank/runtime/parallel.hpp"
#include "lowrank/spectrum/singular_values.hpp"

namespace lowrank {
namespace {

std::size_t size_of(index n) { return static_cast<std::size_t>(n); }

// Householder QR of the column-major (rows x cols) matrix q (rows >= cols), in
// place: q becomes Q (rows x cols) and the diagonal of R is written to r_diagonal.
void qr_in_place(Matrix<double>& q, std::vector<double>& r_diagonal) {
    const index rows = q.rows, cols = q.cols;
    std::vector<double> tau(size_of(std::max<index>(cols, 1)));
    double query_qr = 0, query_q = 0;
    check_lapack_info(Blas<double>::geqrf(rows, cols, q.data(), q.ld(), tau.data(), &query_qr, -1),
                      "geqrf (workspace query)");
    check_lapack_info(
        Blas<double>::orgqr(rows, cols, cols, q.data(), q.ld(), tau.data(), &query_q, -1),
        "orgqr (workspace query)");
    const index lwork = std::max<index>(
        1, static_cast<index>(std::ceil(std::max(query_qr, query_q))));
    std::vector<double> work(size_of(lwork));
    check_lapack_info(Blas<double>::geqrf(rows, cols, q.data(), q.ld(), tau.data(), work.data(),
                                          lwork),
                      "geqrf");
    r_diagonal.resize(size_of(cols));
    for (index j = 0; j < cols; ++j) r_diagonal[size_of(j)] = q(j, j);
    check_lapack_info(Blas<double>::orgqr(rows, cols, cols, q.data(), q.ld(), tau.data(),
                                          work.data(), lwork),
                      "orgqr");
}

// The (k x k) upper-triangular R of the QR factorisation of the (rows x k) matrix a,
// rows >= k, as a full matrix with zeros below the diagonal.
template <class T>
Matrix<T> r_factor(Matrix<T> a) {
    const index rows = a.rows, k = a.cols;
    std::vector<T> tau(size_of(std::max<index>(k, 1)));
    T query = 0;
    check_lapack_info(Blas<T>::geqrf(rows, k, a.data(), a.ld(), tau.data(), &query, -1),
                      "geqrf (workspace query)");
    const index lwork =
        std::max<index>(1, static_cast<index>(std::ceil(static_cast<double>(query))));
    std::vector<T> work(size_of(lwork));
    check_lapack_info(Blas<T>::geqrf(rows, k, a.data(), a.ld(), tau.data(), work.data(), lwork),
                      "geqrf");
    Matrix<T> r(k, k);
    for (index j = 0; j < k; ++j) {
        for (index i = 0; i <= j; ++i) r(i, j) = a(i, j);
    }
    return r;
}

// ||a||_F in double, as a scaled sum of squares (no overflow or underflow).
template <class T>
double frobenius_norm(const ConstView<T>& a) {
    double largest = 0;
    for (index j = 0; j < a.cols; ++j) {
        for (index i = 0; i < a.rows; ++i) {
            largest = std::max(largest, std::abs(static_cast<double>(a(i, j))));
        }
    }
    if (largest == 0) return 0;
    double sum = 0;
    for (index j = 0; j < a.cols; ++j) {
        for (index i = 0; i < a.rows; ++i) {
            const double v = static_cast<double>(a(i, j)) / largest;
            sum += v * v;
        }
    }
    return largest * std::sqrt(sum);
}

}  // namespace

template <class T>
BottleneckNetwork<T>::BottleneckNetwork(BottleneckConfig config) : config_(std::move(config)) {
    validate(config_);
    initialize();
}

template <class T>
void BottleneckNetwork<T>::initialize() {
    const index layer_count = static_cast<index>(config_.widths.size()) - 1;
    weights_.clear();
    biases_.clear();
    for (index l = 0; l < layer_count; ++l) {
        const index in = config_.widths[size_of(l)], out = config_.widths[size_of(l + 1)];
        const auto substream = static_cast<std::uint32_t>(l);
        const auto count = static_cast<std::uint64_t>(in * out);
        Matrix<double> w(out, in);  // drawn in double, rounded to T once
        switch (config_.init) {
            case Init::HeNormal: {  // N(0, 2 / fan_in), He et al. 2015
                philox::fill_gaussian(config_.seed, 0, count, w.data(), philox::weights_stream,
                                      substream);
                const double deviation = std::sqrt(2.0 / static_cast<double>(in));
                for (double& v : w.values) v *= deviation;
                break;
            }
            case Init::GlorotUniform: {  // U(-limit, limit), limit = sqrt(6 / (fan_in + fan_out))
                philox::fill_uniform(config_.seed, 0, count, w.data(), philox::weights_stream,
                                     substream);
                const double limit = std::sqrt(6.0 / static_cast<double>(in + out));
                for (double& v : w.values) v = limit * (2.0 * v - 1.0);
                break;
            }
            case Init::Orthogonal: {
                // Q of the QR of a Gaussian matrix, signs fixed by diag(R) (Saxe et al.
                // 2014, as Keras): orthonormal columns when out >= in, rows otherwise.
                philox::fill_gaussian(config_.seed, 0, count, w.data(), philox::weights_stream,
                                      substream);
                const bool tall = out >= in;
                Matrix<double> q = tall ? w : Matrix<double>(in, out);
                if (!tall) {
                    for (index j = 0; j < in; ++j) {
                        for (index i = 0; i < out; ++i) q(j, i) = w(i, j);
                    }
                }
                std::vector<double> r_diagonal;
                qr_in_place(q, r_diagonal);
                for (index j = 0; j < q.cols; ++j) {
                    if (r_diagonal[size_of(j)] < 0) {
                        for (index i = 0; i < q.rows; ++i) q(i, j) = -q(i, j);
                    }
                }
                if (tall) {
                    w = q;
                } else {
                    for (index j = 0; j < in; ++j) {
                        for (index i = 0; i < out; ++i) w(i, j) = q(j, i);
                    }
                }
                break;
            }
        }
        Matrix<T> weight(out, in);
        for (std::size_t e = 0; e < w.values.size(); ++e) {
            weight.values[e] = static_cast<T>(w.values[e]);
        }
        weights_.push_back(std::move(weight));
        biases_.emplace_back(size_of(out), T(0));
    }
    weight_gradients_.clear();
    bias_gradients_.clear();
    weight_moment1_.clear();
    weight_moment2_.clear();
    bias_moment1_.clear();
    bias_moment2_.clear();
    for (index l = 0; l < layer_count; ++l) {
        const Matrix<T> zeros(weights_[size_of(l)].rows, weights_[size_of(l)].cols);
        const std::vector<T> zero_bias(biases_[size_of(l)].size(), T(0));
        weight_gradients_.push_back(zeros);
        weight_moment1_.push_back(zeros);
        weight_moment2_.push_back(zeros);
        bias_gradients_.push_back(zero_bias);
        bias_moment1_.push_back(zero_bias);
        bias_moment2_.push_back(zero_bias);
    }
    steps_ = 0;
    scale_ = 1.0;
    loss_history_.clear();
}

template <class T>
void BottleneckNetwork<T>::set_parameters(const std::vector<Matrix<T>>& weights,
                                          const std::vector<std::vector<T>>& biases) {
    LOWRANK_EXPECTS(weights.size() == weights_.size() && biases.size() == biases_.size(),
                    "set_parameters needs one weight and one bias per layer");
    for (std::size_t l = 0; l < weights.size(); ++l) {
        LOWRANK_EXPECTS(weights[l].rows == weights_[l].rows && weights[l].cols == weights_[l].cols,
                        "weight " + std::to_string(l) + " must have shape (" +
                            std::to_string(weights_[l].rows) + ", " +
                            std::to_string(weights_[l].cols) + ")");
        LOWRANK_EXPECTS(biases[l].size() == biases_[l].size(),
                        "bias " + std::to_string(l) + " must have " +
                            std::to_string(biases_[l].size()) + " entries");
    }
    const std::vector<Matrix<T>> keep_weights = weights;  // (weights may alias weights_)
    const std::vector<std::vector<T>> keep_biases = biases;
    initialize();
    weights_ = keep_weights;
    biases_ = keep_biases;
    if (!config_.bias) {
        for (auto& b : biases_) std::fill(b.begin(), b.end(), T(0));
    }
}

template <class T>
BottleneckState<T> BottleneckNetwork<T>::state() const {
    BottleneckState<T> out;
    save(out);
    out.scale = scale_;
    out.loss_history = loss_history_;
    return out;
}

template <class T>
void BottleneckNetwork<T>::set_state(BottleneckState<T> state) {
    const std::size_t layer_count = weights_.size();
    const auto same_shapes = [&](const std::vector<Matrix<T>>& w,
                                 const std::vector<std::vector<T>>& b) {
        if (w.size() != layer_count || b.size() != layer_count) return false;
        for (std::size_t l = 0; l < layer_count; ++l) {
            if (w[l].rows != weights_[l].rows || w[l].cols != weights_[l].cols ||
                b[l].size() != biases_[l].size()) {
                return false;
            }
        }
        return true;
    };
    LOWRANK_EXPECTS(same_shapes(state.weights, state.biases) &&
                        same_shapes(state.weight_moment1, state.bias_moment1) &&
                        same_shapes(state.weight_moment2, state.bias_moment2),
                    "the state's parameters do not fit the widths " + width_list(config_.widths));
    LOWRANK_EXPECTS(state.steps >= 0, "the state's step count must be >= 0");
    LOWRANK_EXPECTS(std::isfinite(state.scale) && state.scale > 0,
                    "the state's scale must be finite and > 0");
    restore(state);
    scale_ = state.scale;
    loss_history_ = std::move(state.loss_history);
}

template <class T>
void BottleneckNetwork<T>::ensure_workspace(index batch) {
    if (batch <= workspace_batch_) return;
    const std::size_t count = config_.widths.size();
    activations_.resize(count);
    deltas_.resize(count);
    for (std::size_t l = 1; l < count; ++l) {
        activations_[l] = Matrix<T>(config_.widths[l], batch);
        deltas_[l] = Matrix<T>(config_.widths[l], batch);
    }
    workspace_batch_ = batch;
}

// x == nullptr is the exact mode's design [I_n, 0]: the first layer's output is then
// W_0 itself (no product needed) and the bias reaches only the last column.
template <class T>
void BottleneckNetwork<T>::forward_internal(const T* x, index batch, index ldx, index bias_from) {
    ensure_workspace(batch);
    input_ = x;
    input_ld_ = ldx;
    for (index l = 0; l < layers(); ++l) {
        const Matrix<T>& w = weights_[size_of(l)];
        Matrix<T>& out = activations_[size_of(l + 1)];
        const index ld_out = w.rows;  // workspace leading dimension = width
        if (l == 0 && x == nullptr) {
            std::copy(w.values.begin(), w.values.end(), out.data());
            std::fill(out.data() + w.rows * w.cols, out.data() + w.rows * batch, T(0));
        } else {
            const T* in = l == 0 ? x : activations_[size_of(l)].data();
            const index ld_in = l == 0 ? ldx : w.cols;
            Blas<T>::gemm('N', 'N', w.rows, batch, w.cols, T(1), w.data(), w.ld(), in, ld_in,
                          T(0), out.data(), ld_out);
        }
        if (config_.bias) {
            const T* b = biases_[size_of(l)].data();
            for (index j = bias_from; j < batch; ++j) {
                T* column = out.data() + j * ld_out;
                for (index i = 0; i < w.rows; ++i) column[i] += b[i];
            }
        }
    }
}

template <class T>
void BottleneckNetwork<T>::backward_internal(index batch, index bias_from) {
    for (index l = layers() - 1; l >= 0; --l) {
        const Matrix<T>& w = weights_[size_of(l)];
        const Matrix<T>& delta = deltas_[size_of(l + 1)];
        Matrix<T>& gw = weight_gradients_[size_of(l)];
        // dL/dW_l = delta_{l+1} H_l^T
        if (l == 0 && input_ == nullptr) {  // H_0 = [I_n, 0]
            std::copy(delta.data(), delta.data() + w.rows * w.cols, gw.data());
        } else {
            const T* h = l == 0 ? input_ : activations_[size_of(l)].data();
            const index ld_h = l == 0 ? input_ld_ : w.cols;
            Blas<T>::gemm('N', 'T', w.rows, w.cols, batch, T(1), delta.data(), w.rows, h, ld_h,
                          T(0), gw.data(), gw.ld());
        }
        // dL/db_l = the row sums of delta_{l+1} over the columns that carry the bias
        std::vector<T>& gb = bias_gradients_[size_of(l)];
        std::fill(gb.begin(), gb.end(), T(0));
        if (config_.bias) {
            for (index j = bias_from; j < batch; ++j) {
                const T* column = delta.data() + j * w.rows;
                for (index i = 0; i < w.rows; ++i) gb[size_of(i)] += column[i];
            }
        }
        // delta_l = W_l^T delta_{l+1} (not needed for the input)
        if (l > 0) {
            Blas<T>::gemm('T', 'N', w.cols, batch, w.rows, T(1), w.data(), w.ld(), delta.data(),
                          w.rows, T(0), deltas_[size_of(l)].data(), w.cols);
        }
    }
}

template <class T>
void BottleneckNetwork<T>::forward(const T* x, index batch, index ldx, T* out, index ldo) {
    LOWRANK_EXPECTS(x != nullptr || batch == 0, "x is missing");
    if (batch == 0) return;
    forward_internal(x, batch, ldx, 0);
    const Matrix<T>& y = activations_.back();
    const index m = output_width();
    for (index j = 0; j < batch; ++j) {
        std::copy(y.data() + j * m, y.data() + (j + 1) * m, out + j * ldo);
    }
}

template <class T>
void BottleneckNetwork<T>::predict(const T* x, index batch, index ldx, T* out, index ldo) {
    forward(x, batch, ldx, out, ldo);
    const index m = output_width();
    for (index j = 0; j < batch; ++j) {
        for (index i = 0; i < m; ++i) out[i + j * ldo] = scaled_back(out[i + j * ldo]);
    }
}

template <class T>
double BottleneckNetwork<T>::batch_gradients(const T* x, const T* t, index batch, index ldx,
                                             index ldt) {
    LOWRANK_EXPECTS(batch >= 1, "the batch is empty");
    forward_internal(x, batch, ldx, 0);
    const index m = output_width();
    const Matrix<T>& y = activations_.back();
    Matrix<T>& delta = deltas_.back();
    // loss = sum (y - t)^2 / (m b); dloss/dy = 2 (y - t) / (m b)
    const T factor = static_cast<T>(2.0 / static_cast<double>(m * batch));
    double loss = 0;
    for (index j = 0; j < batch; ++j) {
        const T* yj = y.data() + j * m;
        const T* tj = t + j * ldt;
        T* dj = delta.data() + j * m;
        for (index i = 0; i < m; ++i) {
            const T d = yj[i] - tj[i];
            loss += static_cast<double>(d) * static_cast<double>(d);
            dj[i] = factor * d;
        }
    }
    backward_internal(batch, 0);
    return loss / static_cast<double>(m * batch);
}

template <class T>
double BottleneckNetwork<T>::exact_gradients(const ConstView<T>& a) {
    const index m = output_width(), n = input_width();
    LOWRANK_EXPECTS(a.rows == m && a.cols == n, "A must have shape (m, n) = (" +
                                                    std::to_string(m) + ", " +
                                                    std::to_string(n) + ")");
    // The expected loss is an MSE over the design [I_n, 0] with weight 1 per column:
    // column j < n is W e_j (no bias) against A e_j, column n is c against 0.
    forward_internal(nullptr, n + 1, n, n);
    const Matrix<T>& y = activations_.back();
    Matrix<T>& delta = deltas_.back();
    const T factor = static_cast<T>(2.0 / static_cast<double>(m));
    double loss = 0;
    for (index j = 0; j <= n; ++j) {
        const T* yj = y.data() + j * m;
        T* dj = delta.data() + j * m;
        for (index i = 0; i < m; ++i) {
            const T d = j < n ? yj[i] - a(i, j) : yj[i];
            loss += static_cast<double>(d) * static_cast<double>(d);
            dj[i] = factor * d;
        }
    }
    backward_internal(n + 1, n);
    return loss / static_cast<double>(m);
}

template <class T>
void BottleneckNetwork<T>::apply_adam(T* p, T* m1, T* m2, const T* g, std::size_t count, T rate,
                                      T c1, T c2) {
    const T beta1 = static_cast<T>(OptimizerConstants::beta1);
    const T beta2 = static_cast<T>(OptimizerConstants::beta2);
    const T one_minus_beta1 = static_cast<T>(1.0 - OptimizerConstants::beta1);
    const T one_minus_beta2 = static_cast<T>(1.0 - OptimizerConstants::beta2);
    const T epsilon = static_cast<T>(OptimizerConstants::epsilon);
    for (std::size_t e = 0; e < count; ++e) {
        m1[e] = beta1 * m1[e] + one_minus_beta1 * g[e];
        m2[e] = beta2 * m2[e] + one_minus_beta2 * (g[e] * g[e]);
        p[e] -= rate * (m1[e] * c1) / (std::sqrt(m2[e] * c2) + epsilon);
    }
}

template <class T>
void BottleneckNetwork<T>::step(double lr) {
    ++steps_;
    const T rate = static_cast<T>(lr);
    T c1 = 0, c2 = 0;
    if (config_.optimizer == Optimizer::Adam) {  // bias corrections 1 / (1 - beta^t)
        const double t = static_cast<double>(steps_);
        c1 = static_cast<T>(1.0 / (1.0 - std::pow(OptimizerConstants::beta1, t)));
        c2 = static_cast<T>(1.0 / (1.0 - std::pow(OptimizerConstants::beta2, t)));
    }
    const T momentum = static_cast<T>(OptimizerConstants::momentum);
    auto update = [&](T* p, T* m1, T* m2, const T* g, std::size_t count) {
        switch (config_.optimizer) {
            case Optimizer::Sgd:
                for (std::size_t e = 0; e < count; ++e) p[e] -= rate * g[e];
                break;
            case Optimizer::Momentum:
                for (std::size_t e = 0; e < count; ++e) {
                    m1[e] = momentum * m1[e] + g[e];
                    p[e] -= rate * m1[e];
                }
                break;
            case Optimizer::Adam:
                apply_adam(p, m1, m2, g, count, rate, c1, c2);
                break;
        }
    };
    for (std::size_t l = 0; l < weights_.size(); ++l) {
        update(weights_[l].data(), weight_moment1_[l].data(), weight_moment2_[l].data(),
               weight_gradients_[l].data(), weights_[l].values.size());
        if (config_.bias) {
            update(biases_[l].data(), bias_moment1_[l].data(), bias_moment2_[l].data(),
                   bias_gradients_[l].data(), biases_[l].size());
        }
    }
}

template <class T>
void BottleneckNetwork<T>::save(Checkpoint& c) const {
    c.weights = weights_;
    c.biases = biases_;
    c.weight_moment1 = weight_moment1_;
    c.weight_moment2 = weight_moment2_;
    c.bias_moment1 = bias_moment1_;
    c.bias_moment2 = bias_moment2_;
    c.steps = steps_;
}

template <class T>
void BottleneckNetwork<T>::restore(const Checkpoint& c) {
    weights_ = c.weights;
    biases_ = c.biases;
    weight_moment1_ = c.weight_moment1;
    weight_moment2_ = c.weight_moment2;
    bias_moment1_ = c.bias_moment1;
    bias_moment2_ = c.bias_moment2;
    steps_ = c.steps;
}

template <class T>
const std::vector<double>& BottleneckNetwork<T>::fit(const ConstView<T>& a,
                                                     const TrainingHooks& hooks) {
    const index m = output_width(), n = input_width();
    LOWRANK_EXPECTS(a.rows == m && a.cols == n, "A must have shape (m, n) = (" +
                                                    std::to_string(m) + ", " +
                                                    std::to_string(n) + ")");
    LOWRANK_EXPECTS(all_finite(a), "A contains NaN or Inf");
    // Mini-batch steps are GEMMs of (width x batch) panels, far too small to split
    // across threads: a threaded BLAS spends more on waking its threads than on the
    // product (docs/benchmarks-history.md, "The bottleneck network"). Exact mode's
    // full-batch products are big enough to keep them.
    std::optional<SingleThreadedBlas> single_threaded;
    if (config_.data != DataMode::Exact) single_threaded.emplace();
    initialize();  // every fit starts from the seed's initial weights

    // 1. Scale: train on A / s with s = ||A||_F / ||W0||_F, W0 the initial map, so the
    // targets A x / s have the size of the initial network's outputs (E ||W x||^2 =
    // ||W||_F^2) whatever the scale of A.
    const double a_norm = frobenius_norm(a);
    const double initial_norm = frobenius_norm(matrix().view());
    double s = a_norm > 0 && initial_norm > 0 ? a_norm / initial_norm : 1.0;
    if (!std::isfinite(s) || !(s > 0)) s = 1.0;
    Matrix<T> scaled = to_matrix(a);
    for (T& v : scaled.values) v = static_cast<T>(static_cast<double>(v) / s);

    const BottleneckConfig& c = config_;
    const index samples = c.samples, batch_size = std::min(c.batch_size, c.samples);
    const index epoch_steps = steps_per_epoch(c);
    const double total_steps = static_cast<double>(epoch_steps * c.epochs);

    Checkpoint checkpoint;
    save(checkpoint);
    scale_ = s;
    using clock = std::chrono::steady_clock;
    auto last_poll = clock::now();
    const auto poll_interval = std::chrono::duration<double>(hooks.poll_seconds);
    index steps_done = 0;
    auto check_interrupt = [&] {
        if (!hooks.poll) return;
        const auto now = clock::now();
        if (now - last_poll < poll_interval) return;
        last_poll = now;
        if (hooks.poll(static_cast<double>(steps_done) / total_steps)) {
            restore(checkpoint);
            throw Interrupted();
        }
    };
    auto poll = [&] {  // after each step
        ++steps_done;
        check_interrupt();
    };

    try {
        // 2. Data: the fixed set X (n x samples) and its targets (A / s) X, drawn once,
        // in chunks of columns so that Ctrl-C is noticed while they are made.
        Matrix<T> x_all, t_all, x_batch, t_batch;
        std::vector<index> order;
        std::vector<double> uniforms;
        if (c.data == DataMode::Fixed) {
            x_all = Matrix<T>(n, samples);
            t_all = Matrix<T>(m, samples);
            constexpr index chunk = 4096;
            for (index first = 0; first < samples; first += chunk) {
                const index cols = std::min(chunk, samples - first);
                philox::fill_gaussian(c.seed, static_cast<std::uint64_t>(first * n),
                                      static_cast<std::uint64_t>(cols * n), x_all.column(first),
                                      philox::data_stream);
                Blas<T>::gemm('N', 'N', m, cols, n, T(1), scaled.data(), scaled.ld(),
                              x_all.column(first), x_all.ld(), T(0), t_all.column(first),
                              t_all.ld());
                check_interrupt();
            }
            order.resize(size_of(samples));
            uniforms.resize(size_of(samples));
        }
        if (c.data != DataMode::Exact) {
            x_batch = Matrix<T>(n, batch_size);
            t_batch = Matrix<T>(m, batch_size);
        }

        for (index epoch = 0; epoch < c.epochs; ++epoch) {
            double loss_sum = 0;
            if (c.data == DataMode::Exact) {
                // 3a. Full-batch gradient descent on the expected loss, the step size on
                // a cosine from lr_peak * lr down to lr_floor * lr over the whole run.
                for (index k = 0; k < epoch_steps; ++k) {
                    loss_sum += exact_gradients(scaled.view());
                    const double progress = static_cast<double>(epoch * epoch_steps + k) /
                                            total_steps;
                    step(ExactSchedule::step_size(c.lr, progress));
                    poll();
                }
                loss_sum /= static_cast<double>(epoch_steps);
            } else {
                // 3b. Mini-batches: the fixed set in this epoch's shuffled order (a
                // Fisher-Yates shuffle from the shuffle stream, substream = epoch), or
                // fresh vectors from the data stream, numbered on from the last step's.
                if (c.data == DataMode::Fixed) {
                    philox::fill_uniform(c.seed, 0, static_cast<std::uint64_t>(samples),
                                         uniforms.data(), philox::shuffle_stream,
                                         static_cast<std::uint32_t>(epoch));
                    for (index i = 0; i < samples; ++i) order[size_of(i)] = i;
                    for (index i = samples - 1; i > 0; --i) {
                        const index j = std::min<index>(
                            i, static_cast<index>(uniforms[size_of(i)] *
                                                  static_cast<double>(i + 1)));
                        std::swap(order[size_of(i)], order[size_of(j)]);
                    }
                }
                for (index start = 0; start < samples; start += batch_size) {
                    const index b = std::min(batch_size, samples - start);
                    if (c.data == DataMode::Fixed) {
                        for (index j = 0; j < b; ++j) {  // plain loops: columns are short
                            const index q = order[size_of(start + j)];
                            const T* x_from = x_all.column(q);
                            const T* t_from = t_all.column(q);
                            T* x_to = x_batch.column(j);
                            T* t_to = t_batch.column(j);
                            for (index i = 0; i < n; ++i) x_to[i] = x_from[i];
                            for (index i = 0; i < m; ++i) t_to[i] = t_from[i];
                        }
                    } else {
                        const auto first = static_cast<std::uint64_t>((epoch * samples + start) * n);
                        philox::fill_gaussian(c.seed, first, static_cast<std::uint64_t>(b * n),
                                              x_batch.data(), philox::data_stream);
                        Blas<T>::gemm('N', 'N', m, b, n, T(1), scaled.data(), scaled.ld(),
                                      x_batch.data(), x_batch.ld(), T(0), t_batch.data(),
                                      t_batch.ld());
                    }
                    const double loss = batch_gradients(x_batch.data(), t_batch.data(), b,
                                                        x_batch.ld(), t_batch.ld());
                    loss_sum += loss * static_cast<double>(b);
                    step(c.lr);
                    poll();
                }
                loss_sum /= static_cast<double>(samples);
            }
            // In the units of A; (loss * s) * s, so that a zero loss stays 0 when s^2
            // alone would overflow.
            const double epoch_loss = loss_sum * s * s;
            loss_history_.push_back(epoch_loss);
            save(checkpoint);
            if (hooks.on_epoch && !hooks.on_epoch(epoch + 1, epoch_loss)) break;
        }
    } catch (...) {
        restore(checkpoint);
        throw;
    }
    return loss_history_;
}

template <class T>
Matrix<T> BottleneckNetwork<T>::right_factor() const {
    const index c = choke_index(config_.widths);  // R = W_{c-1} ... W_0
    Matrix<T> r = weights_[0];
    for (index l = 1; l < c; ++l) {
        const Matrix<T>& w = weights_[size_of(l)];
        Matrix<T> next(w.rows, r.cols);
        Blas<T>::gemm('N', 'N', w.rows, r.cols, w.cols, T(1), w.data(), w.ld(), r.data(), r.ld(),
                      T(0), next.data(), next.ld());
        r = std::move(next);
    }
    return r;
}

template <class T>
Matrix<T> BottleneckNetwork<T>::left_factor() const {
    const index c = choke_index(config_.widths);  // L = s W_{L-1} ... W_c
    Matrix<T> left = weights_[size_of(c)];
    for (index l = c + 1; l < layers(); ++l) {
        const Matrix<T>& w = weights_[size_of(l)];
        Matrix<T> next(w.rows, left.cols);
        Blas<T>::gemm('N', 'N', w.rows, left.cols, w.cols, T(1), w.data(), w.ld(), left.data(),
                      left.ld(), T(0), next.data(), next.ld());
        left = std::move(next);
    }
    for (T& v : left.values) v = scaled_back(v);
    return left;
}

template <class T>
Matrix<T> BottleneckNetwork<T>::matrix() const {
    const Matrix<T> left = left_factor(), right = right_factor();
    Matrix<T> w(left.rows, right.cols);
    Blas<T>::gemm('N', 'N', left.rows, right.cols, left.cols, T(1), left.data(), left.ld(),
                  right.data(), right.ld(), T(0), w.data(), w.ld());
    return w;
}

template <class T>
std::vector<T> BottleneckNetwork<T>::intercept() const {
    std::vector<T> h;  // the output for x = 0: h_{l+1} = W_l h_l + b_l
    for (std::size_t l = 0; l < weights_.size(); ++l) {
        const Matrix<T>& w = weights_[l];
        std::vector<T> next = biases_[l];
        if (!h.empty()) {
            Blas<T>::gemm('N', 'N', w.rows, 1, w.cols, T(1), w.data(), w.ld(), h.data(), w.cols,
                          T(1), next.data(), w.rows);
        }
        h = std::move(next);
    }
    for (T& v : h) v = scaled_back(v);
    return h;
}

template <class T>
std::vector<T> BottleneckNetwork<T>::singular_values() const {
    // W = L R = (Q_L R_L)(Q_R R_R)^T, so W's singular values are those of R_L R_R^T.
    const Matrix<T> left = left_factor(), right = right_factor();
    const index k = left.cols;
    Matrix<T> right_t(right.cols, k);
    for (index j = 0; j < right.cols; ++j) {
        for (index i = 0; i < k; ++i) right_t(j, i) = right(i, j);
    }
    const Matrix<T> r_left = r_factor(left), r_right = r_factor(std::move(right_t));
    Matrix<T> core(k, k);
    Blas<T>::gemm('N', 'T', k, k, k, T(1), r_left.data(), r_left.ld(), r_right.data(),
                  r_right.ld(), T(0), core.data(), core.ld());
    std::vector<T> sigma(size_of(k));
    lowrank::singular_values(core.view(), sigma.data());
    return sigma;
}

template <class T>
index BottleneckNetwork<T>::numerical_rank() const {
    const std::vector<T> sigma = singular_values();
    return learned_map_rank(sigma, input_width(), output_width());
}

template class BottleneckNetwork<float>;
template class BottleneckNetwork<double>;

}  // namespace lowrank
