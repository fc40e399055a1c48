#include "lowrank/common/matrix.hpp"

#include <algorithm>
#include <cstdint>
#include <cstring>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>

#include "lowrank/kernels/target_region.hpp"
#endif

#include "lowrank/runtime/isa.hpp"

// Function multi-versioning (GCC, Clang): one copy of each kernel per target, the
// best the CPU supports chosen when the library loads.
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__)) && \
    !defined(__SANITIZE_ADDRESS__)
#define LOWRANK_TARGET_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define LOWRANK_TARGET_CLONES
#endif

namespace lowrank::detail {
namespace {
template <class Bits>
Bits max_masked_impl(const void* p, index count, Bits mask) {
    const auto* bytes = static_cast<const unsigned char*>(p);
    Bits largest = 0;
    for (index i = 0; i < count; ++i) {
        Bits bits;
        std::memcpy(&bits, bytes + i * index(sizeof(Bits)), sizeof(Bits));
        bits &= mask;
        largest = bits > largest ? bits : largest;
    }
    return largest;
}

// A (count values) rounded to float32 into out; returns the largest |value|'s bits.
std::uint64_t float_copy_max_impl(const double* p, index count, float* out) {
    constexpr std::uint64_t magnitude = ~std::uint64_t(0) >> 1;
    std::uint64_t largest = 0;
    for (index i = 0; i < count; ++i) {
        std::uint64_t bits;
        std::memcpy(&bits, p + i, sizeof(bits));
        bits &= magnitude;
        largest = bits > largest ? bits : largest;
        out[i] = static_cast<float>(p[i]);
    }
    return largest;
}
}  // namespace

LOWRANK_TARGET_CLONES
std::uint32_t max_masked(const void* p, index count, std::uint32_t mask) {
    return max_masked_impl(p, count, mask);
}

LOWRANK_TARGET_CLONES
std::uint64_t max_masked(const void* p, index count, std::uint64_t mask) {
    return max_masked_impl(p, count, mask);
}

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define LOWRANK_AVX512_COPY 1
// float_copy_max on AVX-512. kStream: with non-temporal stores, so that the float32
// copy of a large A goes to memory without first being read into cache (a normal
// store reads each line it writes) and the pass moves a quarter fewer bytes;
// else with normal stores, for a copy read again while it is in cache.
LOWRANK_TARGET_BEGIN("avx512f")
template <bool kStream>
std::uint64_t float_copy_max_avx512(const double* p, index count, float* out) {
    // (Streaming: up to out's first 64-byte boundary, out being 4-byte aligned.)
    const index head =
        kStream ? std::min(count, index((64 - reinterpret_cast<std::uintptr_t>(out) % 64) % 64 / 4))
                : 0;
    std::uint64_t largest = float_copy_max_impl(p, head, out);
    index i = head;
    const __m512i mask = _mm512_set1_epi64(static_cast<long long>(~std::uint64_t(0) >> 1));
    __m512i most = _mm512_setzero_si512();
    for (; i + 16 <= count; i += 16) {
        const __m512d a = _mm512_loadu_pd(p + i), b = _mm512_loadu_pd(p + i + 8);
        most = _mm512_max_epu64(most, _mm512_and_si512(_mm512_castpd_si512(a), mask));
        most = _mm512_max_epu64(most, _mm512_and_si512(_mm512_castpd_si512(b), mask));
        const __m256 low = _mm512_cvtpd_ps(a), high = _mm512_cvtpd_ps(b);
        const __m512 both = _mm512_castpd_ps(_mm512_insertf64x4(
            _mm512_castps_pd(_mm512_castps256_ps512(low)), _mm256_castps_pd(high), 1));
        if (kStream) {
            _mm512_stream_ps(out + i, both);
        } else {
            _mm512_storeu_ps(out + i, both);
        }
    }
    alignas(64) std::uint64_t lanes[8];
    _mm512_store_si512(lanes, most);
    for (std::uint64_t lane : lanes) largest = std::max(largest, lane);
    largest = std::max(largest, float_copy_max_impl(p + i, count - i, out + i));
    if (kStream) _mm_sfence();  // the streamed stores are ordered before whatever reads them
    return largest;
}
LOWRANK_TARGET_END
#endif

LOWRANK_TARGET_CLONES
std::uint64_t float_copy_max(const double* p, index count, float* out, bool cached) {
#ifdef LOWRANK_AVX512_COPY
    static const bool avx512 =
        isa::allows(isa::Level::avx512) && __builtin_cpu_supports("avx512f");
    if (avx512 && count >= 64) {
        return cached ? float_copy_max_avx512<false>(p, count, out)
                      : float_copy_max_avx512<true>(p, count, out);
    }
#endif
    return float_copy_max_impl(p, count, out);
}
}  // namespace lowrank::detail
