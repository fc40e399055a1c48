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


// Plain double-precision helpers of the Gauss-Newton sweep.
using Mat = Matrix<double>;

// op(a) op(b), op = transpose where the flag is 'T'.
Mat product(const Mat& a, char ta, const Mat& b, char tb) {
    const index rows = ta == 'N' ? a.rows : a.cols, inner = ta == 'N' ? a.cols : a.rows;
    const index cols = tb == 'N' ? b.cols : b.rows;
    Mat out(rows, cols);
    if (rows > 0 && cols > 0 && inner > 0) {
        Blas<double>::gemm(ta, tb, rows, cols, inner, 1.0, a.data(), a.ld(), b.data(), b.ld(),
                           0.0, out.data(), out.ld());
    }
    return out;
}

// The pseudo-inverse of the symmetric positive semi-definite g, from its
// eigendecomposition: eigenvalues at or below largest * size * eps count as zero.
Mat gram_pseudo_inverse(Mat g) {
    const index n = g.rows;
    std::vector<double> w(size_of(std::max<index>(n, 1)));
    double query_work = 0;
    blas_int query_iwork = 0;
    check_lapack_info(Blas<double>::syevd('V', 'U', n, g.data(), g.ld(), w.data(), &query_work,
                                          -1, &query_iwork, -1),
                      "syevd (workspace query)");
    std::vector<double> work(size_of(std::max<index>(1, static_cast<index>(query_work))));
    std::vector<blas_int> iwork(size_of(std::max<index>(1, static_cast<index>(query_iwork))));
    check_lapack_info(Blas<double>::syevd('V', 'U', n, g.data(), g.ld(), w.data(), work.data(),
                                          static_cast<index>(work.size()), iwork.data(),
                                          static_cast<index>(iwork.size())),
                      "syevd");
    const double largest = n > 0 ? std::max(w[size_of(n - 1)], 0.0) : 0.0;
    const double cutoff = largest * static_cast<double>(n) *
                          std::numeric_limits<double>::epsilon();
    Mat scaled = g;  // columns v_i / lambda_i for the kept eigenvalues, else 0
    for (index j = 0; j < n; ++j) {
        const double inverse = w[size_of(j)] > cutoff ? 1.0 / w[size_of(j)] : 0.0;
        for (index i = 0; i < n; ++i) scaled(i, j) *= inverse;
    }
    return product(scaled, 'N', g, 'T');
}

// a^+ = a^T (a a^T)^+ (rows <= cols) or (a^T a)^+ a^T: the Gram of the smaller side.
Mat pseudo_inverse(const Mat& a) {
    if (a.rows <= a.cols) {
        return product(a, 'T', gram_pseudo_inverse(product(a, 'N', a, 'T')), 'N');
    }
    return product(gram_pseudo_inverse(product(a, 'T', a, 'N')), 'N', a, 'T');
}

template <class T>
Mat to_double(const Matrix<T>& a) {
    Mat out(a.rows, a.cols);
    for (std::size_t e = 0; e < a.values.size(); ++e) out.values[e] = static_cast<double>(a.values[e]);
    return out;
}

double squared_norm(const Mat& a) {
    double sum = 0;
    for (const double v : a.values) sum += v * v;
    return sum;
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
    Matrix<T> targets(m, n + 1);
    for (index j = 0; j < n; ++j) {
        for (index i = 0; i < m; ++i) targets(i, j) = a(i, j);
    }
    return design_gradients(nullptr, n, targets.view(), n);
}

template <class T>
double BottleneckNetwork<T>::design_gradients(const T* x, index ldx, const ConstView<T>& t,
                                              index bias_from) {
    const index m = output_width(), n = input_width();
    const index cols = t.cols;
    LOWRANK_EXPECTS(t.rows == m, "the targets must have m = " + std::to_string(m) + " rows");
    LOWRANK_EXPECTS(x != nullptr || cols == n + 1, "the design [I_n, 0] has n + 1 columns");
    LOWRANK_EXPECTS(cols >= 1, "the design is empty");
    forward_internal(x, cols, ldx, bias_from);
    const Matrix<T>& y = activations_.back();
    Matrix<T>& delta = deltas_.back();
    const T factor = static_cast<T>(2.0 / static_cast<double>(m));
    double loss = 0;
    for (index j = 0; j < cols; ++j) {
        const T* yj = y.data() + j * m;
        T* dj = delta.data() + j * m;
        for (index i = 0; i < m; ++i) {
            const T d = yj[i] - t(i, j);
            loss += static_cast<double>(d) * static_cast<double>(d);
            dj[i] = factor * d;
        }
    }
    backward_internal(cols, bias_from);
    return loss / static_cast<double>(m);
}

template <class T>
double BottleneckNetwork<T>::gradient_norm() const {
    double sum = 0;
    for (std::size_t l = 0; l < weights_.size(); ++l) {
        for (const T v : weight_gradients_[l].values) sum += static_cast<double>(v) * v;
        for (const T v : bias_gradients_[l]) sum += static_cast<double>(v) * v;
    }
    return std::sqrt(sum);
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
            case Optimizer::GaussNewton:  // a gradient step, as sgd (fit solves instead)
                for (std::size_t e = 0; e < count; ++e) p[e] -= rate * g[e];
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

namespace {

// s = ||targets||_F / ||W0 x||_F (1 when either is 0 or s is not finite).
double scale_for(double target_norm, double initial_norm) {
    double s = target_norm > 0 && initial_norm > 0 ? target_norm / initial_norm : 1.0;
    if (!std::isfinite(s) || !(s > 0)) s = 1.0;
    return s;
}

template <class T>
Matrix<T> divided(const ConstView<T>& a, double s) {
    Matrix<T> out = to_matrix(a);
    for (T& v : out.values) v = static_cast<T>(static_cast<double>(v) / s);
    return out;
}

}  // namespace

// Gauss-Newton on the two layers next to the choke point, in double. Layer a (into
// the choke point) and layer c (out of it) with their biases as Z_a = [W_a, b_a] and
// Z_c = [W_c, b_c]; the other layers are fixed, so the output over the design is
// U (Z_c [Z_a G_a; e^T]) + u e^T, with G_a = [the fixed layers on the design; e^T]
// (e marks the columns that carry the bias), U the product of the layers after c and
// u their biases carried through. With U of full column rank, each block's least
// squares solution is closed-form (Penrose: X = P^+ C Q^+ minimises ||P X Q - C||_F):
//   Z_a = (U W_c)^+ (S - U b_c r),  S = (T - u e^T) G_a^+, r = e^T G_a^+
//   Z_c = T~ [Z_a G_a; e^T]^+,      T~ = U^+ (T - u e^T)
// where S, r and T~ are fixed for the whole fit. One sweep costs a few products of
// the sizes of the choke point's layers and pseudo-inverses of two k x k Grams.
template <class T>
class BottleneckNetwork<T>::GaussNewtonSweep {
  public:
    GaussNewtonSweep(const BottleneckNetwork& net, const T* design, index design_ld,
                     const Matrix<T>& targets, index bias_from) {
        const auto& widths = net.config_.widths;
        const index layer_count = net.layers(), n = net.input_width(), m = net.output_width();
        const index cols = targets.cols;
        bias_ = net.config_.bias;
        choke_ = choke_index(widths);
        into_ = choke_ - 1;
        k_ = widths[size_of(choke_)];
        m_ = m;
        bias_row_.assign(size_of(cols), 0.0);
        for (index j = bias_from; j < cols; ++j) bias_row_[size_of(j)] = bias_ ? 1.0 : 0.0;
        // The fixed layers before the choke point on the design.
        Mat h(n, cols);
        if (design == nullptr) {
            for (index j = 0; j < n; ++j) h(j, j) = 1.0;
        } else {
            for (index j = 0; j < cols; ++j) {
                for (index i = 0; i < n; ++i) h(i, j) = static_cast<double>(design[i + j * design_ld]);
            }
        }
        for (index l = 0; l < into_; ++l) h = layer(net, l, h);
        g_a_ = augmented(h);
        const Mat g_a_inverse = pseudo_inverse(g_a_);
        // The fixed layers after the choke point.
        const index out_width = widths[size_of(choke_ + 1)];
        upper_identity_ = choke_ + 1 == layer_count;
        std::vector<double> u(size_of(out_width), 0.0);
        for (index l = choke_ + 1; l < layer_count; ++l) {
            const Mat w = to_double(net.weights_[size_of(l)]);
            upper_ = l == choke_ + 1 ? w : product(w, 'N', upper_, 'N');
            std::vector<double> next(size_of(w.rows), 0.0);
            for (index i = 0; i < w.rows; ++i) {
                double sum = bias_ ? static_cast<double>(net.biases_[size_of(l)][size_of(i)]) : 0.0;
                for (index j = 0; j < w.cols; ++j) sum += w(i, j) * u[size_of(j)];
                next[size_of(i)] = sum;
            }
            u = std::move(next);
        }
        upper_bias_ = u;
        targets_ = to_double(targets);
        Mat shifted = targets_;  // T - u e^T
        for (index j = 0; j < cols; ++j) {
            for (index i = 0; i < m; ++i) shifted(i, j) -= upper_bias_[size_of(i)] * bias_row_[size_of(j)];
        }
        reduced_targets_ = upper_identity_ ? shifted : product(pseudo_inverse(upper_), 'N', shifted, 'N');
        s_ = product(shifted, 'N', g_a_inverse, 'N');
        r_ = Mat(1, g_a_inverse.cols);
        for (index j = 0; j < g_a_inverse.cols; ++j) {
            double sum = 0;
            for (index i = 0; i < cols; ++i) sum += bias_row_[size_of(i)] * g_a_inverse(i, j);
            r_(0, j) = sum;
        }
        z_a_ = parameters(net, into_);
        z_c_ = parameters(net, choke_);
        initial_gradient_ = gradient(loss_unused_);
    }

    // One sweep (Z_a, then Z_c); writes both layers to the network; returns the loss
    // (the MSE over the design, divided by m as design_gradients) after it.
    double sweep(BottleneckNetwork& net) {
        const index k = k_;
        Mat w_c(z_c_.rows, k);
        for (index j = 0; j < k; ++j) {
            for (index i = 0; i < z_c_.rows; ++i) w_c(i, j) = z_c_(i, j);
        }
        // P = U W_c: (U W_c)^+ is not W_c^+ U^+ unless U^T U is a multiple of I.
        const Mat p = upper_identity_ ? w_c : product(upper_, 'N', w_c, 'N');
        Mat right = s_;  // S - (U b_c) r
        if (bias_) {
            Mat b_c(z_c_.rows, 1);
            for (index i = 0; i < z_c_.rows; ++i) b_c(i, 0) = z_c_(i, k);
            const Mat carried = upper_identity_ ? b_c : product(upper_, 'N', b_c, 'N');
            for (index j = 0; j < right.cols; ++j) {
                for (index i = 0; i < right.rows; ++i) right(i, j) -= carried(i, 0) * r_(0, j);
            }
        }
        z_a_ = product(pseudo_inverse(p), 'N', right, 'N');
        const Mat g_c = augmented(product(z_a_, 'N', g_a_, 'N'));
        z_c_ = product(reduced_targets_, 'N', pseudo_inverse(g_c), 'N');
        store(net, into_, z_a_);
        store(net, choke_, z_c_);
        double loss = 0;
        relative_gradient_ = initial_gradient_ > 0 ? gradient(loss) / initial_gradient_ : 0.0;
        return loss;
    }

    double relative_gradient() const { return relative_gradient_; }

  private:
    // [h; e^T] with the bias, h without.
    Mat augmented(const Mat& h) const {
        if (!bias_) return h;
        Mat out(h.rows + 1, h.cols);
        for (index j = 0; j < h.cols; ++j) {
            for (index i = 0; i < h.rows; ++i) out(i, j) = h(i, j);
            out(h.rows, j) = bias_row_[size_of(j)];
        }
        return out;
    }
    // Layer l of the network on h (double): W_l h + b_l e^T.
    Mat layer(const BottleneckNetwork& net, index l, const Mat& h) const {
        Mat out = product(to_double(net.weights_[size_of(l)]), 'N', h, 'N');
        if (bias_) {
            const auto& b = net.biases_[size_of(l)];
            for (index j = 0; j < out.cols; ++j) {
                for (index i = 0; i < out.rows; ++i) out(i, j) += static_cast<double>(b[size_of(i)]) * bias_row_[size_of(j)];
            }
        }
        return out;
    }
    Mat parameters(const BottleneckNetwork& net, index l) const {
        const Mat w = to_double(net.weights_[size_of(l)]);
        if (!bias_) return w;
        Mat z(w.rows, w.cols + 1);
        for (index j = 0; j < w.cols; ++j) {
            for (index i = 0; i < w.rows; ++i) z(i, j) = w(i, j);
        }
        for (index i = 0; i < w.rows; ++i) z(i, w.cols) = static_cast<double>(net.biases_[size_of(l)][size_of(i)]);
        return z;
    }
    static void store(BottleneckNetwork& net, index l, const Mat& z) {
        Matrix<T>& w = net.weights_[size_of(l)];
        for (index j = 0; j < w.cols; ++j) {
            for (index i = 0; i < w.rows; ++i) w(i, j) = static_cast<T>(z(i, j));
        }
        if (z.cols > w.cols) {
            for (index i = 0; i < w.rows; ++i) net.biases_[size_of(l)][size_of(i)] = static_cast<T>(z(i, w.cols));
        }
    }
    // The norm of the loss's gradient with respect to Z_a and Z_c; `loss` gets the loss.
    double gradient(double& loss) const {
        const index k = k_;
        const Mat g_c = augmented(product(z_a_, 'N', g_a_, 'N'));
        const Mat inner = product(z_c_, 'N', g_c, 'N');
        Mat residual = upper_identity_ ? inner : product(upper_, 'N', inner, 'N');
        for (index j = 0; j < residual.cols; ++j) {
            for (index i = 0; i < residual.rows; ++i) {
                residual(i, j) += upper_bias_[size_of(i)] * bias_row_[size_of(j)] - targets_(i, j);
            }
        }
        const double factor = 2.0 / static_cast<double>(m_);
        loss = squared_norm(residual) / static_cast<double>(m_);
        const Mat back = upper_identity_ ? residual : product(upper_, 'T', residual, 'N');
        Mat w_c(z_c_.rows, k);
        for (index j = 0; j < k; ++j) {
            for (index i = 0; i < z_c_.rows; ++i) w_c(i, j) = z_c_(i, j);
        }
        const Mat to_choke = product(w_c, 'T', back, 'N');
        const double a_part = squared_norm(product(to_choke, 'N', g_a_, 'T'));
        const double c_part = squared_norm(product(back, 'N', g_c, 'T'));
        return factor * std::sqrt(a_part + c_part);
    }

    bool bias_ = true, upper_identity_ = true;
    index choke_ = 1, into_ = 0, k_ = 1, m_ = 1;
    std::vector<double> bias_row_, upper_bias_;
    Mat g_a_, upper_, targets_, reduced_targets_, s_, r_, z_a_, z_c_;
    double initial_gradient_ = 0, relative_gradient_ = 0, loss_unused_ = 0;
};

template <class T>
const std::vector<double>& BottleneckNetwork<T>::fit(const ConstView<T>& a,
                                                     const TrainingHooks& hooks) {
    const index m = output_width(), n = input_width();
    LOWRANK_EXPECTS(a.rows == m && a.cols == n, "A must have shape (m, n) = (" +
                                                    std::to_string(m) + ", " +
                                                    std::to_string(n) + ")");
    LOWRANK_EXPECTS(all_finite(a), "A contains NaN or Inf");
    initialize();  // every fit starts from the seed's initial weights
    // Scale: train on A / s with s = ||A||_F / ||W0||_F, W0 the initial map, so the
    // targets A x / s have the size of the initial network's outputs (E ||W x||^2 =
    // ||W||_F^2) whatever the scale of A.
    const double s = scale_for(frobenius_norm(a), frobenius_norm(matrix().view()));
    const Matrix<T> scaled = divided(a, s);
    if (config_.data == DataMode::Exact) {
        Matrix<T> targets(m, n + 1);  // [A / s, 0] against the design [I_n, 0]
        for (index j = 0; j < n; ++j) {
            std::copy(scaled.column(j), scaled.column(j) + m, targets.column(j));
        }
        train(s, nullptr, nullptr, n, &targets, n, 0.0, nullptr, nullptr, hooks);
    } else {
        train(s, &scaled, nullptr, 0, nullptr, 0, 0.0, nullptr, nullptr, hooks);
    }
    return loss_history_;
}

template <class T>
const std::vector<double>& BottleneckNetwork<T>::fit_design(const ConstView<T>& x,
                                                            const ConstView<T>& t,
                                                            index bias_from, double loss_offset,
                                                            const TrainingHooks& hooks) {
    const index m = output_width(), n = input_width();
    LOWRANK_EXPECTS(config_.data == DataMode::Exact, "fit_design needs data='exact'");
    LOWRANK_EXPECTS(x.rows == n && t.rows == m && x.cols == t.cols && x.cols >= 1,
                    "the design must be (n x cols) and the targets (m x cols), cols >= 1");
    LOWRANK_EXPECTS(bias_from >= 0 && bias_from <= x.cols, "bias_from must be in [0, cols]");
    LOWRANK_EXPECTS(std::isfinite(loss_offset) && loss_offset >= 0, "loss_offset must be >= 0");
    LOWRANK_EXPECTS(all_finite(x) && all_finite(t), "the design or its targets contain NaN or Inf");
    initialize();
    const Matrix<T> design = to_matrix(x);
    Matrix<T> initial(m, x.cols);  // W0 x (the initial biases are 0)
    forward(design.data(), x.cols, design.ld(), initial.data(), initial.ld());
    const double s = scale_for(frobenius_norm(t), frobenius_norm(initial.view()));
    const Matrix<T> targets = divided(t, s);
    train(s, nullptr, design.data(), design.ld(), &targets, bias_from, loss_offset, nullptr,
          nullptr, hooks);
    return loss_history_;
}

template <class T>
const std::vector<double>& BottleneckNetwork<T>::fit_pairs(const ConstView<T>& x,
                                                           const ConstView<T>& y,
                                                           const TrainingHooks& hooks) {
    const index m = output_width(), n = input_width();
    LOWRANK_EXPECTS(config_.data == DataMode::Fixed, "fit_pairs needs data='fixed'");
    LOWRANK_EXPECTS(x.rows == n && y.rows == m && x.cols == y.cols && x.cols >= 1,
                    "X must be (n x N) and Y (m x N), N >= 1");
    LOWRANK_EXPECTS(all_finite(x) && all_finite(y), "X or Y contains NaN or Inf");
    initialize();
    const Matrix<T> inputs = to_matrix(x);
    Matrix<T> initial(m, x.cols);
    {
        SingleThreadedBlas single_threaded;
        forward(inputs.data(), x.cols, inputs.ld(), initial.data(), initial.ld());
    }
    const double s = scale_for(frobenius_norm(y), frobenius_norm(initial.view()));
    const Matrix<T> targets = divided(y, s);
    train(s, nullptr, nullptr, 0, nullptr, 0, 0.0, &inputs, &targets, hooks);
    return loss_history_;
}

template <class T>
void BottleneckNetwork<T>::train(double s, const Matrix<T>* scaled_a, const T* design,
                                 index design_ld, const Matrix<T>* targets, index bias_from,
                                 double loss_offset, const Matrix<T>* x_pairs,
                                 const Matrix<T>* t_pairs, const TrainingHooks& hooks) {
    const index m = output_width(), n = input_width();
    const BottleneckConfig& c = config_;
    const bool exact = c.data == DataMode::Exact;
    // Mini-batch steps are GEMMs of (width x batch) panels, far too small to split
    // across threads: a threaded BLAS spends more on waking its threads than on the
    // product (docs/benchmarks-history.md, "The bottleneck network"). Exact mode's
    // full-batch products are big enough to keep them.
    std::optional<SingleThreadedBlas> single_threaded;
    if (!exact || c.optimizer == Optimizer::GaussNewton) single_threaded.emplace();
    converged_ = false;
    relative_gradient_ = std::numeric_limits<double>::quiet_NaN();

    const index samples = x_pairs != nullptr ? x_pairs->cols : c.samples;
    const index batch_size = std::min(c.batch_size, samples);
    const index epoch_steps =
        exact ? steps_per_epoch(c) : (samples + batch_size - 1) / batch_size;
    const bool use_tol = exact && c.tol > 0;
    const index epoch_count = use_tol ? c.max_epochs : c.epochs;
    const double total_steps = static_cast<double>(epoch_steps * epoch_count);
    // The cosine schedule spans `epochs` epochs; with tol it restarts after each span.
    const double schedule_steps = static_cast<double>(epoch_steps * c.epochs);

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
        // Data: the fixed set X (n x samples) and its targets (A / s) X, drawn once,
        // in chunks of columns so that Ctrl-C is noticed while they are made (or the
        // given pairs).
        Matrix<T> x_drawn, t_drawn, x_batch, t_batch;
        const Matrix<T>* x_all = x_pairs;
        const Matrix<T>* t_all = t_pairs;
        std::vector<index> order;
        std::vector<double> uniforms;
        if (c.data == DataMode::Fixed) {
            if (x_all == nullptr) {
                x_drawn = Matrix<T>(n, samples);
                t_drawn = Matrix<T>(m, samples);
                constexpr index chunk = 4096;
                for (index first = 0; first < samples; first += chunk) {
                    const index cols = std::min(chunk, samples - first);
                    philox::fill_gaussian(c.seed, static_cast<std::uint64_t>(first * n),
                                          static_cast<std::uint64_t>(cols * n),
                                          x_drawn.column(first), philox::data_stream);
                    Blas<T>::gemm('N', 'N', m, cols, n, T(1), scaled_a->data(), scaled_a->ld(),
                                  x_drawn.column(first), x_drawn.ld(), T(0),
                                  t_drawn.column(first), t_drawn.ld());
                    check_interrupt();
                }
                x_all = &x_drawn;
                t_all = &t_drawn;
            }
            order.resize(size_of(samples));
            uniforms.resize(size_of(samples));
        }
        if (!exact) {
            x_batch = Matrix<T>(n, batch_size);
            t_batch = Matrix<T>(m, batch_size);
        }
        std::optional<GaussNewtonSweep> gauss_newton;
        if (exact && c.optimizer == Optimizer::GaussNewton) {
            gauss_newton.emplace(*this, design, design_ld, *targets, bias_from);
        }
        double initial_gradient = -1;

        for (index epoch = 0; epoch < epoch_count; ++epoch) {
            double loss_sum = 0;
            if (gauss_newton) {
                // Gauss-Newton: one sweep solves both layers next to the choke point.
                loss_sum = gauss_newton->sweep(*this);
                relative_gradient_ = gauss_newton->relative_gradient();
                ++steps_;
                poll();
                converged_ = use_tol && relative_gradient_ <= c.tol;
            } else if (exact) {
                // Full-batch gradient steps on the expected loss, the step size on a
                // cosine from lr_peak * lr down to lr_floor * lr over `epochs` epochs.
                index taken = 0;
                for (index k = 0; k < epoch_steps; ++k) {
                    const double loss =
                        design_gradients(design, design_ld, targets->view(), bias_from);
                    loss_sum += loss;
                    ++taken;
                    if (use_tol) {
                        const double norm = gradient_norm();
                        if (initial_gradient < 0) initial_gradient = norm;
                        relative_gradient_ = initial_gradient > 0 ? norm / initial_gradient : 0.0;
                        if (relative_gradient_ <= c.tol) {
                            converged_ = true;
                            break;
                        }
                    }
                    const double position = static_cast<double>(epoch * epoch_steps + k);
                    const double progress =
                        std::fmod(position, schedule_steps) / schedule_steps;
                    step(ExactSchedule::step_size(c.lr, progress));
                    poll();
                }
                loss_sum /= static_cast<double>(taken);
            } else {
                // Mini-batches: the fixed set in this epoch's shuffled order (a
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
                            const T* x_from = x_all->column(q);
                            const T* t_from = t_all->column(q);
                            T* x_to = x_batch.column(j);
                            T* t_to = t_batch.column(j);
                            for (index i = 0; i < n; ++i) x_to[i] = x_from[i];
                            for (index i = 0; i < m; ++i) t_to[i] = t_from[i];
                        }
                    } else {
                        const auto first = static_cast<std::uint64_t>((epoch * samples + start) * n);
                        philox::fill_gaussian(c.seed, first, static_cast<std::uint64_t>(b * n),
                                              x_batch.data(), philox::data_stream);
                        Blas<T>::gemm('N', 'N', m, b, n, T(1), scaled_a->data(), scaled_a->ld(),
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
            const double epoch_loss = loss_sum * s * s + loss_offset;
            loss_history_.push_back(epoch_loss);
            save(checkpoint);
            if (hooks.on_epoch && !hooks.on_epoch(epoch + 1, epoch_loss)) break;
            if (converged_) break;
        }
    } catch (...) {
        restore(checkpoint);
        throw;
    }
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
