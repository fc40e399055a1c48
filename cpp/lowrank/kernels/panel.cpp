#include "lowrank/kernels/panel.hpp"

#include <algorithm>
#include <atomic>
#include <type_traits>

#include "lowrank/backend/blas_lapack.hpp"
#include "lowrank/runtime/isa.hpp"
#include "lowrank/runtime/parallel.hpp"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define LOWRANK_PANEL_KERNELS 1
#include <immintrin.h>

#include "lowrank/kernels/target_region.hpp"
#endif

namespace lowrank {
namespace {

// The BLAS versions, on rows [first, last) of Y: those rows in float64 (a copy when
// Y is float32), then syrk, trmm or gemm.
template <class T>
Matrix<double> rows_as_double(const Matrix<T>& y, index first, index last) {
    Matrix<double> out(last - first, y.cols);
    for (index j = 0; j < y.cols; ++j)
        std::copy(y.column(j) + first, y.column(j) + last, out.column(j));
    return out;
}

// G (l x l, upper triangle) = rows [first, last) of Y, transposed, times themselves.
template <class T>
void gram_rows_blas(const Matrix<T>& y, index first, index last, Matrix<double>& g) {
    const index rows = last - first;
    if constexpr (std::is_same_v<T, double>) {
        Blas<double>::syrk('U', 'T', y.cols, rows, 1.0, y.data() + first, y.ld(), 0.0, g.data(),
                           g.ld());
    } else {
        const Matrix<double> wide = rows_as_double(y, first, last);
        Blas<double>::syrk('U', 'T', y.cols, rows, 1.0, wide.data(), wide.ld(), 0.0, g.data(),
                           g.ld());
    }
}

// Rows [first, last) of Y <- those rows times R (trmm) for upper-triangular R, or
// times W (gemm) for any W.
template <class T>
void times_rows_blas(Matrix<T>& y, const Matrix<double>& r, bool upper, index first,
                     index last) {
    const index rows = last - first, l = y.cols;
    if constexpr (std::is_same_v<T, double>) {
        if (upper) {  // in place
            Blas<double>::trmm('R', 'U', 'N', 'N', rows, l, 1.0, r.data(), r.ld(),
                               y.data() + first, y.ld());
            return;
        }
    }
    Matrix<double> wide = rows_as_double(y, first, last);
    if (upper) {
        Blas<double>::trmm('R', 'U', 'N', 'N', rows, l, 1.0, r.data(), r.ld(), wide.data(),
                           wide.ld());
    } else {
        Matrix<double> out(rows, l);
        Blas<double>::gemm('N', 'N', rows, l, l, 1.0, wide.data(), wide.ld(), r.data(), r.ld(),
                           0.0, out.data(), out.ld());
        wide = std::move(out);
    }
    for (index j = 0; j < l; ++j) {
        std::transform(wide.column(j), wide.column(j) + rows, y.column(j) + first,
                       [](double v) { return static_cast<T>(v); });
    }
}

#ifdef LOWRANK_PANEL_KERNELS
LOWRANK_TARGET_BEGIN("avx512f,fma")

// Eight consecutive values of a column as float64; `mask` selects the ones present
// (the others read as zero).
inline __m512d load8(const double* p, __mmask8 mask) { return _mm512_maskz_loadu_pd(mask, p); }
inline __m512d load8(const float* p, __mmask8 mask) {
    return _mm512_cvtps_pd(_mm512_castps512_ps256(_mm512_maskz_loadu_ps(mask, p)));
}
inline void store8(double* p, __m512d v, __mmask8 mask) { _mm512_mask_storeu_pd(p, mask, v); }
inline void store8(float* p, __m512d v, __mmask8 mask) {
    _mm512_mask_storeu_ps(p, mask, _mm512_castps256_ps512(_mm512_cvtpd_ps(v)));
}
inline __mmask8 rows_mask(index left) {
    return left >= 8 ? __mmask8(0xFF) : left <= 0 ? __mmask8(0) : __mmask8((1u << left) - 1u);
}

// Transposes the 8 x 8 block held as rows v[0..7] (v[i] lane j = entry (i, j)).
inline void transpose8(__m512d v[8]) {
    __m512d t[8], s[4];
    for (int p = 0; p < 4; ++p) {
        t[2 * p] = _mm512_unpacklo_pd(v[2 * p], v[2 * p + 1]);
        t[2 * p + 1] = _mm512_unpackhi_pd(v[2 * p], v[2 * p + 1]);
    }
    // t[0] = a0 b0 a2 b2 a4 b4 a6 b6, t[1] = a1 b1 a3 b3 ..., t[2] = c0 d0 ..., ...
    for (int odd = 0; odd < 2; ++odd) {
        s[0] = _mm512_shuffle_f64x2(t[odd], t[2 + odd], 0x88);      // 128-bit lanes 0, 2
        s[1] = _mm512_shuffle_f64x2(t[4 + odd], t[6 + odd], 0x88);
        s[2] = _mm512_shuffle_f64x2(t[odd], t[2 + odd], 0xDD);      // lanes 1, 3
        s[3] = _mm512_shuffle_f64x2(t[4 + odd], t[6 + odd], 0xDD);
        v[odd] = _mm512_shuffle_f64x2(s[0], s[1], 0x88);
        v[4 + odd] = _mm512_shuffle_f64x2(s[0], s[1], 0xDD);
        v[2 + odd] = _mm512_shuffle_f64x2(s[2], s[3], 0x88);
        v[6 + odd] = _mm512_shuffle_f64x2(s[2], s[3], 0xDD);
    }
}

// Rows [r0, r0 + count) of Y (count <= chunk) into `rows` (row-major, count x lp,
// float64), columns past l as zeros, 8 x 8 blocks at a time.
template <class T>
void transpose_chunk(const Matrix<T>& y, index r0, index count, index lp, double* rows) {
    const index l = y.cols;
    for (index c0 = 0; c0 < lp; c0 += 8) {
        for (index i0 = 0; i0 < count; i0 += 8) {
            const __mmask8 mask = rows_mask(count - i0);
            __m512d v[8];
            for (int c = 0; c < 8; ++c) {
                v[c] = c0 + c < l ? load8(y.column(c0 + c) + r0 + i0, mask) : _mm512_setzero_pd();
            }
            transpose8(v);
            for (int i = 0; i < 8; ++i) _mm512_storeu_pd(rows + (i0 + i) * lp + c0, v[i]);
        }
    }
}

// Rows i0..i0+5 of G (row-major, leading dimension lp), vectors v0..v0+NV-1 of each,
// += the chunk's rows' outer products.
template <int NV>
void gram_stripe(const double* rows, index count, index lp, index i0, index v0, double* g) {
    __m512d acc[6][NV];
    for (int a = 0; a < 6; ++a)
        for (int b = 0; b < NV; ++b) acc[a][b] = _mm512_loadu_pd(g + (i0 + a) * lp + 8 * (v0 + b));
    for (index r = 0; r < count; ++r) {
        const double* row = rows + r * lp;
        __m512d x[NV];
        for (int b = 0; b < NV; ++b) x[b] = _mm512_loadu_pd(row + 8 * (v0 + b));
        for (int a = 0; a < 6; ++a) {
            const __m512d e = _mm512_set1_pd(row[i0 + a]);
            for (int b = 0; b < NV; ++b) acc[a][b] = _mm512_fmadd_pd(e, x[b], acc[a][b]);
        }
    }
    for (int a = 0; a < 6; ++a)
        for (int b = 0; b < NV; ++b) _mm512_storeu_pd(g + (i0 + a) * lp + 8 * (v0 + b), acc[a][b]);
}

// Rows [first, last) of Y's Gram matrix Y^T Y added into `full` (row-major, rows up
// to a stripe past l, leading dimension lp = l rounded up to 8): the rows go through
// a row-major float64 chunk (in L1), whose outer products accumulate into `full`
// six rows at a time, only the vectors of 8 columns that reach the diagonal or
// beyond.
template <class T>
void gram_rows_avx512(const Matrix<T>& y, index first, index last, index lp, double* full) {
    const index l = y.cols;
    const index chunk = std::clamp<index>((index(16) << 10) / (lp * 8) / 8 * 8, 8, 64);
    // Rows of the chunk, with 8 more values so that a stripe's broadcasts past l
    // (of rows whose sums are not kept) stay inside.
    AlignedVector<double> rows(static_cast<std::size_t>(chunk * lp + 8), 0.0);
    for (index r0 = first; r0 < last; r0 += chunk) {
        const index count = std::min(chunk, last - r0);
        transpose_chunk(y, r0, count, lp, rows.data());
        for (index i0 = 0; i0 < l; i0 += 6) {
            for (index v0 = i0 / 8; v0 < lp / 8; v0 += 4) {
                switch (std::min<index>(4, lp / 8 - v0)) {
                    case 1: gram_stripe<1>(rows.data(), count, lp, i0, v0, full); break;
                    case 2: gram_stripe<2>(rows.data(), count, lp, i0, v0, full); break;
                    case 3: gram_stripe<3>(rows.data(), count, lp, i0, v0, full); break;
                    default: gram_stripe<4>(rows.data(), count, lp, i0, v0, full); break;
                }
            }
        }
    }
}

// G = Y^T Y (upper triangle), rows split over `parts` threads whose sums add up in
// order.
template <class T>
void gram_upper_avx512(const Matrix<T>& y, Matrix<double>& g, int parts) {
    const index l = y.cols;
    const index lp = (l + 7) / 8 * 8;
    const std::size_t size = static_cast<std::size_t>(6 * ((l + 5) / 6) * lp);
    std::vector<AlignedVector<double>> full(static_cast<std::size_t>(parts));
    run_parts(parts, [&](int part, int count) {
        const auto [first, last] = part_range(y.rows, 8, part, count);
        AlignedVector<double>& mine = full[static_cast<std::size_t>(part)];
        mine.assign(size, 0.0);
        gram_rows_avx512(y, first, last, lp, mine.data());
    });
    for (std::size_t p = 1; p < full.size(); ++p)
        for (std::size_t i = 0; i < size; ++i) full[0][i] += full[p][i];
    for (index j = 0; j < l; ++j)
        for (index i = 0; i <= j; ++i) g(i, j) = full[0][static_cast<std::size_t>(i * lp + j)];
}

// Y <- Y R in place (R upper triangular when `upper`, else any square W), 32 rows at
// a time: the rows are first copied out (as float64, column after column: one page
// of each column touched once, not once for every group of results), then the
// result is formed from that copy 4 columns at a time, 32 x 4 sums in registers, and
// written back over Y's rows.
// Rows [first, end) here (first a multiple of 32, end = first + a multiple of 32
// or Y's last row + 1), with `factor` = R (l x 4 groups, column-major, zeros past l and,
// when `upper`, below the diagonal); rows are independent, so any split over
// threads gives the same bits.
template <class T>
void times_rows_avx512(Matrix<T>& y, const double* factor, bool upper, index first,
                       index end) {
    const index m = end, l = y.cols;
    AlignedVector<double> rows(static_cast<std::size_t>(32 * l));  // [i][0..31]
    for (index r0 = first; r0 < m; r0 += 32) {
        __mmask8 mask[4];
        for (int v = 0; v < 4; ++v) mask[v] = rows_mask(m - r0 - 8 * v);
        for (index i = 0; i < l; ++i)
            for (int v = 0; v < 4; ++v)
                _mm512_store_pd(rows.data() + 32 * i + 8 * v,
                                load8(y.column(i) + r0 + 8 * v, mask[v]));
        for (index j0 = 0; j0 < l; j0 += 4) {
            __m512d acc[4][4];
            for (int v = 0; v < 4; ++v)
                for (int c = 0; c < 4; ++c) acc[v][c] = _mm512_setzero_pd();
            const index last = upper ? std::min(l, j0 + 4) : l;
            for (index i = 0; i < last; ++i) {
                __m512d x[4];
                for (int v = 0; v < 4; ++v) x[v] = _mm512_load_pd(rows.data() + 32 * i + 8 * v);
                for (int c = 0; c < 4; ++c) {
                    const __m512d e =
                        _mm512_set1_pd(factor[static_cast<std::size_t>(i + (j0 + c) * l)]);
                    for (int v = 0; v < 4; ++v) acc[v][c] = _mm512_fmadd_pd(x[v], e, acc[v][c]);
                }
            }
            // (Compile-time indices into acc keep it in registers.)
            for (int c = 0; c < 4; ++c) {
                if (j0 + c >= l) break;
                for (int v = 0; v < 4; ++v) store8(y.column(j0 + c) + r0 + 8 * v, acc[v][c], mask[v]);
            }
        }
    }
}

template <class T>
void times_avx512(Matrix<T>& y, const Matrix<double>& r, bool upper, int parts) {
    const index l = y.cols;
    // R (its upper triangle, zeros below, when `upper`), zeros past l (4 columns more).
    const index groups = (l + 3) / 4;
    AlignedVector<double> factor(static_cast<std::size_t>(l * 4 * groups), 0.0);
    for (index j = 0; j < l; ++j)
        for (index i = 0; i <= (upper ? j : l - 1); ++i)
            factor[static_cast<std::size_t>(i + j * l)] = r(i, j);
    run_parts(parts, [&](int part, int count) {
        const auto [first, last] = part_range(y.rows, 32, part, count);
        times_rows_avx512(y, factor.data(), upper, first, last);
    });
}

LOWRANK_TARGET_END

#endif  // LOWRANK_PANEL_KERNELS

bool cpu_has_kernels() {
#ifdef LOWRANK_PANEL_KERNELS
    static const bool yes = isa::allows(isa::Level::avx512) &&
                            __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("fma");
    return yes;
#else
    return false;
#endif
}

std::atomic<bool>& wanted() {
    static std::atomic<bool> value{true};
    return value;
}

// Whether the kernels run for a panel of T with l columns: on AVX-512, up to 64
// columns, and up to 128 for float32 panels (which the BLAS path must copy to
// float64 and back): up to there they beat that path (syrk, trmm), past it BLAS
// wins (docs/benchmarks-history.md, "Randomized SVD: the products", "Panel
// kernels").
template <class T>
bool use_kernels(index l) {
    return cpu_has_kernels() && wanted().load(std::memory_order_relaxed) &&
           l <= (std::is_same_v<T, float> ? 128 : 64);
}

thread_local int t_threads = 1;  // PanelThreads

// How many threads the kernels split a panel of rows x l over: at most
// PanelThreads', with at least 2^19 multiply-adds (rows l^2) each: below that a
// second thread gains nothing, so small panels stay on one
// (docs/benchmarks-history.md, "Randomized SVD: the products", "Panel kernels").
int parts_for(index rows, index l) {
    const double work = double(rows) * double(l) * double(l);
    return static_cast<int>(std::clamp(work / 524288.0, 1.0, double(t_threads)));
}

}  // namespace

PanelThreads::PanelThreads(int threads) : saved_(t_threads) { t_threads = std::max(1, threads); }

PanelThreads::~PanelThreads() { t_threads = saved_; }

bool panel_kernels_available() { return cpu_has_kernels(); }

bool panel_kernels_enabled() { return wanted().load(std::memory_order_relaxed); }

void panel_kernels_enable(bool on) { wanted().store(on, std::memory_order_relaxed); }

template <class T>
void gram_upper(const Matrix<T>& y, Matrix<double>& g) {
    const index l = y.cols;
    if (g.rows != l || g.cols != l) g = Matrix<double>(l, l);
    if (l == 0) return;
#ifdef LOWRANK_PANEL_KERNELS
    if (use_kernels<T>(l)) {
        gram_upper_avx512(y, g, parts_for(y.rows, l));
        return;
    }
#endif
    const int parts = parts_for(y.rows, l);
    std::vector<Matrix<double>> shares(static_cast<std::size_t>(parts - 1));
    run_parts(parts, [&](int part, int count) {
        const auto [first, last] = part_range(y.rows, 8, part, count);
        Matrix<double>& target = part == 0 ? g : shares[static_cast<std::size_t>(part - 1)];
        if (part > 0) target = Matrix<double>(l, l);
        gram_rows_blas(y, first, last, target);
    });
    for (const Matrix<double>& share : shares)
        for (index j = 0; j < l; ++j)
            for (index i = 0; i <= j; ++i) g(i, j) += share(i, j);
}

namespace {
template <class T>
void times(Matrix<T>& y, const Matrix<double>& r, bool upper) {
    if (y.rows == 0 || y.cols == 0) return;
#ifdef LOWRANK_PANEL_KERNELS
    if (use_kernels<T>(y.cols)) {
        times_avx512(y, r, upper, parts_for(y.rows, y.cols));
        return;
    }
#endif
    run_parts(parts_for(y.rows, y.cols), [&](int part, int count) {
        const auto [first, last] = part_range(y.rows, 32, part, count);
        times_rows_blas(y, r, upper, first, last);
    });
}
}  // namespace

template <class T>
void times_upper(Matrix<T>& y, const Matrix<double>& r) {
    times(y, r, true);
}

template <class T>
void times_square(Matrix<T>& y, const Matrix<double>& w) {
    times(y, w, false);
}

template void gram_upper<float>(const Matrix<float>&, Matrix<double>&);
template void gram_upper<double>(const Matrix<double>&, Matrix<double>&);
template void times_upper<float>(Matrix<float>&, const Matrix<double>&);
template void times_upper<double>(Matrix<double>&, const Matrix<double>&);
template void times_square<float>(Matrix<float>&, const Matrix<double>&);
template void times_square<double>(Matrix<double>&, const Matrix<double>&);

}  // namespace lowrank
