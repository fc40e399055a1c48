// The randomized SVD of a matrix known by its products (linear_map.hpp): a sparse
// matrix, a caller's operator, or either (or a dense matrix) less its column means.
// The same steps as the dense driver (randomized.hpp), in the working precision
// throughout: Omega from the seed (or given), the range finder on the map's
// products, the small SVD and U = Q Ub.
#pragma once

#include <vector>

#include "lowrank/common/interrupt.hpp"
#include "lowrank/common/matrix.hpp"
#include "lowrank/common/svd_options.hpp"
#include "lowrank/svd/linear_map.hpp"
#include "lowrank/svd/result.hpp"

namespace lowrank {

// The randomized SVD of the (m x n) A whose products `map` runs: `map` is A itself
// (`of_a`) or A^T. `sketch` (n x l), when given, replaces the Philox test matrix.
// Checks `options` (validate) first; runs the small steps on up to `threads` of the
// core's threads.
template <class T>
SvdResult<T> randomized_svd(const LinearMap<T>& map, bool of_a, const RandomizedSvdOptions& options,
                            const ConstView<T>* sketch, int threads);

// The randomized SVD of dense A - 1 mean^T (`mean`: n values), on A's row blocks
// (row_blocks.hpp) with the centring as a rank-one update, in the working
// precision; A outside the safe range runs on a scaled copy, as in the dense driver.
template <class T>
SvdResult<T> centered_randomized_svd(const ConstView<T>& a, const std::vector<T>& mean,
                                     const RandomizedSvdOptions& options,
                                     const ConstView<T>* sketch, StopPoll* stop);

// M - u v^T, for a map M (rows x cols), u (rows) and v (cols): M's products with a
// rank-one correction each, never forming the matrix. The centring of
// randomized_svd(..., center): A - 1 mu^T as a map of A (u = 1, v = mu) or of A^T
// (u = mu, v = 1). The normal product keeps M's single pass: with g = M^T u (one
// product, made once), (M - u v^T)^T (M - u v^T) X = M^T M X - g (v^T X) - v (g^T X)
// + v (u^T u) (v^T X).
template <class T>
class RankOneUpdate final : public LinearMap<T> {
  public:
    RankOneUpdate(const LinearMap<T>& m, std::vector<T> u, std::vector<T> v);

    index rows() const override { return m_.rows(); }
    index cols() const override { return m_.cols(); }
    void multiply(const Matrix<T>& x, Matrix<T>& y) const override;
    void multiply_transposed(const Matrix<T>& y, Matrix<T>& z) const override;
    void normal_product(const Matrix<T>& x, Matrix<T>& z,
                        Matrix<T>* kept = nullptr) const override;

  private:
    const LinearMap<T>& m_;
    std::vector<T> u_, v_, g_;  // g = M^T u
    double uu_ = 0;             // u^T u
};

}  // namespace lowrank
