#include "matrix.hpp"

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
}  // namespace

LOWRANK_TARGET_CLONES
std::uint32_t max_masked(const void* p, index count, std::uint32_t mask) {
    return max_masked_impl(p, count, mask);
}

LOWRANK_TARGET_CLONES
std::uint64_t max_masked(const void* p, index count, std::uint64_t mask) {
    return max_masked_impl(p, count, mask);
}

LOWRANK_TARGET_CLONES
std::uint64_t float_copy_max(const double* p, index count, float* out) {
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
}  // namespace lowrank::detail
