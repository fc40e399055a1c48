// The products of the randomized SVD with a sparse A held in compressed sparse rows
// (SciPy's CSR; a CSC matrix is the CSR of its transpose): Y = M X, Z = M^T Y and
// the power iteration's Z = M^T (M X), the last in one pass over the nonzeros, as
// RowBlocks (svd/row_blocks.hpp) computes them for a dense M.
//
// Memory is O(nnz + (rows + cols) l): M is read where it lies, never densified and
// never copied; the panels are copied to row-major (so a stored value's row of X is
// contiguous), and the sums of M^T Y go to one (cols x l) array per chunk of M's rows.
//
// The same bits whatever the thread count or timing: M's rows are cut into chunks by
// a rule of M's shape, nonzero count and l alone (never the thread count), a chunk's
// sums are made by one thread in row order, and the chunks' sums are added in the
// chunks' order. Which thread runs a chunk then does not change a bit.
#pragma once

#include <cstdint>

#include "lowrank/common/interrupt.hpp"
#include "lowrank/common/matrix.hpp"
#include "lowrank/svd/linear_map.hpp"
#include "lowrank/svd/row_blocks.hpp"

namespace lowrank {

// A sparse matrix (rows x cols) in compressed sparse rows, as scipy.sparse holds it.
// Row r's stored values are values[p] at columns indices[p] for p in
// [indptr[r], indptr[r + 1]), in any order; a column stored twice in a row counts as
// the sum of its values (SciPy's meaning of duplicate entries). indptr[0] may be
// nonzero (a slice of a larger array's rows). The caller has checked the structure
// (check_csr) and that the values are finite.
template <class T, class I>
struct CsrView {
    index rows = 0, cols = 0;
    const I* indptr = nullptr;   // rows + 1 offsets, nondecreasing
    const I* indices = nullptr;  // column of each stored value, in [0, cols)
    const T* values = nullptr;

    index nonzeros() const { return index(indptr[rows]) - index(indptr[0]); }
};

// Throws std::invalid_argument, naming `name`, unless the arrays make a valid CSR
// matrix of `rows` x `cols` with `stored` entries: indptr starts at 0, does not
// decrease and ends at `stored`; every column index lies in [0, cols).
template <class I>
void check_csr(const I* indptr, const I* indices, index rows, index cols, index stored,
               const char* name);

// The three products on CSR M and column-major panels, on up to schedule.threads of
// the core's threads, polling schedule.stop between chunks. `panel_columns` (the
// SVD's l) sets the chunks (their sums' memory); a call may take a panel of any
// width. The outputs are resized to their shapes.
template <class T, class I>
class SparseRows final : public LinearMap<T> {
  public:
    SparseRows(const CsrView<T, I>& m, index panel_columns, const Schedule& schedule);

    index rows() const override { return m_.rows; }
    index cols() const override { return m_.cols; }
    // How many chunks of rows the sums of M^T Y come in (a rule of M and l only).
    int chunks() const { return chunks_; }

    // Y = M X: X (cols x l), Y (rows x l).
    void multiply(const Matrix<T>& x, Matrix<T>& y) const override;
    // Z = M^T Y: Y (rows x l), Z (cols x l).
    void multiply_transposed(const Matrix<T>& y, Matrix<T>& z) const override;
    // Z = M^T (M X), reading the nonzeros once; with `kept`, Y = M X stored there too.
    void normal_product(const Matrix<T>& x, Matrix<T>& z,
                        Matrix<T>* kept = nullptr) const override;

  private:
    // Row boundaries of chunk c: about nonzeros / chunks stored values each.
    index chunk_start(int c) const;

    CsrView<T, I> m_;
    Schedule schedule_;
    int chunks_ = 1;
};

}  // namespace lowrank
