// The products of the randomized SVD with A (M^T M W, M W, M^T Y) on row blocks of
// a row-major M, on the core's threads.
#pragma once

#include <algorithm>
#include <cstddef>
#include <type_traits>
#include <vector>

#include "lowrank/backend/blas_lapack.hpp"
#include "lowrank/common/interrupt.hpp"
#include "lowrank/common/matrix.hpp"
#include "lowrank/kernels/normal_product.hpp"
#include "lowrank/runtime/parallel.hpp"
#include "lowrank/svd/linear_map.hpp"

namespace lowrank {

// How the products of one randomized SVD run: blocks of A of about `block_bytes`
// (RandomizedSvdOptions), on `threads` of the core's threads, polling `stop`.
struct Schedule {
    index block_bytes = index(64) << 20;
    int threads = 1;
    StopPoll* stop = nullptr;
};

// The products of the randomized SVD, on row blocks of a row-major matrix M
// (rows x cols): A itself when A is row-major, A^T when A is column-major, so a
// block is always contiguous memory.
//
// They run on the core's own threads, one range of M's rows each, with the BLAS
// single-threaded: the whole randomized SVD runs so (randomized_svd), because the
// fused kernel's threads (normal_product.hpp) and a threaded BLAS's cannot share
// the cores. OpenBLAS's idle workers spin for a while after every threaded call,
// and took a large share of a float32 call's time (docs/benchmarks-history.md,
// "Randomized SVD: per-call costs, threads and memory"). Within its range,
// each thread makes one BLAS call per block of block_bytes, and polls Ctrl-C
// between blocks.
//
// The panels (X, Y, Z: rows or cols x l) go to BLAS either as they are or
// transposed (l x rows or cols, kTransposedPanels), whichever OpenBLAS runs faster:
// float32 products with M as GEMM's second operand, float64 ones with M first
// (SciPy's OpenBLAS on AVX-512). Transposing a panel costs rows x l moves against
// rows x cols x l multiply-adds for the product.
template <class T>
class RowBlocks {
  public:
    RowBlocks(const ConstView<T>& m, index panel_columns, const Schedule& schedule)
        : m_(m), schedule_(schedule), l_(panel_columns) {
        const index per_row = std::max<index>(m.cols, 1) * static_cast<index>(sizeof(T));
        block_ = std::clamp<index>(schedule.block_bytes / per_row, 1, std::max<index>(m.rows, 1));
        // Ranges of at least 64 rows (and one for a small M).
        parts_ = static_cast<int>(std::clamp<index>(m.rows / 64, 1, schedule.threads));
    }

    index rows() const { return m_.rows; }

    // Y = M X (rows x l): each thread writes its rows of Y.
    void multiply(const Matrix<T>& x, Matrix<T>& y) const {
        if (kernel_product(m_, x, y, schedule_.threads, schedule_.stop)) return;
        const Panel xp(x);
        Panel yp(y, false);
        run_parts(parts_, [&](int part, int count) {
            const auto [first, last] = part_range(m_.rows, 1, part, count);
            for (index r0 = first; r0 < last; r0 += block_) {
                poll();
                product(r0, std::min(block_, last - r0), xp, yp);
            }
        });
        yp.store(y);
    }

    // Z = M^T Y (cols x l): each thread sums its rows' share, then the shares add up.
    void multiply_transposed(const Matrix<T>& y, Matrix<T>& z) const {
        if (kernel_transposed_product(m_, y, z, schedule_.threads, schedule_.stop)) return;
        const Panel yp(y);
        std::vector<Matrix<T>> shares(static_cast<std::size_t>(parts_ - 1));
        run_parts(parts_, [&](int part, int count) {
            const auto [first, last] = part_range(m_.rows, 1, part, count);
            Matrix<T>& target = part == 0 ? z : shares[static_cast<std::size_t>(part - 1)];
            if (part > 0) target = Matrix<T>(z.rows, z.cols);
            Panel zp(target, first == last);
            for (index r0 = first; r0 < last; r0 += block_) {
                poll();
                transposed_product(r0, std::min(block_, last - r0), yp, zp, r0 > first);
            }
            zp.store(target);
        });
        for (const Matrix<T>& share : shares) {
            for (std::size_t i = 0; i < z.values.size(); ++i) z.values[i] += share.values[i];
        }
    }

    // Z = M^T (M X), reading M from memory once: the fused kernel where this CPU
    // has one (normal_product.hpp), else two BLAS passes, Y = M X and Z = M^T Y.
    // With `kept`, Y = M X is stored there too.
    void normal_product(const Matrix<T>& x, Matrix<T>& z, Matrix<T>* kept = nullptr) const {
        if (kernel_normal_product(m_, x, z, schedule_.threads, schedule_.stop, kept)) return;
        Matrix<T> local;
        Matrix<T>& y = kept ? *kept : local;
        if (y.rows != m_.rows || y.cols != l_) y = Matrix<T>(m_.rows, l_);
        multiply(x, y);
        multiply_transposed(y, z);
    }

  private:
    static constexpr bool kTransposedPanels = std::is_same_v<T, float>;

    // A (rows x l) panel as BLAS sees it: the caller's column-major matrix itself,
    // or (kTransposedPanels) a transposed copy (l x rows), written back by store().
    // A panel of M^T Y when M has no rows is zero: no block writes it.
    class Panel {
      public:
        // An input panel (read only).
        explicit Panel(const Matrix<T>& from) {
            if (kTransposedPanels) {
                copy_ = Matrix<T>(from.cols, from.rows);
                for (index j = 0; j < from.cols; ++j)
                    for (index i = 0; i < from.rows; ++i) copy_(j, i) = from(i, j);
                point_at(copy_);
            } else {
                point_at(const_cast<Matrix<T>&>(from));  // BLAS reads it only
            }
        }
        // An output panel; zeroed only when no product will write it.
        Panel(Matrix<T>& target, bool zero) {
            if (kTransposedPanels) {
                copy_ = Matrix<T>(target.cols, target.rows);  // zeros
                point_at(copy_);
            } else {
                if (zero) std::fill(target.values.begin(), target.values.end(), T(0));
                point_at(target);
            }
        }
        T* data() const { return data_; }
        index ld() const { return ld_; }
        // Address of row `row` of the (rows x l) panel.
        T* row(index r) const { return data_ + (kTransposedPanels ? r * ld_ : r); }
        void store(Matrix<T>& to) const {
            if (!kTransposedPanels) return;  // written in place
            for (index j = 0; j < to.cols; ++j)
                for (index i = 0; i < to.rows; ++i) to(i, j) = copy_(j, i);
        }

      private:
        void point_at(Matrix<T>& m) {
            data_ = m.data();
            ld_ = m.ld();
        }
        Matrix<T> copy_;
        T* data_ = nullptr;
        index ld_ = 1;
    };

    void poll() const {
        if (schedule_.stop) schedule_.stop->poll();
    }

    // Rows [first, first + count) of Y = M X (l = cols of the panels).
    void product(index first, index count, const Panel& x, Panel& y) const {
        const T* block = m_.data + first * m_.ld;
        if (kTransposedPanels) {  // Y_b^T = X^T M_b^T
            Blas<T>::gemm('N', 'N', l_, count, m_.cols, T(1), x.data(), x.ld(), block, m_.ld,
                          T(0), y.row(first), y.ld());
        } else {
            Blas<T>::gemm('T', 'N', count, l_, m_.cols, T(1), block, m_.ld, x.data(), x.ld(),
                          T(0), y.row(first), y.ld());
        }
    }

    // Z (+)= M_b^T Y_b for rows [first, first + count).
    void transposed_product(index first, index count, const Panel& y, Panel& z,
                            bool accumulate) const {
        const T* block = m_.data + first * m_.ld;
        const T beta = accumulate ? T(1) : T(0);
        if (kTransposedPanels) {  // Z^T (+)= Y_b^T M_b
            Blas<T>::gemm('N', 'T', l_, m_.cols, count, T(1), y.row(first), y.ld(), block,
                          m_.ld, beta, z.data(), z.ld());
        } else {
            Blas<T>::gemm('N', 'N', m_.cols, l_, count, T(1), block, m_.ld, y.row(first), y.ld(),
                          beta, z.data(), z.ld());
        }
    }

    ConstView<T> m_;
    Schedule schedule_;
    index l_ = 0;
    index block_ = 1;
    int parts_ = 1;
};

// RowBlocks as a LinearMap (linear_map.hpp), for the maps built on a dense matrix
// (its centring: randomized_map.hpp): blocks for the panel width of each call.
template <class T>
class RowBlocksMap final : public LinearMap<T> {
  public:
    RowBlocksMap(const ConstView<T>& m, const Schedule& schedule) : m_(m), schedule_(schedule) {}
    index rows() const override { return m_.rows; }
    index cols() const override { return m_.cols; }
    void multiply(const Matrix<T>& x, Matrix<T>& y) const override {
        if (y.rows != m_.rows || y.cols != x.cols) y = Matrix<T>(m_.rows, x.cols);
        RowBlocks<T>(m_, x.cols, schedule_).multiply(x, y);
    }
    void multiply_transposed(const Matrix<T>& y, Matrix<T>& z) const override {
        if (z.rows != m_.cols || z.cols != y.cols) z = Matrix<T>(m_.cols, y.cols);
        RowBlocks<T>(m_, y.cols, schedule_).multiply_transposed(y, z);
    }
    void normal_product(const Matrix<T>& x, Matrix<T>& z, Matrix<T>* kept) const override {
        if (z.rows != m_.cols || z.cols != x.cols) z = Matrix<T>(m_.cols, x.cols);
        RowBlocks<T>(m_, x.cols, schedule_).normal_product(x, z, kept);
    }

  private:
    ConstView<T> m_;
    Schedule schedule_;
};

}  // namespace lowrank
