#include "lowrank/svd/randomized_map.hpp"

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <utility>
#include <vector>

#include "lowrank/backend/lapack.hpp"
#include "lowrank/common/errors.hpp"
#include "lowrank/runtime/parallel.hpp"
#include "lowrank/svd/range_finder.hpp"
#include "lowrank/svd/row_blocks.hpp"
#include "lowrank/svd/sketch.hpp"
#include "lowrank/svd/small_svd.hpp"

namespace lowrank {

template <class T>
SvdResult<T> randomized_svd(const LinearMap<T>& map, bool of_a, const RandomizedSvdOptions& options,
                            const ConstView<T>* sketch, int threads) {
    const index m = of_a ? map.rows() : map.cols(), n = of_a ? map.cols() : map.rows();
    validate(options, m, n, sketch ? &sketch->rows : nullptr, sketch ? &sketch->cols : nullptr);
    const index l = options.sketch_columns;
    // Step 1, as the dense driver takes it: a given sketch scaled by a power of two
    // (exact; only its span matters) to entries of order 1.
    Matrix<T> omega;
    if (sketch) {
        const T largest = max_abs(*sketch);
        LOWRANK_EXPECTS(std::isfinite(largest), "sketch contains NaN or Inf");
        omega = to_matrix(*sketch);
        if (largest > 0) {
            const int exponent = std::ilogb(largest);
            for (T& value : omega.values) value = std::scalbn(value, -exponent);
        }
    } else {
        omega = gaussian_sketch<T>(n, l, options.seed, threads);
    }
    // Steps 2-5 with the BLAS single-threaded: the map's products run on the core's
    // threads (a callback's own products run as its library runs them).
    const SingleThreadedBlas single_threaded_blas;
    Matrix<T> q(m, l), bt(n, l);
    range_finder(map, of_a, std::move(omega), options.power_iters, options.rank, q, bt);
    return svd_from_range(q, bt, options.rank, threads);
}

template <class T>
SvdResult<T> centered_randomized_svd(const ConstView<T>& a, const std::vector<T>& mean,
                                     const RandomizedSvdOptions& options,
                                     const ConstView<T>* sketch, StopPoll* stop) {
    validate(options, a.rows, a.cols, sketch ? &sketch->rows : nullptr,
             sketch ? &sketch->cols : nullptr);
    LOWRANK_EXPECTS(index(mean.size()) == a.cols, "mean must have one value per column of A");
    const T largest = std::max(max_abs(a), max_abs(ConstView<T>{mean.data(), 1, a.cols, a.cols, true}));
    LOWRANK_EXPECTS(std::isfinite(largest), "A or mean contains NaN or Inf");
    if (outside_safe_range(largest)) {
        // As the dense driver: a copy scaled by a power of two, exact to the bit.
        const int exponent = std::ilogb(largest);
        Matrix<T> scaled = to_matrix(a);
        for (T& value : scaled.values) value = std::scalbn(value, -exponent);
        std::vector<T> scaled_mean(mean);
        for (T& value : scaled_mean) value = std::scalbn(value, -exponent);
        SvdResult<T> out =
            centered_randomized_svd(scaled.view(), scaled_mean, options, sketch, stop);
        for (T& value : out.S) value = std::scalbn(value, exponent);
        return out;
    }
    const int threads = core_threads();
    const Schedule schedule{options.tuning.block_bytes, threads, stop};
    // Row blocks of A (row-major A) or of A^T, as in the dense driver.
    const bool of_a = a.row_major;
    const RowBlocksMap<T> blocks(of_a ? a : a.transposed(), schedule);
    std::vector<T> ones(static_cast<std::size_t>(a.rows), T(1));
    const RankOneUpdate<T> centered(blocks, of_a ? ones : mean, of_a ? mean : ones);
    return randomized_svd(centered, of_a, options, sketch, threads);
}

template <class T>
RankOneUpdate<T>::RankOneUpdate(const LinearMap<T>& m, std::vector<T> u, std::vector<T> v)
    : m_(m), u_(std::move(u)), v_(std::move(v)) {
    LOWRANK_EXPECTS(index(u_.size()) == m.rows() && index(v_.size()) == m.cols(),
                    "rank-one update of the wrong size");
    Matrix<T> column(m.rows(), 1), g;
    for (index i = 0; i < m.rows(); ++i) {
        column(i, 0) = u_[static_cast<std::size_t>(i)];
        uu_ += double(u_[static_cast<std::size_t>(i)]) * double(u_[static_cast<std::size_t>(i)]);
    }
    m.multiply_transposed(column, g);
    g_.assign(g.values.begin(), g.values.begin() + m.cols());
}

namespace {

// w^T X for every column of X (in float64).
template <class T>
std::vector<double> dot_columns(const std::vector<T>& w, const Matrix<T>& x) {
    std::vector<double> out(static_cast<std::size_t>(x.cols), 0.0);
    for (index j = 0; j < x.cols; ++j) {
        double sum = 0;
        for (index i = 0; i < x.rows; ++i) sum += double(w[static_cast<std::size_t>(i)]) * double(x(i, j));
        out[static_cast<std::size_t>(j)] = sum;
    }
    return out;
}

// Y -= a c^T (a: Y's rows, c: Y's columns).
template <class T>
void subtract_outer(Matrix<T>& y, const std::vector<T>& a, const std::vector<double>& c,
                    double scale = 1.0) {
    for (index j = 0; j < y.cols; ++j) {
        const double cj = scale * c[static_cast<std::size_t>(j)];
        for (index i = 0; i < y.rows; ++i) {
            y(i, j) = static_cast<T>(double(y(i, j)) - double(a[static_cast<std::size_t>(i)]) * cj);
        }
    }
}

}  // namespace

template <class T>
void RankOneUpdate<T>::multiply(const Matrix<T>& x, Matrix<T>& y) const {
    m_.multiply(x, y);
    subtract_outer(y, u_, dot_columns(v_, x));  // Y = M X - u (v^T X)
}

template <class T>
void RankOneUpdate<T>::multiply_transposed(const Matrix<T>& y, Matrix<T>& z) const {
    m_.multiply_transposed(y, z);
    subtract_outer(z, v_, dot_columns(u_, y));  // Z = M^T Y - v (u^T Y)
}

template <class T>
void RankOneUpdate<T>::normal_product(const Matrix<T>& x, Matrix<T>& z, Matrix<T>* kept) const {
    m_.normal_product(x, z, kept);
    const std::vector<double> vx = dot_columns(v_, x), gx = dot_columns(g_, x);
    // Z = M^T M X - g (v^T X) - v (g^T X - (u^T u)(v^T X)).
    subtract_outer(z, g_, vx);
    std::vector<double> c(vx.size());
    for (std::size_t j = 0; j < c.size(); ++j) c[j] = gx[j] - uu_ * vx[j];
    subtract_outer(z, v_, c);
    if (kept) subtract_outer(*kept, u_, vx);  // Y = M X - u (v^T X)
}

template SvdResult<float> randomized_svd<float>(const LinearMap<float>&, bool,
                                                const RandomizedSvdOptions&,
                                                const ConstView<float>*, int);
template SvdResult<double> randomized_svd<double>(const LinearMap<double>&, bool,
                                                  const RandomizedSvdOptions&,
                                                  const ConstView<double>*, int);
template SvdResult<float> centered_randomized_svd<float>(const ConstView<float>&,
                                                         const std::vector<float>&,
                                                         const RandomizedSvdOptions&,
                                                         const ConstView<float>*, StopPoll*);
template SvdResult<double> centered_randomized_svd<double>(const ConstView<double>&,
                                                           const std::vector<double>&,
                                                           const RandomizedSvdOptions&,
                                                           const ConstView<double>*, StopPoll*);
template class RankOneUpdate<float>;
template class RankOneUpdate<double>;

}  // namespace lowrank
