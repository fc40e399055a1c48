// Dense matrices as the core sees them.
//
// `ConstView` is a read-only window on caller memory in either layout: column-major
// (element (i, j) at data[i + j * ld]) or row-major (at data[i * ld + j]). Row-major
// input is handed to BLAS as the transpose of a column-major matrix, so no copy of A
// is ever made just to change its layout. `Matrix` owns column-major storage.
#pragma once

#include <cmath>
#include <cstdint>
#include <vector>

namespace lowrank {

using index = std::int64_t;

template <class T>
struct ConstView {
    const T* data = nullptr;
    index rows = 0;
    index cols = 0;
    index ld = 0;            // distance between columns (column-major) or rows (row-major)
    bool row_major = false;

    T operator()(index i, index j) const {
        return row_major ? data[i * ld + j] : data[i + j * ld];
    }
    // The stored column-major matrix and the BLAS op that turns it into this view:
    // row-major (rows x cols) is stored as its column-major transpose, op = 'T'.
    char blas_op() const { return row_major ? 'T' : 'N'; }
    // Same matrix, transposed, without touching memory.
    ConstView transposed() const { return {data, cols, rows, ld, !row_major}; }
};

template <class T>
struct Matrix {
    index rows = 0;
    index cols = 0;
    std::vector<T> values;  // column-major, leading dimension `rows`

    Matrix() = default;
    Matrix(index r, index c) : rows(r), cols(c), values(static_cast<std::size_t>(r * c)) {}

    T* data() { return values.data(); }
    const T* data() const { return values.data(); }
    index ld() const { return rows > 0 ? rows : 1; }
    T& operator()(index i, index j) { return values[static_cast<std::size_t>(i + j * rows)]; }
    T operator()(index i, index j) const {
        return values[static_cast<std::size_t>(i + j * rows)];
    }
    T* column(index j) { return values.data() + j * rows; }
    const T* column(index j) const { return values.data() + j * rows; }
    ConstView<T> view() const { return {values.data(), rows, cols, ld(), false}; }
};

// A column-major copy of a view (LAPACK routines overwrite their input).
template <class T>
Matrix<T> to_matrix(const ConstView<T>& a) {
    Matrix<T> out(a.rows, a.cols);
    if (a.row_major) {
        for (index i = 0; i < a.rows; ++i) {
            const T* row = a.data + i * a.ld;
            for (index j = 0; j < a.cols; ++j) out(i, j) = row[j];
        }
    } else {
        for (index j = 0; j < a.cols; ++j) {
            const T* col = a.data + j * a.ld;
            T* dst = out.column(j);
            for (index i = 0; i < a.rows; ++i) dst[i] = col[i];
        }
    }
    return out;
}

// True when every entry is finite. One pass that vectorises: x - x is 0 for
// finite x and NaN for NaN/Inf, and the OR-reduction is on integers, so the
// compiler may reorder it (a floating-point sum could not be).
template <class T>
bool all_finite(const ConstView<T>& a) {
    const index outer = a.row_major ? a.rows : a.cols;
    const index inner = a.row_major ? a.cols : a.rows;
    for (index o = 0; o < outer; ++o) {
        const T* p = a.data + o * a.ld;
        int bad = 0;
        for (index i = 0; i < inner; ++i) bad |= !(p[i] - p[i] == T(0));
        if (bad) return false;
    }
    return true;
}

}  // namespace lowrank
