#include "lowrank/kernels/normal_product.hpp"

#include <algorithm>
#include <atomic>
#include <stdexcept>
#include <type_traits>

#include "lowrank/runtime/chunk_sums.hpp"
#include "lowrank/runtime/isa.hpp"
#include "lowrank/runtime/parallel.hpp"

// The kernels are built for x86-64 with GCC or Clang, each instruction set in its own
// target region (the rest of the library keeps the baseline ISA); elsewhere the
// fused product declines and the BLAS path runs.
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define LOWRANK_NORMAL_KERNELS 1
#include <immintrin.h>

#include "lowrank/kernels/target_region.hpp"
#endif

namespace lowrank {

#ifdef LOWRANK_NORMAL_KERNELS

LOWRANK_TARGET_BEGIN("avx512f,fma")
namespace avx512 {
template <class T>
struct Ops;
template <>
struct Ops<float> {
    using V = __m512;
    static constexpr int lanes = 16;
    static V zero() { return _mm512_setzero_ps(); }
    static V load(const float* p) { return _mm512_loadu_ps(p); }
    static void store(float* p, V v) { _mm512_storeu_ps(p, v); }
    static V broadcast(float x) { return _mm512_set1_ps(x); }
    static V fma(V a, V b, V c) { return _mm512_fmadd_ps(a, b, c); }
};
template <>
struct Ops<double> {
    using V = __m512d;
    static constexpr int lanes = 8;
    static V zero() { return _mm512_setzero_pd(); }
    static V load(const double* p) { return _mm512_loadu_pd(p); }
    static void store(double* p, V v) { _mm512_storeu_pd(p, v); }
    static V broadcast(double x) { return _mm512_set1_pd(x); }
    static V fma(V a, V b, V c) { return _mm512_fmadd_pd(a, b, c); }
};
constexpr int kAccumulators = 24;  // of 32 registers; the rest hold X or Y and M
#include "lowrank/kernels/normal_product_kernel.inc"
}  // namespace avx512
LOWRANK_TARGET_END

LOWRANK_TARGET_BEGIN("avx2,fma")
namespace avx2 {
template <class T>
struct Ops;
template <>
struct Ops<float> {
    using V = __m256;
    static constexpr int lanes = 8;
    static V zero() { return _mm256_setzero_ps(); }
    static V load(const float* p) { return _mm256_loadu_ps(p); }
    static void store(float* p, V v) { _mm256_storeu_ps(p, v); }
    static V broadcast(float x) { return _mm256_set1_ps(x); }
    static V fma(V a, V b, V c) { return _mm256_fmadd_ps(a, b, c); }
};
// float32 only: in float64 these tiles lost to OpenBLAS's AVX2 kernels
// (docs/benchmarks-history.md, "Randomized SVD: the products").
constexpr int kAccumulators = 12;  // of 16 registers
#include "lowrank/kernels/normal_product_kernel.inc"
}  // namespace avx2
LOWRANK_TARGET_END

#endif  // LOWRANK_NORMAL_KERNELS

namespace kernels {
namespace {

bool supported(Isa isa) {
#ifdef LOWRANK_NORMAL_KERNELS
    // (__builtin_cpu_supports also checks that the OS saves the vector registers.)
    switch (isa) {
        case Isa::none: return true;
        case Isa::avx2:
            return lowrank::isa::allows(isa::Level::avx2) && __builtin_cpu_supports("avx2") &&
                   __builtin_cpu_supports("fma");
        case Isa::avx512:
            return lowrank::isa::allows(isa::Level::avx512) && __builtin_cpu_supports("avx512f") &&
                   __builtin_cpu_supports("fma");
    }
    return false;
#else
    return isa == Isa::none;
#endif
}

Isa best() {
    const std::vector<Isa> all = available();
    return all.back();
}

std::atomic<Isa>& selected() {
    static std::atomic<Isa> isa{best()};
    return isa;
}

}  // namespace

const char* name(Isa isa) {
    switch (isa) {
        case Isa::none: return "none";
        case Isa::avx2: return "avx2";
        case Isa::avx512: return "avx512";
    }
    return "none";
}

std::vector<Isa> available() {
    std::vector<Isa> out;
    for (Isa isa : {Isa::none, Isa::avx2, Isa::avx512}) {
        if (supported(isa)) out.push_back(isa);
    }
    return out;
}

Isa current() { return selected().load(std::memory_order_relaxed); }

void set(Isa isa) {
    if (!supported(isa)) {
        throw std::invalid_argument(std::string("kernel '") + name(isa) +
                                    "' is not available on this CPU (or is above LOWRANK_CORE_ISA)");
    }
    selected().store(isa, std::memory_order_relaxed);
}

Isa parse(const std::string& text) {
    for (Isa isa : {Isa::none, Isa::avx2, Isa::avx512}) {
        if (text == name(isa)) return isa;
    }
    throw std::invalid_argument("kernel must be 'none', 'avx2' or 'avx512', got '" + text + "'");
}

}  // namespace kernels

#ifdef LOWRANK_NORMAL_KERNELS
namespace {

// Rows of M per block: the block (rows x cols) should stay in L2 between the two
// halves of the normal product, about 512 KiB; a multiple of 24, which every tile
// height divides, when that leaves at least 24.
template <class T>
index block_rows(index cols) {
    const index budget = index(512) << 10;
    const index rows = std::clamp<index>(budget / (std::max<index>(cols, 1) * index(sizeof(T))),
                                         8, 240);
    return rows >= 24 ? rows / 24 * 24 : rows;
}

// Columns [first, first + count) of a column-major panel as the kernels read them:
// row-major, its rows padded with zeros to lp columns.
template <class T>
AlignedVector<T> padded_rows(const Matrix<T>& panel, index first, index count, index lp) {
    AlignedVector<T> out(static_cast<std::size_t>(panel.rows * lp), T(0));
    for (index c = 0; c < count; ++c) {
        const T* column = panel.column(first + c);
        for (index i = 0; i < panel.rows; ++i) out[static_cast<std::size_t>(i * lp + c)] = column[i];
    }
    return out;
}

enum class Product { normal, plain, transposed };  // M^T M X, M X, M^T Y

// A block's halves on the kernel `isa` (AVX2 has float32 kernels only: run()).
template <class T>
void product_block(kernels::Isa isa, const T* m, index ld, index rows, index cols, const T* x,
                   index lp, T* y) {
    if (isa == kernels::Isa::avx512) {
        avx512::product_block(m, ld, rows, cols, x, lp, y);
    } else if constexpr (std::is_same_v<T, float>) {
        avx2::product_block(m, ld, rows, cols, x, lp, y);
    }
}

template <class T>
void transposed_block(kernels::Isa isa, const T* m, index ld, index rows, index cols,
                      const T* y, index lp, T* z, const T* next) {
    if (isa == kernels::Isa::avx512) {
        avx512::transposed_block(m, ld, rows, cols, y, lp, z, next);
    } else if constexpr (std::is_same_v<T, float>) {
        avx2::transposed_block(m, ld, rows, cols, y, lp, z, next);
    }
}

// The three products on the kernel `isa`: M is cut into chunks of whole blocks of
// rows that the threads take as they come (run_chunks: a thread the machine slows
// takes fewer); Y = M X writes each chunk's rows, the others sum each chunk's share
// of Z and add the shares up at the end, in the chunks' order (so the bits depend on
// the thread count, through the chunk count, and not on which thread took which).
// The normal product also stores Y = M X in `kept` when it is not null (its rows
// are written as the blocks pass). It runs on columns [column0, column0 + l) of the
// panel `in` and writes the same columns of `out` (and `kept`), which the caller has
// sized; `flops` is the whole product's, for chunk_count.
template <class T>
void run_products(kernels::Isa isa, Product what, const ConstView<T>& m,
                  const Matrix<T>& in, Matrix<T>& out, int threads, StopPoll* stop,
                  Matrix<T>* kept, double flops, index column0, index l) {
    const index rows = m.rows, cols = m.cols;
    const index lanes = (isa == kernels::Isa::avx512 ? 64 : 32) / index(sizeof(T));
    const index lp = std::max<index>(1, (l + lanes - 1) / lanes) * lanes;
    // X (cols x lp) or Y (rows x lp)
    const AlignedVector<T> panel = padded_rows(in, column0, l, lp);

    const index rb = block_rows<T>(cols);
    const int parts = static_cast<int>(std::clamp<index>(rows / (2 * rb), 1, std::max(1, threads)));
    const int chunks =
        chunk_count((rows + rb - 1) / rb, 16, parts, flops, double(cols * lp) * double(sizeof(T)));
    const bool to_rows = what == Product::plain;
    // All of Y (rows x lp) for M X, or for M^T (M X) when it is kept.
    AlignedVector<T> all_rows(to_rows || kept ? static_cast<std::size_t>(rows * lp) : 0);
    // One Z (cols x lp) per chunk.
    ChunkSums<T> shares(to_rows ? 0 : chunks, cols * lp, chunks > parts);
    // Each thread's Y for one block (the normal product when Y is not kept).
    std::vector<AlignedVector<T>> block_y(
        static_cast<std::size_t>(parts),
        AlignedVector<T>(what == Product::normal && !kept ? static_cast<std::size_t>(rb * lp) : 0));

    run_chunks(chunks, parts, [&](int chunk, int part) {
        AlignedVector<T>& y = block_y[static_cast<std::size_t>(part)];
        T* z = nullptr;
        if (!to_rows) z = shares.get(chunk, true);
        const auto [first, last] = part_range(rows, rb, chunk, chunks);
        for (index r0 = first; r0 < last; r0 += rb) {
            if (stop) stop->poll();
            const index block = std::min(rb, last - r0);
            const T* mb = m.data + r0 * m.ld;
            // M^T Y alone prefetches the next block when it is as tall as this one.
            const T* next = r0 + 2 * rb <= last ? mb + rb * m.ld : nullptr;
            switch (what) {
                case Product::normal: {
                    T* yb = kept ? all_rows.data() + r0 * lp : y.data();
                    product_block(isa, mb, m.ld, block, cols, panel.data(), lp, yb);
                    transposed_block(isa, mb, m.ld, block, cols, yb, lp, z,
                                     static_cast<const T*>(nullptr));
                    break;
                }
                case Product::plain:
                    product_block(isa, mb, m.ld, block, cols, panel.data(), lp,
                                  all_rows.data() + r0 * lp);
                    break;
                case Product::transposed:
                    transposed_block(isa, mb, m.ld, block, cols, panel.data() + r0 * lp, lp, z,
                                     next);
                    break;
            }
        }
    });

    // Back to column-major: Y's rows, and the sum of the parts' Z.
    const auto unpad = [column0, l, lp](const T* from, index count, Matrix<T>& to) {
        for (index c = 0; c < l; ++c) {
            T* column = to.column(column0 + c);
            for (index i = 0; i < count; ++i) column[i] = from[i * lp + c];
        }
    };
    if (to_rows) {
        unpad(all_rows.data(), rows, out);
        return;
    }
    if (kept) unpad(all_rows.data(), rows, *kept);
    T* sum = shares.at(0);
    for (int c = 1; c < chunks; ++c) {
        const T* share = shares.at(c);
        for (index i = 0; i < cols * lp; ++i) sum[i] += share[i];
    }
    unpad(sum, cols, out);
}

// The kernels keep X (M X) or Z (M^T Y) in cache across all blocks of M; past
// 2 MiB (M's columns x l, padded) that no longer holds and OpenBLAS is as fast or
// faster (docs/benchmarks-history.md, "Randomized SVD: the products", "Wide
// panels"), so they decline.
constexpr index kMaxPanelBytes = index(2) << 20;
// The normal product keeps both X and Z in cache, and past 1 MiB each the two
// evict each other block by block (L2 is 2 MiB a core here): it then runs on the
// panel's columns in two ranges, M read once for each (each column of the result
// depends only on the same column of X, and its sums run in the same order whatever
// range it is in: the same bits), which is faster than one pass whose panels
// evict each other (docs/benchmarks-history.md, "Randomized SVD: the products",
// "Wide panels").
constexpr index kSplitPanelBytes = index(1) << 20;

template <class T>
bool run(Product what, const ConstView<T>& m, const Matrix<T>& in, Matrix<T>& out, int threads,
         StopPoll* stop, Matrix<T>* kept = nullptr) {
    const kernels::Isa isa = kernels::current();
    if (isa == kernels::Isa::none) return false;
    if (isa == kernels::Isa::avx2 && !std::is_same_v<T, float>) return false;
    const index lanes = (isa == kernels::Isa::avx512 ? 64 : 32) / index(sizeof(T));
    const index vectors = std::max<index>(1, (in.cols + lanes - 1) / lanes);
    const index panel_bytes = m.cols * vectors * lanes * index(sizeof(T));
    if (panel_bytes > kMaxPanelBytes) return false;
    const index out_rows = what == Product::plain ? m.rows : m.cols;
    if (out.rows != out_rows || out.cols != in.cols) out = Matrix<T>(out_rows, in.cols);
    if (what != Product::normal) kept = nullptr;
    if (kept && (kept->rows != m.rows || kept->cols != in.cols)) *kept = Matrix<T>(m.rows, in.cols);
    // The whole product's size decides its chunks (chunk_count), in both ranges.
    const double flops = 2.0 * double(m.rows) * double(m.cols) * double(in.cols);
    const bool split = what == Product::normal && panel_bytes > kSplitPanelBytes && vectors >= 2;
    const index width = split ? (vectors + 1) / 2 * lanes : std::max<index>(in.cols, 1);
    for (index first = 0; first < in.cols; first += width) {
        run_products(isa, what, m, in, out, threads, stop, kept, flops, first,
                     std::min(width, in.cols - first));
    }
    return true;
}

}  // namespace

#else

namespace {
enum class Product { normal, plain, transposed };
template <class T>
bool run(Product, const ConstView<T>&, const Matrix<T>&, Matrix<T>&, int, StopPoll*,
         Matrix<T>* = nullptr) {
    return false;
}
}  // namespace

#endif  // LOWRANK_NORMAL_KERNELS

template <class T>
bool kernel_normal_product(const ConstView<T>& m, const Matrix<T>& x, Matrix<T>& z, int threads,
                           StopPoll* stop, Matrix<T>* y) {
    return run(Product::normal, m, x, z, threads, stop, y);
}

template <class T>
bool kernel_product(const ConstView<T>& m, const Matrix<T>& x, Matrix<T>& y, int threads,
                    StopPoll* stop) {
    return run(Product::plain, m, x, y, threads, stop);
}

template <class T>
bool kernel_transposed_product(const ConstView<T>& m, const Matrix<T>& y, Matrix<T>& z,
                               int threads, StopPoll* stop) {
    return run(Product::transposed, m, y, z, threads, stop);
}

#define LOWRANK_INSTANTIATE(T)                                                                  \
    template bool kernel_normal_product<T>(const ConstView<T>&, const Matrix<T>&, Matrix<T>&,   \
                                           int, StopPoll*, Matrix<T>*);                        \
    template bool kernel_product<T>(const ConstView<T>&, const Matrix<T>&, Matrix<T>&, int,     \
                                    StopPoll*);                                                \
    template bool kernel_transposed_product<T>(const ConstView<T>&, const Matrix<T>&,           \
                                               Matrix<T>&, int, StopPoll*);
LOWRANK_INSTANTIATE(float)
LOWRANK_INSTANTIATE(double)
#undef LOWRANK_INSTANTIATE

}  // namespace lowrank
