// A matrix the randomized SVD knows only through its products: a sparse matrix
// (sparse/csr.hpp), a caller's operator (its products called back), or either with
// its column means taken out (sparse/centered.hpp). The dense path keeps its own
// row blocks (row_blocks.hpp), whose products the same range finder runs.
#pragma once

#include "lowrank/common/matrix.hpp"

namespace lowrank {

// M (rows x cols) by its products with column-major panels of l columns. The
// outputs are resized to their shapes.
template <class T>
class LinearMap {
  public:
    virtual ~LinearMap() = default;

    virtual index rows() const = 0;
    virtual index cols() const = 0;
    // Y = M X: X (cols x l), Y (rows x l).
    virtual void multiply(const Matrix<T>& x, Matrix<T>& y) const = 0;
    // Z = M^T Y: Y (rows x l), Z (cols x l).
    virtual void multiply_transposed(const Matrix<T>& y, Matrix<T>& z) const = 0;
    // Z = M^T (M X); with `kept`, Y = M X stored there too. By default the two
    // products; a map that can read M once for both overrides it.
    virtual void normal_product(const Matrix<T>& x, Matrix<T>& z, Matrix<T>* kept = nullptr) const {
        Matrix<T> local;
        Matrix<T>& y = kept ? *kept : local;
        multiply(x, y);
        multiply_transposed(y, z);
    }
};

}  // namespace lowrank
