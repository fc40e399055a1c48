// A as an operator on tall panels, whatever its layout: Y = A X, Z = A^T Y and the
// one-pass normal products, on the row blocks of the row-major matrix behind it (A
// itself, or A^T for column-major A: row_blocks.hpp), plus the small dense steps the
// adaptive range finder and the error estimate share.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <vector>

#include "lowrank/backend/blas_lapack.hpp"
#include "lowrank/common/matrix.hpp"
#include "lowrank/svd/row_blocks.hpp"

namespace lowrank {

template <class T>
class MatrixOperator {
  public:
    MatrixOperator(const ConstView<T>& a, const Schedule& schedule)
        : a_(a), m_(a.row_major ? a : a.transposed()), schedule_(schedule) {}

    index rows() const { return a_.rows; }
    index cols() const { return a_.cols; }
    bool row_major() const { return a_.row_major; }

    // Y = A X (X: n x b, Y: m x b).
    void times(const Matrix<T>& x, Matrix<T>& y) const {
        y = Matrix<T>(a_.rows, x.cols);
        const RowBlocks<T> blocks(m_, x.cols, schedule_);
        if (a_.row_major) {
            blocks.multiply(x, y);
        } else {
            blocks.multiply_transposed(x, y);
        }
    }

    // Z = A^T Y (Y: m x b, Z: n x b).
    void times_transposed(const Matrix<T>& y, Matrix<T>& z) const {
        z = Matrix<T>(a_.cols, y.cols);
        const RowBlocks<T> blocks(m_, y.cols, schedule_);
        if (a_.row_major) {
            blocks.multiply_transposed(y, z);
        } else {
            blocks.multiply(y, z);
        }
    }

    // One pass over A: for row-major A, Z = A^T A X (X: n x b) with `kept` = A X;
    // for column-major A, Z = A A^T X (X: m x b) with `kept` = A^T X.
    void normal(const Matrix<T>& x, Matrix<T>& z, Matrix<T>* kept) const {
        z = Matrix<T>(x.rows, x.cols);
        if (kept) *kept = Matrix<T>(m_.rows, x.cols);
        const RowBlocks<T> blocks(m_, x.cols, schedule_);
        blocks.normal_product(x, z, kept);
    }

    const ConstView<T>& view() const { return a_; }
    const Schedule& schedule() const { return schedule_; }

  private:
    ConstView<T> a_;
    ConstView<T> m_;  // row-major: A or A^T
    Schedule schedule_;
};

// C = X^T Y (X: r x p, Y: r x q; C: p x q).
template <class T>
Matrix<T> inner(const Matrix<T>& x, const Matrix<T>& y) {
    Matrix<T> c(x.cols, y.cols);
    if (x.rows > 0) {
        Blas<T>::gemm('T', 'N', x.cols, y.cols, x.rows, T(1), x.data(), x.ld(), y.data(), y.ld(),
                      T(0), c.data(), c.ld());
    }
    return c;
}

// Y -= X C (X: r x p, C: p x q, Y: r x q).
template <class T>
void subtract_product(Matrix<T>& y, const Matrix<T>& x, const Matrix<T>& c) {
    if (x.cols == 0 || y.cols == 0) return;
    Blas<T>::gemm('N', 'N', y.rows, y.cols, x.cols, T(-1), x.data(), x.ld(), c.data(), c.ld(),
                  T(1), y.data(), y.ld());
}

// Y -= Q (Q^T Y): Y's component in the span of the orthonormal Q removed.
template <class T>
void project_out(const Matrix<T>& q, Matrix<T>& y) {
    if (q.cols == 0) return;
    subtract_product(y, q, inner(q, y));
}

// The columns' Euclidean norms, in double.
template <class T>
std::vector<double> column_norms(const Matrix<T>& y) {
    std::vector<double> out(static_cast<std::size_t>(y.cols));
    for (index j = 0; j < y.cols; ++j) {
        double sum = 0;
        const T* column = y.column(j);
        for (index i = 0; i < y.rows; ++i) sum += double(column[i]) * double(column[i]);
        out[static_cast<std::size_t>(j)] = std::sqrt(sum);
    }
    return out;
}

// ||Y||_F^2 in double.
template <class T>
double frobenius_squared(const Matrix<T>& y) {
    double sum = 0;
    for (const T value : y.values) sum += double(value) * double(value);
    return sum;
}

// [X, Y]: the columns of Y appended to X (same rows).
template <class T>
void append_columns(Matrix<T>& x, const Matrix<T>& y) {
    if (x.cols == 0) {
        x = y;
        return;
    }
    x.values.insert(x.values.end(), y.values.begin(), y.values.end());
    x.cols += y.cols;
}

// The panel's largest singular value (0 for an empty one), from its Gram matrix in
// double: a small fraction of a pass over A, and accurate far beyond what the
// stopping tests that read it need.
template <class T>
double largest_singular_value(const Matrix<T>& y);

}  // namespace lowrank
