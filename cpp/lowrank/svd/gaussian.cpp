// Gaussian deviates of the Philox streams (philox.hpp), 32 at a time.
//
// The scalar rule (gaussian4: Philox, then Box-Muller with libm's log, cos and sin) is
// a visible part of a small randomized SVD's time (docs/benchmarks-history.md,
// "Randomized SVD: per-call costs, threads and memory"). On AVX-512 the same rule runs
// on 8 counters at once: Philox on 64-bit lanes, and log, sin and cos from the classic
// fdlibm reductions and polynomials (Sun Microsystems' freely distributable libm, as in
// glibc, musl and Go). Each deviate is within a few ulps of libm's, as libm's and
// CUDA's differ from each other (checked against mpmath: within a few ulps of the exact
// value, as libm's are). Where AVX-512 is missing the scalar rule runs, so the low bits
// depend on the CPU, as the products' do.
#include "lowrank/common/philox.hpp"

#include <cstdint>

#include "lowrank/runtime/isa.hpp"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define LOWRANK_GAUSSIAN_AVX512 1
#include <immintrin.h>

#include "lowrank/kernels/target_region.hpp"
#endif

namespace lowrank::philox {
namespace {

void gaussian32_scalar(std::uint64_t seed, std::uint64_t c0, std::uint32_t stream,
                       std::uint32_t substream, double out[32]) {
    for (std::uint64_t i = 0; i < 8; ++i) gaussian4(seed, c0 + i, out + 4 * i, stream, substream);
}

#ifdef LOWRANK_GAUSSIAN_AVX512
LOWRANK_TARGET_BEGIN("avx512f,fma")

using V = __m512d;
using I = __m512i;

inline V fma(V a, V b, V c) { return _mm512_fmadd_pd(a, b, c); }
inline V set(double x) { return _mm512_set1_pd(x); }

// log(u) for normal u > 0 (fdlibm's e_log.c): u = 2^k (1 + f) with 1 + f in
// [sqrt(2)/2, sqrt(2)), s = f / (2 + f), log(1 + f) = f - s (f - R(s^2)) in the
// form below, with R a minimax polynomial for 2 atanh(s) / s - 2.
V log_pd(V u) {
    V k = _mm512_getexp_pd(u);                                        // floor(log2 u)
    V m = _mm512_getmant_pd(u, _MM_MANT_NORM_1_2, _MM_MANT_SIGN_src);  // [1, 2)
    const __mmask8 high = _mm512_cmp_pd_mask(m, set(1.4142135623730951), _CMP_GT_OQ);
    m = _mm512_mask_mul_pd(m, high, m, set(0.5));
    k = _mm512_mask_add_pd(k, high, k, set(1.0));
    const V f = _mm512_sub_pd(m, set(1.0));
    const V s = _mm512_div_pd(f, _mm512_add_pd(set(2.0), f));
    const V z = _mm512_mul_pd(s, s), w = _mm512_mul_pd(z, z);
    const V t1 = _mm512_mul_pd(
        w, fma(w, fma(w, set(1.531383769920937332e-01), set(2.222219843214978396e-01)),
               set(3.999999999940941908e-01)));
    const V t2 = _mm512_mul_pd(
        z, fma(w,
               fma(w, fma(w, set(1.479819860511658591e-01), set(1.818357216161805012e-01)),
                   set(2.857142874366239149e-01)),
               set(6.666666666666735130e-01)));
    const V r = _mm512_add_pd(t2, t1);
    const V hfsq = _mm512_mul_pd(set(0.5), _mm512_mul_pd(f, f));
    constexpr double ln2_hi = 6.93147180369123816490e-01, ln2_lo = 1.90821492927058770002e-10;
    // k ln2_hi - ((hfsq - (s (hfsq + R) + k ln2_lo)) - f)
    const V inner = fma(s, _mm512_add_pd(hfsq, r), _mm512_mul_pd(k, set(ln2_lo)));
    return _mm512_sub_pd(_mm512_mul_pd(k, set(ln2_hi)),
                         _mm512_sub_pd(_mm512_sub_pd(hfsq, inner), f));
}

// sin and cos of x in [0, 8]: x = q pi/2 + r, |r| <= pi/4 (Cody-Waite, pi/2 in a
// 33-bit head and a tail, so q times the head is exact), then fdlibm's
// __kernel_sin and __kernel_cos on r.
void sincos_pd(V x, V& sin_out, V& cos_out) {
    const V q = _mm512_roundscale_pd(_mm512_mul_pd(x, set(6.36619772367581382433e-01)),
                                     _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    const V r = _mm512_sub_pd(_mm512_fnmadd_pd(q, set(1.57079632673412561417e+00), x),
                              _mm512_mul_pd(q, set(6.07710050650619224932e-11)));
    const V z = _mm512_mul_pd(r, r);
    // sin r = r + r^3 (S1 + z (S2 + ... + z S6))
    const V ps = fma(z,
                     fma(z,
                         fma(z, fma(z, set(1.58969099521155010221e-10),
                                    set(-2.50507602534068634195e-08)),
                             set(2.75573137070700676789e-06)),
                         set(-1.98412698298579493134e-04)),
                     set(8.33333333332248946124e-03));
    const V sin_r =
        fma(_mm512_mul_pd(z, r), fma(z, ps, set(-1.66666666666666324348e-01)), r);
    // cos r = w + (((1 - w) - z/2) + z p), w = 1 - z/2, p = z (C1 + ... + z^5 C6)
    const V pc = _mm512_mul_pd(
        z, fma(z,
               fma(z,
                   fma(z,
                       fma(z, fma(z, set(-1.13596475577881948265e-11),
                                  set(2.08757232129817482790e-09)),
                           set(-2.75573143513906633035e-07)),
                       set(2.48015872894767294178e-05)),
                   set(-1.38888888888741095749e-03)),
               set(4.16666666666666019037e-02)));
    const V hz = _mm512_mul_pd(set(0.5), z);
    const V w = _mm512_sub_pd(set(1.0), hz);
    const V cos_r = _mm512_add_pd(
        w, _mm512_add_pd(_mm512_sub_pd(_mm512_sub_pd(set(1.0), w), hz), _mm512_mul_pd(z, pc)));
    // Quadrant q mod 4: (sin, cos) = (s, c), (c, -s), (-s, -c), (-c, s).
    const V turns = _mm512_roundscale_pd(_mm512_mul_pd(q, set(0.25)),
                                         _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC);
    const V quadrant = _mm512_fnmadd_pd(turns, set(4.0), q);  // exact
    const __mmask8 odd = _mm512_cmp_pd_mask(quadrant, set(1.0), _CMP_EQ_OQ) |
                         _mm512_cmp_pd_mask(quadrant, set(3.0), _CMP_EQ_OQ);
    const __mmask8 negate_sin = _mm512_cmp_pd_mask(quadrant, set(2.0), _CMP_GE_OQ);
    const __mmask8 negate_cos = _mm512_cmp_pd_mask(quadrant, set(1.0), _CMP_EQ_OQ) |
                                _mm512_cmp_pd_mask(quadrant, set(2.0), _CMP_EQ_OQ);
    const V a = _mm512_mask_blend_pd(odd, sin_r, cos_r);
    const V b = _mm512_mask_blend_pd(odd, cos_r, sin_r);
    const V zero = _mm512_setzero_pd();
    sin_out = _mm512_mask_sub_pd(a, negate_sin, zero, a);
    cos_out = _mm512_mask_sub_pd(b, negate_cos, zero, b);
}

// (x + 0.5) / 2^32 for 32-bit x in 64-bit lanes, exact as in gaussian4.
V uniform(I x) {
    return _mm512_mul_pd(_mm512_add_pd(_mm512_cvtepu32_pd(_mm512_cvtepi64_epi32(x)), set(0.5)),
                         set(kInv2To32));
}

// Counters c0 .. c0 + 7 of gaussian4, on 64-bit lanes.
void gaussian32_avx512(std::uint64_t seed, std::uint64_t c0, std::uint32_t stream,
                       std::uint32_t substream, double out[32]) {
    const I low = _mm512_set1_epi64(0xffffffffLL);
    const I c = _mm512_add_epi64(_mm512_set1_epi64(static_cast<long long>(c0)),
                                 _mm512_set_epi64(7, 6, 5, 4, 3, 2, 1, 0));
    I x0 = _mm512_and_si512(c, low), x1 = _mm512_srli_epi64(c, 32);
    I x2 = _mm512_set1_epi64(stream), x3 = _mm512_set1_epi64(substream);
    std::uint32_t key0 = static_cast<std::uint32_t>(seed);
    std::uint32_t key1 = static_cast<std::uint32_t>(seed >> 32);
    const I m0 = _mm512_set1_epi64(kMultiplier0), m1 = _mm512_set1_epi64(kMultiplier1);
    for (int round = 0; round < 10; ++round) {  // philox4x32_10 on 8 counters
        if (round > 0) {
            key0 += kKeyStep0;
            key1 += kKeyStep1;
        }
        const I p0 = _mm512_mul_epu32(x0, m0), p1 = _mm512_mul_epu32(x2, m1);
        const I y0 = _mm512_xor_si512(_mm512_xor_si512(_mm512_srli_epi64(p1, 32), x1),
                                      _mm512_set1_epi64(key0));
        const I y2 = _mm512_xor_si512(_mm512_xor_si512(_mm512_srli_epi64(p0, 32), x3),
                                      _mm512_set1_epi64(key1));
        x1 = _mm512_and_si512(p1, low);
        x3 = _mm512_and_si512(p0, low);
        x0 = y0;
        x2 = y2;
    }
    alignas(64) double z[4][8];
    const I words[4] = {x0, x1, x2, x3};
    for (int pair = 0; pair < 2; ++pair) {
        const V radius = _mm512_sqrt_pd(_mm512_mul_pd(set(-2.0), log_pd(uniform(words[2 * pair]))));
        const V angle = _mm512_mul_pd(set(kTwoPi), uniform(words[2 * pair + 1]));
        V sin_angle, cos_angle;
        sincos_pd(angle, sin_angle, cos_angle);
        _mm512_store_pd(z[2 * pair], _mm512_mul_pd(radius, cos_angle));
        _mm512_store_pd(z[2 * pair + 1], _mm512_mul_pd(radius, sin_angle));
    }
    for (int i = 0; i < 8; ++i) {
        for (int lane = 0; lane < 4; ++lane) out[4 * i + lane] = z[lane][i];
    }
}

LOWRANK_TARGET_END
#endif  // LOWRANK_GAUSSIAN_AVX512

using Gaussian32 = void (*)(std::uint64_t, std::uint64_t, std::uint32_t, std::uint32_t,
                            double*);

Gaussian32 best() {
#ifdef LOWRANK_GAUSSIAN_AVX512
    if (isa::allows(isa::Level::avx512) && __builtin_cpu_supports("avx512f") &&
        __builtin_cpu_supports("fma")) {
        return gaussian32_avx512;
    }
#endif
    return gaussian32_scalar;
}

}  // namespace

void gaussian32(std::uint64_t seed, std::uint64_t c0, std::uint32_t stream,
                std::uint32_t substream, double out[32]) {
    static const Gaussian32 chosen = best();
    chosen(seed, c0, stream, substream, out);
}

}  // namespace lowrank::philox
