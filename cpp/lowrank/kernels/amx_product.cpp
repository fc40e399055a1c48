#include "lowrank/kernels/amx_product.hpp"

#include <algorithm>
#include <atomic>
#include <new>
#include <type_traits>
#include <utility>
#include <cstdint>
#include <cstring>
#include <vector>

#include "lowrank/runtime/chunk_sums.hpp"
#include "lowrank/runtime/isa.hpp"
#include "lowrank/runtime/parallel.hpp"

// Built for x86-64 with GCC >= 11 or Clang >= 12 (the AMX intrinsics), in a target
// region of its own like the other kernels; elsewhere the product declines.
#if defined(__x86_64__) && defined(__linux__) &&                                  \
    ((defined(__clang__) && __clang_major__ >= 12) ||                             \
     (!defined(__clang__) && defined(__GNUC__) && __GNUC__ >= 11))
#define LOWRANK_AMX 1
#include <cpuid.h>
#include <immintrin.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "lowrank/kernels/target_region.hpp"
#endif

namespace lowrank {

#ifdef LOWRANK_AMX
namespace {

// Tiles are 16 rows of 64 bytes: 16 x 32 bfloat16 (multiplicands) or 16 x 16
// float32 (sums). A block of M is 32 rows: two row tiles in M X, one K step of 32
// in M^T Y.
constexpr index kBlock = 32;
constexpr index kTile = 512;  // bfloat16 values in a tile (16 x 32)

// The palette-1 configuration: tiles 0-7, all 16 x 64 bytes.
struct alignas(64) TileConfig {
    std::uint8_t palette = 1;
    std::uint8_t start_row = 0;
    std::uint8_t reserved[14] = {};
    std::uint16_t bytes_per_row[16] = {64, 64, 64, 64, 64, 64, 64, 64};
    std::uint8_t rows[16] = {16, 16, 16, 16, 16, 16, 16, 16};
};
// In static storage: GCC 12 does not count LDTILECFG as reading its operand, and
// dropped the stores that filled in a configuration built on the stack (every tile
// instruction then faulted).
const TileConfig kTileConfig{};

bool cpu_and_os_allow() {
    unsigned a = 0, b = 0, c = 0, d = 0;
    if (!isa::allows(isa::Level::amx)) return false;
    if (!__builtin_cpu_supports("avx512f") || !__builtin_cpu_supports("avx512bw")) return false;
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return false;
    const bool amx_tile = (d >> 24) & 1u, amx_bf16 = (d >> 22) & 1u;
    if (!amx_tile || !amx_bf16) return false;
    if (!__get_cpuid_count(7, 1, &a, &b, &c, &d)) return false;
    const bool avx512_bf16 = (a >> 5) & 1u;
    if (!avx512_bf16) return false;
    // Linux hands out the 8 KiB tile state only on request (ARCH_REQ_XCOMP_PERM for
    // XFEATURE_XTILEDATA), process-wide; it refuses when the kernel, the hypervisor
    // or a too-small signal stack does not allow it.
    constexpr long kRequestPermission = 0x1023, kTileData = 18;
    return syscall(SYS_arch_prctl, kRequestPermission, kTileData) == 0;
}

LOWRANK_TARGET_BEGIN("avx512f,avx512bw,avx512vl,avx512bf16,amx-tile,amx-bf16")

// float32 -> bfloat16, rounded to nearest even, and back (exact).
inline __m256i to_bf16(__m512 v) { return (__m256i)_mm512_cvtneps_pbh(v); }
inline __m512 from_bf16(__m256i h) {
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
}

// Tiles held while alive: configured on construction, released on destruction (also
// when a stop request unwinds the thread).
class TileScope {
  public:
    TileScope() { _tile_loadconfig(&kTileConfig); }
    ~TileScope() { _tile_release(); }
    TileScope(const TileScope&) = delete;
    TileScope& operator=(const TileScope&) = delete;
};

// Shapes: cols padded to np (a multiple of 32), l to lp (a multiple of 16).
struct Shape {
    index cols, np, ks, jt;  // ks = np / 32 K steps of M X; jt = np / 16 column tiles
    index l, lp, nt;         // nt = lp / 16 column tiles of Y and Z^T
};

// A 64-byte aligned vector that leaves its values uninitialised unless given one:
// the scratch below is written before it is read (0.1-0.8 MB a thread a call).
template <class T>
struct Uninitialized : CacheAligned<T> {
    using value_type = T;
    template <class U>
    struct rebind {
        using other = Uninitialized<U>;
    };
    Uninitialized() = default;
    template <class U>
    Uninitialized(const Uninitialized<U>&) {}  // NOLINT: rebinding must be implicit
    template <class U>
    void construct(U* p) noexcept {
        ::new (static_cast<void*>(p)) U;
    }
    template <class U, class... Args>
    void construct(U* p, Args&&... args) {
        ::new (static_cast<void*>(p)) U(std::forward<Args>(args)...);
    }
};
template <class T>
using ScratchVector = std::vector<T, Uninitialized<T>>;

// X (cols x l, column-major) rounded to bfloat16 as M X's right-hand tiles:
// tile (s, t) holds X's rows 32s..32s+31 and columns 16t..16t+15, pairs of rows
// interleaved: [p][2c + e] = X(32s + 2p + e, 16t + c). A column's 32 rows rounded
// are 16 pairs (p = 0..15) of 32 bits each, so a tile is a 16 x 16 transpose of
// pairs; missing rows and columns are zeros.
ScratchVector<std::uint16_t> x_tiles(const Matrix<float>& x, const Shape& sh) {
    ScratchVector<std::uint16_t> out(static_cast<std::size_t>(sh.ks * sh.nt * kTile));
    alignas(64) std::uint32_t pairs[16][16];  // [c][p]
    for (index s = 0; s < sh.ks; ++s) {
        const index j0 = 32 * s, rows = std::min<index>(32, sh.cols - j0);
        const __mmask16 low = __mmask16(rows >= 16 ? 0xFFFFu : (1u << unsigned(rows)) - 1u);
        const __mmask16 high =
            __mmask16(rows >= 32 ? 0xFFFFu : rows <= 16 ? 0u : (1u << unsigned(rows - 16)) - 1u);
        for (index t = 0; t < sh.nt; ++t) {
            for (index c = 0; c < 16; ++c) {
                const index column = 16 * t + c;
                __m512i rounded = _mm512_setzero_si512();
                if (column < sh.l) {
                    const float* from = x.column(column) + j0;
                    rounded = (__m512i)_mm512_cvtne2ps_pbh(_mm512_maskz_loadu_ps(high, from + 16),
                                                           _mm512_maskz_loadu_ps(low, from));
                }
                _mm512_store_si512(pairs[c], rounded);
            }
            auto* tile = reinterpret_cast<std::uint32_t*>(out.data() + (s * sh.nt + t) * kTile);
            for (index p = 0; p < 16; ++p)
                for (index c = 0; c < 16; ++c) tile[p * 16 + c] = pairs[c][p];
        }
    }
    return out;
}

// Unpacking two rows of 32 bfloat16 values (low, then high halves of each 128-bit
// lane) gives pairs of columns in this order: half 0 holds columns 0-3, 8-11, 16-19,
// 24-27 of the 32, half 1 columns 4-7, 12-15, 20-23, 28-31.
constexpr index pair_column(index half, index d) { return 8 * (d / 4) + 4 * half + d % 4; }

// Panels of at least this many column tiles (l > 96) sum M^T Y over two blocks of
// 32 rows at a time (block_transposed_product_wide): Z^T's tiles, which no longer
// fit in L2 on wide panels, then pass through the tile registers half as often. It
// pays on wide panels only; on narrower ones the extra scratch to write costs more
// (docs/benchmarks-history.md, "Randomized SVD: the products", "Wide panels").
constexpr index kWideTiles = 7;

// One thread's buffers for a block of 32 rows of M (all 64-byte aligned); the lo
// pieces' only for M in two pieces. The pieces M^T Y reads (pairs, Y^T) for
// `halves` blocks: two when the panel is wide (kWideTiles), else one.
struct Scratch {
    Scratch(const Shape& sh, AmxPieces pieces)
        : halves(sh.nt >= kWideTiles ? 2 : 1),
          pairs_hi(static_cast<std::size_t>(halves * sh.jt * kTile)),
          pairs_lo(pieces == AmxPieces::two ? pairs_hi.size() : 0),
          y(static_cast<std::size_t>(kBlock * sh.lp)),
          yt_hi(static_cast<std::size_t>(halves * sh.nt * kTile)),
          yt_lo(yt_hi.size()) {}
    index halves;
    index half = 0;  // which of them the block being split goes to
    // M's block in bfloat16 pieces as M^T Y's right-hand tiles: tiles 2s and 2s + 1
    // hold columns 32s..32s+31, pairs of rows interleaved, in the order unpacking
    // gives (one instruction a row where a permutation took more): [p][2d + e] =
    // M(2p + e, 32s + pair_column(j % 2, d)) for tile j = 2s or 2s + 1.
    // (M X's left-hand tiles, the same pieces row by row, live only in split_product's
    // small buffers.)
    // Z^T's tiles below come out in that column order; gather_z puts it back.
    ScratchVector<std::uint16_t> pairs_hi, pairs_lo;
    ScratchVector<float> y;  // the block's rows of Y = M X (32 x lp)
    // Y^T's pieces as M^T Y's left-hand tiles: tile t holds [cc][i] = Y(i, 16t + cc).
    ScratchVector<std::uint16_t> yt_hi, yt_lo;
    // The Z^T of the chunk of rows being summed (its own: jt * nt * 256 floats), in
    // tiles: tile (j, t) holds [cc][d] = Z(32(j / 2) + pair_column(j % 2, d), 16t + cc).
    // Written first by the chunk's first block (block_transposed_product, fresh).
    float* zt = nullptr;
    // The largest |entry| of the blocks split so far, as the bits of M's type
    // (float32 or float64): as unsigned integers they order as the magnitudes do,
    // and any NaN above +Inf.
    std::uint64_t most = 0;
};

// 32 float32 values (a: the first 16, b: the next 16) as bfloat16 pieces hi and lo
// (kLo), or rounded to bfloat16 (hi; lo left zero).
struct Pieces {
    __m512i hi, lo;
};
template <bool kLo>
inline Pieces split32(__m512 a, __m512 b) {
    if (!kLo) return {(__m512i)_mm512_cvtne2ps_pbh(b, a), _mm512_setzero_si512()};
    const __m256i ha = to_bf16(a), hb = to_bf16(b);
    const __m512 ra = _mm512_sub_ps(a, from_bf16(ha)), rb = _mm512_sub_ps(b, from_bf16(hb));
    return {_mm512_inserti64x4(_mm512_zextsi256_si512(ha), hb, 1),
            (__m512i)_mm512_cvtne2ps_pbh(rb, ra)};
}

// K steps of M X ahead of the one being split that split_product asks the memory
// for (512 bytes a row on in float32).
constexpr index kPrefetchSteps = 4;

// Rows [0, valid) of float64 M's block at `m` (leading dimension ld) rounded to
// float32 as static_cast does, into `copy` (leading dimension cols), row by row, kept
// in cache for the splitting that reads them next; the largest |entry| of the
// float64 values goes to w.most (its bits).
void round_rows(const double* m, index ld, index valid, index cols, float* copy, Scratch& w) {
    for (index i = 0; i < valid; ++i) {
        w.most = std::max(w.most, detail::float_copy_max(m + i * ld, cols, copy + i * cols, true));
    }
}

// The block's Y = M_hi X + M_lo X (kLo; else M_hi X) into w.y (32 x lp), splitting
// rows [0, valid) of the block at `m` (leading dimension ld; valid <= 32) on the way;
// rows past `valid` and columns past `cols` become zeros. kLo: both pieces (else
// only hi, M rounded to bfloat16). kLargest: also keeps the largest |entry| seen in
// w.most.
//
// K step by K step (32 columns of M): the step's pieces go row by row into a small
// buffer (M X's left-hand tiles, 4 KiB, in L1) and as pairs of rows into the scratch
// (M^T Y's, Scratch::pairs_hi/lo, of block w.half); the step's tiles then stay in
// tiles 4-7 while each column tile of Y passes through tiles 0-1 (w.y, 14 KiB at
// l = 110, stays in L1) and takes the step's terms (for one or two column tiles, Y
// stays in tiles 0-3 and the pieces pass through 4-5). The vector work that splits
// step s + 1 sits between those tile products of step s (two buffers), so that the
// core does it while the AMX unit multiplies. Each tile of Y takes the same terms in
// the same order as when the whole block was split first and multiplied after (the
// same bits), in less time (docs/benchmarks-history.md, "Randomized SVD: the
// products", "Splitting A between the tile products").
template <bool kLo, bool kLargest>
[[gnu::noinline]] void split_product(const float* m, index ld, index valid,
                                     const std::uint16_t* xt, const Shape& sh, Scratch& w) {
    // Per K step: tiles of hi rows 0-15 and 16-31, then lo's; two steps' worth.
    alignas(64) std::uint16_t steps[2][4][kTile];
    std::uint16_t* const pairs_hi = w.pairs_hi.data() + w.half * sh.jt * kTile;
    std::uint16_t* const pairs_lo = kLo ? w.pairs_lo.data() + w.half * sh.jt * kTile : nullptr;
    const index cols = sh.cols, ks = sh.ks, nt = sh.nt;
    const __m512i magnitude = _mm512_set1_epi32(0x7FFFFFFF);
    __m512i most = _mm512_setzero_si512();
    const auto load16 = [cols, magnitude, &most](const float* row, index c) {
        const index left = cols - c;
        if (!row || left <= 0) return _mm512_setzero_ps();
        const __mmask16 mask =
            left >= 16 ? __mmask16(0xFFFF) : __mmask16((1u << unsigned(left)) - 1u);
        const __m512 v = _mm512_maskz_loadu_ps(mask, row + c);
        if (kLargest) {
            most = _mm512_max_epu32(most, _mm512_and_si512(_mm512_castps_si512(v), magnitude));
        }
        return v;
    };
    // Row pairs [p0, p1) of K step s into the step buffer `into`.
    const auto split_pairs = [&](index s, index p0, index p1, std::uint16_t (*into)[kTile]) {
        const index c = 32 * s;
        const bool ahead = s + kPrefetchSteps < ks;
        for (index p = p0; p < p1; ++p) {
            const index i0 = 2 * p, i1 = 2 * p + 1;
            const float* r0 = i0 < valid ? m + i0 * ld : nullptr;
            const float* r1 = i1 < valid ? m + i1 * ld : nullptr;
            if (ahead) {
                for (const float* row : {r0, r1}) {
                    if (!row) continue;
                    const char* at = reinterpret_cast<const char*>(row + c + 32 * kPrefetchSteps);
                    _mm_prefetch(at, _MM_HINT_T0);
                    _mm_prefetch(at + 64, _MM_HINT_T0);
                }
            }
            const Pieces a = split32<kLo>(load16(r0, c), load16(r0, c + 16));
            const Pieces b = split32<kLo>(load16(r1, c), load16(r1, c + 16));
            // Row i: tile i / 16 (+ 2 for lo), row i % 16.
            std::uint16_t* const h0 = into[i0 / 16] + (i0 % 16) * 32;
            std::uint16_t* const h1 = into[i1 / 16] + (i1 % 16) * 32;
            _mm512_store_si512(h0, a.hi);
            _mm512_store_si512(h1, b.hi);
            // Pair tiles 2s and 2s + 1, row p: the two rows' values interleaved within
            // each 128-bit lane (pair_column).
            const index pair = 2 * s * kTile + p * 32;
            _mm512_store_si512(pairs_hi + pair, _mm512_unpacklo_epi16(a.hi, b.hi));
            _mm512_store_si512(pairs_hi + pair + kTile, _mm512_unpackhi_epi16(a.hi, b.hi));
            if (kLo) {
                _mm512_store_si512(h0 + 2 * kTile, a.lo);
                _mm512_store_si512(h1 + 2 * kTile, b.lo);
                _mm512_store_si512(pairs_lo + pair, _mm512_unpacklo_epi16(a.lo, b.lo));
                _mm512_store_si512(pairs_lo + pair + kTile, _mm512_unpackhi_epi16(a.lo, b.lo));
            }
        }
    };
    constexpr index kPairs = kBlock / 2;
    const long stride_y = static_cast<long>(sh.lp * 4);
    split_pairs(0, 0, kPairs, steps[0]);
    if (nt <= 2) {
        // One or two column tiles: Y's tiles stay in tiles 0-3 for the whole block,
        // X's step in 6-7, and each piece's step passes through 4-5.
        const bool two = nt == 2;
        _tile_zero(0);
        _tile_zero(1);
        _tile_zero(2);
        _tile_zero(3);
        for (index s = 0; s < ks; ++s) {
            std::uint16_t (*const step)[kTile] = steps[s % 2];
            const std::uint16_t* xs = xt + s * nt * kTile;
            _tile_loadd(6, xs, 64);
            if (two) _tile_loadd(7, xs + kTile, 64);
            for (index piece = 0; piece < (kLo ? 2 : 1); ++piece) {
                _tile_loadd(4, step[2 * piece], 64);
                _tile_loadd(5, step[2 * piece + 1], 64);
                _tile_dpbf16ps(0, 4, 6);
                _tile_dpbf16ps(2, 5, 6);
                if (two) {
                    _tile_dpbf16ps(1, 4, 7);
                    _tile_dpbf16ps(3, 5, 7);
                }
                if (s + 1 < ks) {
                    const index half = kLo ? kPairs / 2 : kPairs;
                    split_pairs(s + 1, piece * half, (piece + 1) * half, steps[(s + 1) % 2]);
                }
            }
        }
        float* y = w.y.data();
        _tile_stored(0, y, stride_y);
        _tile_stored(2, y + 16 * sh.lp, stride_y);
        if (two) {
            _tile_stored(1, y + 16, stride_y);
            _tile_stored(3, y + 16 + 16 * sh.lp, stride_y);
        }
    } else {
    for (index s = 0; s < ks; ++s) {
        std::uint16_t (*const step)[kTile] = steps[s % 2];
        std::uint16_t (*const next)[kTile] = steps[(s + 1) % 2];
        _tile_loadd(4, step[0], 64);
        _tile_loadd(5, step[1], 64);
        if (kLo) {
            _tile_loadd(6, step[2], 64);
            _tile_loadd(7, step[3], 64);
        }
        const std::uint16_t* xs = xt + s * nt * kTile;
        for (index t = 0; t < nt; ++t) {
            float* y = w.y.data() + 16 * t;
            if (s == 0) {
                _tile_zero(0);
                _tile_zero(1);
            } else {
                _tile_loadd(0, y, stride_y);
                _tile_loadd(1, y + 16 * sh.lp, stride_y);
            }
            _tile_loadd(2, xs + t * kTile, 64);
            _tile_dpbf16ps(0, 4, 2);
            _tile_dpbf16ps(1, 5, 2);
            if (kLo) {
                _tile_dpbf16ps(0, 6, 2);
                _tile_dpbf16ps(1, 7, 2);
            }
            _tile_stored(0, y, stride_y);
            _tile_stored(1, y + 16 * sh.lp, stride_y);
            // A share of the next step's row pairs.
            if (s + 1 < ks) split_pairs(s + 1, t * kPairs / nt, (t + 1) * kPairs / nt, next);
        }
    }
    }
    if (kLargest) w.most = std::max(w.most, std::uint64_t(_mm512_reduce_max_epu32(most)));
}

// The 16 x 16 transpose of 32-bit lanes: v[c] lane r <- v[r] lane c.
inline void transpose16(__m512i (&v)[16]) {
    __m512i t[16];
    // Within each 128-bit lane g: t[2k], t[2k + 1] interleave rows 2k and 2k + 1.
    for (int i = 0; i < 16; i += 2) {
        t[i] = _mm512_unpacklo_epi32(v[i], v[i + 1]);
        t[i + 1] = _mm512_unpackhi_epi32(v[i], v[i + 1]);
    }
    // v[4q + k], 128-bit lane g: rows 4q..4q+3 of column 4g + k.
    for (int q = 0; q < 16; q += 4) {
        v[q] = _mm512_unpacklo_epi64(t[q], t[q + 2]);
        v[q + 1] = _mm512_unpackhi_epi64(t[q], t[q + 2]);
        v[q + 2] = _mm512_unpacklo_epi64(t[q + 1], t[q + 3]);
        v[q + 3] = _mm512_unpackhi_epi64(t[q + 1], t[q + 3]);
    }
    // Column 4g + k: 128-bit lane g of v[k], v[4 + k], v[8 + k], v[12 + k], in order.
    for (int k = 0; k < 4; ++k) {
        const __m512i x0 = _mm512_shuffle_i32x4(v[k], v[4 + k], 0x44);
        const __m512i x1 = _mm512_shuffle_i32x4(v[k], v[4 + k], 0xEE);
        const __m512i y0 = _mm512_shuffle_i32x4(v[8 + k], v[12 + k], 0x44);
        const __m512i y1 = _mm512_shuffle_i32x4(v[8 + k], v[12 + k], 0xEE);
        t[k] = _mm512_shuffle_i32x4(x0, y0, 0x88);
        t[4 + k] = _mm512_shuffle_i32x4(x0, y0, 0xDD);
        t[8 + k] = _mm512_shuffle_i32x4(x1, y1, 0x88);
        t[12 + k] = _mm512_shuffle_i32x4(x1, y1, 0xDD);
    }
    for (int i = 0; i < 16; ++i) v[i] = t[i];
}

// Y's pieces, transposed into M^T Y's left-hand tiles (of block w.half): tile t row
// cc holds column 16t + cc of the block's 32 rows of Y. Rows i and i + 16 go into one
// vector as the low and high halves of 32-bit lanes (lane cc), a 16 x 16 transpose of
// those lanes gives, per column, rows 0-15 in the low halves and 16-31 in the high
// ones, and one permutation of 16-bit values puts them in order (storing the values
// one by one was a visible part of a pass; the same bits).
[[gnu::noinline]] void split_y(const Shape& sh, Scratch& w) {
    alignas(64) std::int16_t order[32];
    for (int k = 0; k < 16; ++k) {
        order[k] = std::int16_t(2 * k);
        order[16 + k] = std::int16_t(2 * k + 1);
    }
    const __m512i words = _mm512_load_si512(order);
    for (index t = 0; t < sh.nt; ++t) {
        __m512i hi[16], lo[16];
        const float* y = w.y.data() + 16 * t;
        for (index i = 0; i < 16; ++i) {
            const __m512 a = _mm512_load_ps(y + i * sh.lp);
            const __m512 b = _mm512_load_ps(y + (i + 16) * sh.lp);
            const __m256i ha = to_bf16(a), hb = to_bf16(b);
            const __m256i la = to_bf16(_mm512_sub_ps(a, from_bf16(ha)));
            const __m256i lb = to_bf16(_mm512_sub_ps(b, from_bf16(hb)));
            // (from_bf16 is the value's bits in the high half of a 32-bit lane.)
            hi[i] = _mm512_or_si512(_mm512_cvtepu16_epi32(ha),
                                    _mm512_castps_si512(from_bf16(hb)));
            lo[i] = _mm512_or_si512(_mm512_cvtepu16_epi32(la),
                                    _mm512_castps_si512(from_bf16(lb)));
        }
        transpose16(hi);
        transpose16(lo);
        std::uint16_t* th = w.yt_hi.data() + (w.half * sh.nt + t) * kTile;
        std::uint16_t* tl = w.yt_lo.data() + (w.half * sh.nt + t) * kTile;
        for (index cc = 0; cc < 16; ++cc) {
            _mm512_store_si512(th + cc * 32, _mm512_permutexvar_epi16(words, hi[cc]));
            _mm512_store_si512(tl + cc * 32, _mm512_permutexvar_epi16(words, lo[cc]));
        }
    }
}

// Z^T += Y_hi^T M_hi + Y_lo^T M_hi + Y_hi^T M_lo (the last term only with kLo) for
// the block, into w.zt (=, when `fresh`: the chunk's first block).
template <bool kLo>
[[gnu::noinline]] void block_transposed_product(const Shape& sh, Scratch& w, bool fresh) {
    const std::uint16_t* yh = w.yt_hi.data();
    const std::uint16_t* yl = w.yt_lo.data();
    for (index t = 0; t < sh.nt; t += 2) {
        const bool two = t + 1 < sh.nt;
        _tile_loadd(2, yh + t * kTile, 64);
        _tile_loadd(4, yl + t * kTile, 64);
        if (two) {
            _tile_loadd(3, yh + (t + 1) * kTile, 64);
            _tile_loadd(5, yl + (t + 1) * kTile, 64);
        }
        for (index j = 0; j < sh.jt; ++j) {
            float* z = w.zt + (j * sh.nt + t) * 256;
            _tile_loadd(6, w.pairs_hi.data() + j * kTile, 64);
            if (kLo) _tile_loadd(7, w.pairs_lo.data() + j * kTile, 64);
            if (fresh) {
                _tile_zero(0);
            } else {
                _tile_loadd(0, z, 64);
            }
            _tile_dpbf16ps(0, 2, 6);
            _tile_dpbf16ps(0, 4, 6);
            if (kLo) _tile_dpbf16ps(0, 2, 7);
            _tile_stored(0, z, 64);
            if (two) {
                if (fresh) {
                    _tile_zero(1);
                } else {
                    _tile_loadd(1, z + 256, 64);
                }
                _tile_dpbf16ps(1, 3, 6);
                _tile_dpbf16ps(1, 5, 6);
                if (kLo) _tile_dpbf16ps(1, 3, 7);
                _tile_stored(1, z + 256, 64);
            }
        }
    }
}

// block_transposed_product for `halves` (1 or 2) blocks of 32 rows split into the
// scratch (w.half), for wide panels (kWideTiles): column tile by column tile of M,
// whose pieces for both blocks stay in tiles 4-7 while each of Z^T's tiles in that
// column is loaded, given both blocks' terms and stored, so Z^T passes through the
// tiles once per 64 rows. Each tile's sum takes the same terms in the same order as
// block_transposed_product block by block (the same bits).
template <bool kLo>
[[gnu::noinline]] void block_transposed_product_wide(const Shape& sh, Scratch& w, bool fresh,
                                                     index halves) {
    const std::uint16_t* yh = w.yt_hi.data();
    const std::uint16_t* yl = w.yt_lo.data();
    const std::uint16_t* ph = w.pairs_hi.data();
    const std::uint16_t* pl = w.pairs_lo.data();
    const index nt = sh.nt, jt = sh.jt;
    for (index j = 0; j < jt; ++j) {
        _tile_loadd(4, ph + j * kTile, 64);
        if (kLo) _tile_loadd(5, pl + j * kTile, 64);
        if (halves == 2) {
            _tile_loadd(6, ph + (jt + j) * kTile, 64);
            if (kLo) _tile_loadd(7, pl + (jt + j) * kTile, 64);
        }
        float* zj = w.zt + j * nt * 256;
        for (index t = 0; t < nt; ++t) {
            float* z = zj + t * 256;
            if (fresh) {
                _tile_zero(0);
            } else {
                _tile_loadd(0, z, 64);
            }
            _tile_loadd(1, yh + t * kTile, 64);
            _tile_loadd(2, yl + t * kTile, 64);
            _tile_dpbf16ps(0, 1, 4);
            _tile_dpbf16ps(0, 2, 4);
            if (kLo) _tile_dpbf16ps(0, 1, 5);
            if (halves == 2) {
                _tile_loadd(3, yh + (nt + t) * kTile, 64);
                _tile_loadd(2, yl + (nt + t) * kTile, 64);
                _tile_dpbf16ps(0, 3, 6);
                _tile_dpbf16ps(0, 2, 6);
                if (kLo) _tile_dpbf16ps(0, 3, 7);
            }
            _tile_stored(0, z, 64);
        }
    }
}

// Rows [first, last) of M into w.zt, block by block (M^T Y two blocks at a time for
// wide panels: Scratch::halves), M in kLo ? two pieces : one; M's largest |entry|
// into w.most when `largest` (always for float64 M, whose rows are rounded into
// `copy`, which it needs).
template <bool kLo, class Src>
void run_range(const ConstView<Src>& m, index first, index last, const std::uint16_t* xt,
               const Shape& sh, Scratch& w, StopPoll* stop, bool largest, float* copy) {
    const TileScope tiles;
    const index step = w.halves * kBlock;
    for (index r0 = first; r0 < last; r0 += step) {
        if (stop) stop->poll();
        const index halves = std::min(w.halves, (last - r0 + kBlock - 1) / kBlock);
        for (w.half = 0; w.half < halves; ++w.half) {
            const index r = r0 + w.half * kBlock;
            const Src* block = m.data + r * m.ld;
            const index valid = std::min(kBlock, last - r);
            if constexpr (std::is_same_v<Src, double>) {
                // Rounded into the copy first (rows written one after another), then
                // split from there, in L2: splitting from float64 M and writing the
                // copy 32 rows at a time, K step by K step, was slower.
                float* rounded = copy + r * m.cols;
                round_rows(block, m.ld, valid, m.cols, rounded, w);
                split_product<kLo, false>(rounded, m.cols, valid, xt, sh, w);
            } else if (largest) {
                split_product<kLo, true>(block, m.ld, valid, xt, sh, w);
            } else {
                split_product<kLo, false>(block, m.ld, valid, xt, sh, w);
            }
            split_y(sh, w);
        }
        if (w.halves == 1) {
            block_transposed_product<kLo>(sh, w, r0 == first);
        } else {
            block_transposed_product_wide<kLo>(sh, w, r0 == first, halves);
        }
    }
}

// gather_z runs on its threads when the chunks' tiles take at least this many bytes.
constexpr double kGatherSplitBytes = double(4 << 20);

// Z (cols x l, column-major) = the chunks' Z^T tiles summed in the chunks' order.
// Column 16t + cc's rows 32s..32s+31 are row cc of tiles (2s, t) and (2s + 1, t), in
// pair_column's order: 128-bit lanes taken alternately from the two put them back.
void gather_z(const ChunkSums<float>& partials, int chunks, const Shape& sh, Matrix<float>& z,
              int threads) {
    // Row 32s + r sits at d of half h where r = pair_column(h, d): index 16 h + d of
    // the two halves (low, high) taken together.
    alignas(64) std::int32_t order[32];
    for (index half = 0; half < 2; ++half)
        for (index d = 0; d < 16; ++d) order[pair_column(half, d)] = std::int32_t(16 * half + d);
    const __m512i first = _mm512_load_si512(order);
    const __m512i second = _mm512_load_si512(order + 16);
    const auto summed = [&](std::size_t at) {
        __m512 sum = _mm512_load_ps(partials.at(0) + at);
        for (int c = 1; c < chunks; ++c)
            sum = _mm512_add_ps(sum, _mm512_load_ps(partials.at(c) + at));
        return sum;
    };
    const auto store = [](float* to, index left, __m512 v) {
        if (left >= 16) {
            _mm512_storeu_ps(to, v);
        } else if (left > 0) {
            _mm512_mask_storeu_ps(to, __mmask16((1u << unsigned(left)) - 1u), v);
        }
    };
    // Tile by tile (each chunk's tiles (2s, t) and (2s + 1, t) read once, row by row),
    // rows 32s.. of Z in [s0, s1) on each thread.
    const index steps = (sh.cols + 31) / 32;
    const int parts = threads > 1 && double(chunks) * double(sh.jt * sh.nt) * 1024.0 >= kGatherSplitBytes
                          ? threads
                          : 1;
    run_parts(parts, [&](int part, int count) {
        const auto [s0, s1] = part_range(steps, 1, part, count);
        for (index t = 0; t < sh.nt; ++t) {
            for (index s = s0; s < s1; ++s) {
                const index left = sh.cols - 32 * s;
                for (index cc = 0; cc < 16 && 16 * t + cc < sh.l; ++cc) {
                    float* column = z.column(16 * t + cc);
                    const std::size_t at =
                        static_cast<std::size_t>((2 * s * sh.nt + t) * 256 + cc * 16);
                    const __m512 low = summed(at);
                    const __m512 high = summed(at + static_cast<std::size_t>(sh.nt) * 256);
                    store(column + 32 * s, left, _mm512_permutex2var_ps(low, first, high));
                    store(column + 32 * s + 16, left - 16, _mm512_permutex2var_ps(low, second, high));
                }
            }
        }
    });
}

LOWRANK_TARGET_END

std::atomic<bool>& wanted() {
    static std::atomic<bool> value{true};
    return value;
}

std::atomic<bool>& granted() {
    static std::atomic<bool> value{cpu_and_os_allow()};
    return value;
}

}  // namespace

bool amx_available() { return granted().load(std::memory_order_relaxed); }

bool amx_enabled() { return amx_available() && wanted().load(std::memory_order_relaxed); }

void amx_enable(bool on) { wanted().store(on, std::memory_order_relaxed); }

namespace {

// amx_normal_product and amx_normal_product_rounding; the largest |entry|'s bits
// (of Src) in *most when asked for.
template <class Src>
bool normal_product(const ConstView<Src>& m, const Matrix<float>& x, Matrix<float>& z,
                    int threads, StopPoll* stop, std::uint64_t* most, float* copy,
                    AmxPieces pieces) {
    if (!amx_enabled() || !m.row_major || x.rows != m.cols) return false;
    Shape sh{};
    sh.cols = m.cols;
    sh.np = std::max<index>(1, (m.cols + 31) / 32) * 32;
    sh.ks = sh.np / 32;
    sh.jt = sh.np / 16;
    sh.l = x.cols;
    sh.lp = std::max<index>(1, (x.cols + 15) / 16) * 16;
    sh.nt = sh.lp / 16;
    const auto xt = x_tiles(x, sh);

    // Threads take chunks of M's rows (run_chunks), each summed into a Z^T of its
    // own; gather_z adds those up in the chunks' order, so the bits depend on the
    // thread count (through the chunk count) but not on which thread took which
    // chunk. With fixed halves the product waited for a thread its core slowed
    // down; with chunks that thread takes fewer (docs/benchmarks-history.md,
    // "Randomized SVD: per-call costs, threads and memory", "Chunks for a slow
    // core").
    const int parts =
        static_cast<int>(std::clamp<index>(m.rows / (4 * kBlock), 1, std::max(1, threads)));
    const index tiles = sh.jt * sh.nt * 256;  // a chunk's Z^T
    const int chunks =
        chunk_count((m.rows + kBlock - 1) / kBlock, 16, parts,
                    2.0 * double(m.rows) * double(m.cols) * double(x.cols), 4.0 * double(tiles));
    std::vector<Scratch> scratch;
    scratch.reserve(static_cast<std::size_t>(parts));
    for (int p = 0; p < parts; ++p) scratch.emplace_back(sh, pieces);
    ChunkSums<float> partials(chunks, tiles, chunks > parts);
    run_chunks(chunks, parts, [&](int chunk, int part) {
        const auto [first, last] = part_range(m.rows, kBlock, chunk, chunks);
        Scratch& w = scratch[static_cast<std::size_t>(part)];
        w.zt = partials.get(chunk, false);
        if (first < last) {
            if (pieces == AmxPieces::two) {
                run_range<true>(m, first, last, xt.data(), sh, w, stop, most != nullptr, copy);
            } else {
                run_range<false>(m, first, last, xt.data(), sh, w, stop, most != nullptr, copy);
            }
        } else {
            std::fill(w.zt, w.zt + tiles, 0.0f);
        }
    });

    if (most) {
        *most = 0;
        for (const Scratch& w : scratch) *most = std::max(*most, w.most);
    }
    if (z.rows != m.cols || z.cols != x.cols) z = Matrix<float>(m.cols, x.cols);
    gather_z(partials, chunks, sh, z, parts);
    return true;
}

}  // namespace

bool amx_normal_product(const ConstView<float>& m, const Matrix<float>& x, Matrix<float>& z,
                        int threads, StopPoll* stop, float* largest, AmxPieces pieces) {
    std::uint64_t most = 0;
    if (!normal_product(m, x, z, threads, stop, largest ? &most : nullptr, nullptr, pieces))
        return false;
    if (largest) {
        const std::uint32_t bits = static_cast<std::uint32_t>(most);
        std::memcpy(largest, &bits, sizeof(bits));
    }
    return true;
}

bool amx_normal_product_rounding(const ConstView<double>& m, const Matrix<float>& x,
                                 Matrix<float>& z, int threads, StopPoll* stop, float* copy,
                                 double* largest) {
    std::uint64_t most = 0;
    if (!normal_product(m, x, z, threads, stop, &most, copy, AmxPieces::two)) return false;
    std::memcpy(largest, &most, sizeof(most));
    return true;
}

#else  // no AMX build

bool amx_available() { return false; }
bool amx_enabled() { return false; }
void amx_enable(bool) {}

bool amx_normal_product(const ConstView<float>&, const Matrix<float>&, Matrix<float>&, int,
                        StopPoll*, float*, AmxPieces) {
    return false;
}

bool amx_normal_product_rounding(const ConstView<double>&, const Matrix<float>&,
                                 Matrix<float>&, int, StopPoll*, float*, double*) {
    return false;
}

#endif

}  // namespace lowrank
