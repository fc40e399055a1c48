#include "lowrank/sparse/csr.hpp"

#include <algorithm>
#include <cstddef>
#include <stdexcept>
#include <string>
#include <vector>

#include "lowrank/kernels/normal_product.hpp"
#include "lowrank/runtime/parallel.hpp"

// The loops are built for the baseline and, on x86-64 with GCC or Clang, for AVX2
// and AVX-512 in target regions (as the dense kernels, kernels/normal_product.cpp),
// chosen by kernels::current().
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define LOWRANK_SPARSE_TARGETS 1
#include "lowrank/kernels/target_region.hpp"
#endif

namespace lowrank {

namespace sparse_baseline {
#include "lowrank/sparse/csr_kernel.inc"
}  // namespace sparse_baseline

#ifdef LOWRANK_SPARSE_TARGETS
LOWRANK_TARGET_BEGIN("avx2")
namespace sparse_avx2 {
#include "lowrank/sparse/csr_kernel.inc"
}  // namespace sparse_avx2
LOWRANK_TARGET_END

LOWRANK_TARGET_BEGIN("avx512f")
namespace sparse_avx512 {
#include "lowrank/sparse/csr_kernel.inc"
}  // namespace sparse_avx512
LOWRANK_TARGET_END
#endif

namespace {

// A chunk's share of the stored values: fewer make the per-call costs (a chunk's own
// sums to clear and add) outweigh the work.
constexpr index kChunkNonzeros = index(1) << 15;
// At most this many chunks (four a thread on a 16-core machine) ...
constexpr int kMostChunks = 64;
// ... and their sums at most this many bytes together (one chunk where a single
// (cols x l) array is larger).
constexpr double kSumsBytes = double(std::size_t(256) << 20);

#define LOWRANK_SPARSE_DISPATCH(call)                                        \
    do {                                                                     \
        switch (kernels::current()) {                                        \
            case kernels::Isa::avx512: LOWRANK_SPARSE_ON(sparse_avx512, call); break; \
            case kernels::Isa::avx2: LOWRANK_SPARSE_ON(sparse_avx2, call); break;     \
            default: sparse_baseline::call; break;                           \
        }                                                                    \
    } while (0)
#ifdef LOWRANK_SPARSE_TARGETS
#define LOWRANK_SPARSE_ON(ns, call) ns::call
#else
#define LOWRANK_SPARSE_ON(ns, call) sparse_baseline::call
#endif

// A column-major (rows x cols) matrix as row-major values, and back.
template <class T>
std::vector<T> row_major(const Matrix<T>& a) {
    std::vector<T> out(static_cast<std::size_t>(a.rows * a.cols));
    for (index j = 0; j < a.cols; ++j)
        for (index i = 0; i < a.rows; ++i) out[static_cast<std::size_t>(i * a.cols + j)] = a(i, j);
    return out;
}

template <class T>
void store_row_major(const T* values, index rows, index cols, Matrix<T>& to) {
    if (to.rows != rows || to.cols != cols) to = Matrix<T>(rows, cols);
    for (index j = 0; j < cols; ++j)
        for (index i = 0; i < rows; ++i) to(i, j) = values[i * cols + j];
}

}  // namespace

template <class I>
void check_csr(const I* indptr, const I* indices, index rows, index cols, index stored,
               const char* name) {
    const std::string who(name);
    if (rows < 0 || cols < 0 || stored < 0) throw std::invalid_argument(who + ": negative shape");
    if (index(indptr[0]) != 0) {
        throw std::invalid_argument(who + ": indptr must start at 0");
    }
    for (index r = 0; r < rows; ++r) {
        if (indptr[r + 1] < indptr[r]) {
            throw std::invalid_argument(who + ": indptr must not decrease (row " +
                                        std::to_string(r) + ")");
        }
    }
    if (index(indptr[rows]) != stored) {
        throw std::invalid_argument(who + ": indptr[-1] must equal the number of stored values (" +
                                    std::to_string(stored) + ")");
    }
    for (index p = 0; p < stored; ++p) {
        if (indices[p] < 0 || index(indices[p]) >= cols) {
            throw std::invalid_argument(who + ": column index " + std::to_string(index(indices[p])) +
                                        " out of range [0, " + std::to_string(cols) + ")");
        }
    }
}

template <class T, class I>
SparseRows<T, I>::SparseRows(const CsrView<T, I>& m, index panel_columns,
                             const Schedule& schedule)
    : m_(m), schedule_(schedule) {
    const double sum_bytes = double(std::max<index>(m.cols, 1)) *
                             double(std::max<index>(panel_columns, 1)) *
                             double(sizeof(T));
    const index by_work = m.nonzeros() / kChunkNonzeros;
    const index by_memory = index(kSumsBytes / sum_bytes);
    chunks_ = static_cast<int>(std::clamp<index>(std::min<index>(by_work, by_memory), 1,
                                                 std::min<index>(kMostChunks,
                                                                 std::max<index>(m.rows, 1))));
}

template <class T, class I>
index SparseRows<T, I>::chunk_start(int c) const {
    if (c <= 0) return 0;
    if (c >= chunks_) return m_.rows;
    // The first row whose values begin at or past c / chunks of the nonzeros.
    const index base = index(m_.indptr[0]);
    const index target = base + m_.nonzeros() * c / chunks_;
    const I* begin = m_.indptr;
    const I* end = m_.indptr + m_.rows;
    return index(std::lower_bound(begin, end, target,
                                  [](I value, index t) { return index(value) < t; }) -
                 begin);
}

template <class T, class I>
void SparseRows<T, I>::multiply(const Matrix<T>& x, Matrix<T>& y) const {
    const index l = x.cols;
    const std::vector<T> xr = row_major(x);
    std::vector<T> yr(static_cast<std::size_t>(m_.rows * l));
    run_chunks(chunks_, std::min(schedule_.threads, chunks_), [&](int c, int) {
        if (schedule_.stop) schedule_.stop->poll();
        LOWRANK_SPARSE_DISPATCH(product_rows(m_, chunk_start(c), chunk_start(c + 1), xr.data(), l,
                                             yr.data()));
    });
    store_row_major(yr.data(), m_.rows, l, y);
}

namespace {

// Z (cols x l, column-major) = the chunks' row-major sums added in the chunks'
// order, each thread a range of Z's rows.
template <class T>
void add_chunk_sums(const std::vector<T>& sums, int chunks, index cols, index l, int threads,
                    Matrix<T>& z) {
    if (z.rows != cols || z.cols != l) z = Matrix<T>(cols, l);
    const std::size_t stride = static_cast<std::size_t>(cols * l);
    const int parts = static_cast<int>(std::clamp<index>(cols / 256, 1, threads));
    run_parts(parts, [&](int part, int count) {
        const auto [first, last] = part_range(cols, 1, part, count);
        for (index i = first; i < last; ++i) {
            for (index j = 0; j < l; ++j) {
                const std::size_t at = static_cast<std::size_t>(i * l + j);
                T sum = sums[at];
                for (int c = 1; c < chunks; ++c) sum += sums[static_cast<std::size_t>(c) * stride + at];
                z(i, j) = sum;
            }
        }
    });
}

}  // namespace

template <class T, class I>
void SparseRows<T, I>::multiply_transposed(const Matrix<T>& y, Matrix<T>& z) const {
    const index l = y.cols;
    const std::vector<T> yr = row_major(y);
    const std::size_t stride = static_cast<std::size_t>(m_.cols * l);
    std::vector<T> sums(stride * static_cast<std::size_t>(chunks_), T(0));
    run_chunks(chunks_, std::min(schedule_.threads, chunks_), [&](int c, int) {
        if (schedule_.stop) schedule_.stop->poll();
        T* s = sums.data() + static_cast<std::size_t>(c) * stride;
        LOWRANK_SPARSE_DISPATCH(
            scatter_rows(m_, chunk_start(c), chunk_start(c + 1), yr.data(), l, s));
    });
    add_chunk_sums(sums, chunks_, m_.cols, l, schedule_.threads, z);
}

template <class T, class I>
void SparseRows<T, I>::normal_product(const Matrix<T>& x, Matrix<T>& z, Matrix<T>* kept) const {
    const index l = x.cols;
    const std::vector<T> xr = row_major(x);
    const std::size_t stride = static_cast<std::size_t>(m_.cols * l);
    std::vector<T> sums(stride * static_cast<std::size_t>(chunks_), T(0));
    std::vector<T> yr(kept ? static_cast<std::size_t>(m_.rows * l) : 0);
    const int parts = std::min(schedule_.threads, chunks_);
    std::vector<std::vector<T>> scratch(static_cast<std::size_t>(parts),
                                        std::vector<T>(static_cast<std::size_t>(l)));
    run_chunks(chunks_, parts, [&](int c, int part) {
        if (schedule_.stop) schedule_.stop->poll();
        T* s = sums.data() + static_cast<std::size_t>(c) * stride;
        T* t = scratch[static_cast<std::size_t>(part)].data();
        LOWRANK_SPARSE_DISPATCH(normal_rows(m_, chunk_start(c), chunk_start(c + 1), xr.data(), l, s,
                                            t, kept ? yr.data() : nullptr));
    });
    add_chunk_sums(sums, chunks_, m_.cols, l, schedule_.threads, z);
    if (kept) store_row_major(yr.data(), m_.rows, l, *kept);
}

template void check_csr<std::int32_t>(const std::int32_t*, const std::int32_t*, index, index,
                                      index, const char*);
template void check_csr<std::int64_t>(const std::int64_t*, const std::int64_t*, index, index,
                                      index, const char*);
template class SparseRows<float, std::int32_t>;
template class SparseRows<float, std::int64_t>;
template class SparseRows<double, std::int32_t>;
template class SparseRows<double, std::int64_t>;

}  // namespace lowrank
