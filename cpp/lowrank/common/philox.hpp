// Philox4x32-10 (Salmon, Moraes, Dror, Shaw, "Parallel random numbers: as easy as
// 1, 2, 3", SC 2011): a counter-based generator. Output is a pure function of
// (key, counter), so the CPU core, the CUDA core and the NumPy reference
// (lowrank_core.reference._philox) produce the same Gaussian sketch for a seed.
//
// The sketch rule, shared by every implementation:
//   key     = (seed & 0xffffffff, seed >> 32)
//   entry e = the column-major linear index of the entry of the (rows x cols) sketch
//   counter = (e / 4 low 32 bits, e / 4 high 32 bits, 0, 0), lane = e % 4
//   uniform u_i = (x_i + 0.5) / 2^32 for the four outputs x_i (never 0 or 1)
//   lanes (0, 1) and (2, 3) are Box-Muller pairs: r = sqrt(-2 log u_a),
//   z_a = r cos(2 pi u_b), z_b = r sin(2 pi u_b), computed in double, then rounded to T.
//
// Streams: the counter's third and fourth words name a stream and a substream, so
// that one seed feeds several purposes that never share a draw. The sketch is
// stream 0, substream 0 (so it is what it always was); the bottleneck network
// draws its initial weights from stream 1 (substream = layer), its training data
// from stream 2 and its shuffles from stream 3 (substream = epoch):
//   counter = (e / 4 low 32 bits, e / 4 high 32 bits, stream, substream).
#pragma once

#include <cmath>
#include <cstdint>

#if defined(__CUDACC__)
#define LOWRANK_HOST_DEVICE __host__ __device__
#else
#define LOWRANK_HOST_DEVICE
#endif

namespace lowrank::philox {

struct Block {
    std::uint32_t x[4];
};

LOWRANK_HOST_DEVICE inline void mulhilo(std::uint32_t a, std::uint32_t b, std::uint32_t& hi,
                                        std::uint32_t& lo) {
    const std::uint64_t product = static_cast<std::uint64_t>(a) * b;
    hi = static_cast<std::uint32_t>(product >> 32);
    lo = static_cast<std::uint32_t>(product);
}

// Philox4x32-10's round multipliers and key increments (gaussian.cpp's vector
// version uses them too).
constexpr std::uint32_t kMultiplier0 = 0xD2511F53u, kMultiplier1 = 0xCD9E8D57u;
constexpr std::uint32_t kKeyStep0 = 0x9E3779B9u, kKeyStep1 = 0xBB67AE85u;
// The sketch rule's constants: uniforms are (x + 0.5) * 2^-32, angles 2 pi u.
constexpr double kInv2To32 = 1.0 / 4294967296.0;
constexpr double kTwoPi = 6.283185307179586476925286766559;

LOWRANK_HOST_DEVICE inline Block philox4x32_10(Block counter, std::uint32_t key0,
                                               std::uint32_t key1) {
    for (int round = 0; round < 10; ++round) {
        if (round > 0) {
            key0 += kKeyStep0;
            key1 += kKeyStep1;
        }
        std::uint32_t hi0, lo0, hi1, lo1;
        mulhilo(kMultiplier0, counter.x[0], hi0, lo0);
        mulhilo(kMultiplier1, counter.x[2], hi1, lo1);
        counter = Block{{hi1 ^ counter.x[1] ^ key0, lo1, hi0 ^ counter.x[3] ^ key1, lo0}};
    }
    return counter;
}

// Purposes that draw from one seed, each from its own counter stream.
enum Stream : std::uint32_t {
    sketch_stream = 0,    // the randomized SVD's test matrix
    weights_stream = 1,   // initial weights of the bottleneck network (substream = layer)
    data_stream = 2,      // its training vectors
    shuffle_stream = 3,   // its per-epoch shuffles (substream = epoch)
};

// The 128 random bits of counter value c in a stream.
LOWRANK_HOST_DEVICE inline Block random_bits(std::uint64_t seed, std::uint64_t c,
                                             std::uint32_t stream = 0,
                                             std::uint32_t substream = 0) {
    return philox4x32_10(
        Block{{static_cast<std::uint32_t>(c), static_cast<std::uint32_t>(c >> 32), stream,
               substream}},
        static_cast<std::uint32_t>(seed), static_cast<std::uint32_t>(seed >> 32));
}

// Four standard normal deviates for one counter value (entries 4c .. 4c+3).
LOWRANK_HOST_DEVICE inline void gaussian4(std::uint64_t seed, std::uint64_t c, double out[4],
                                          std::uint32_t stream = 0,
                                          std::uint32_t substream = 0) {
    const Block bits = random_bits(seed, c, stream, substream);
    for (int pair = 0; pair < 2; ++pair) {
        const double u_radius = (static_cast<double>(bits.x[2 * pair]) + 0.5) * kInv2To32;
        const double u_angle = (static_cast<double>(bits.x[2 * pair + 1]) + 0.5) * kInv2To32;
        const double radius = sqrt(-2.0 * log(u_radius));
        out[2 * pair] = radius * cos(kTwoPi * u_angle);
        out[2 * pair + 1] = radius * sin(kTwoPi * u_angle);
    }
}

// The 32 deviates of counters c0 .. c0 + 7 (c0 a multiple of 8), entry 4 (c0 + i) +
// lane at out[4 i + lane]: gaussian4's rule, 8 counters at a time on AVX-512
// (gaussian.cpp), else gaussian4 itself. CPU only.
void gaussian32(std::uint64_t seed, std::uint64_t c0, std::uint32_t stream,
                std::uint32_t substream, double out[32]);

// Fills entries [first, first + count) of the column-major sketch (linear indices),
// or of another stream's sequence. CPU only. Each entry comes from the call of
// gaussian32 for its aligned group of 32, whatever the range, so that any split of
// a sequence into ranges gives the same bits as one pass.
template <class T>
inline void fill_gaussian(std::uint64_t seed, std::uint64_t first, std::uint64_t count, T* out,
                          std::uint32_t stream = 0, std::uint32_t substream = 0) {
    double z[32];
    std::uint64_t e = first;
    const std::uint64_t end = first + count;
    while (e < end) {
        gaussian32(seed, e / 32 * 8, stream, substream, z);
        for (std::uint64_t i = e % 32; i < 32 && e < end; ++i, ++e) {
            out[e - first] = static_cast<T>(z[i]);
        }
    }
}

// Entries [first, first + count) of a stream as uniforms in (0, 1): entry e is
// (x + 0.5) / 2^32 for lane e % 4 of the block at counter e / 4, in double.
inline void fill_uniform(std::uint64_t seed, std::uint64_t first, std::uint64_t count,
                         double* out, std::uint32_t stream, std::uint32_t substream = 0) {
    std::uint64_t e = first;
    const std::uint64_t end = first + count;
    while (e < end) {
        const Block bits = random_bits(seed, e / 4, stream, substream);
        for (std::uint64_t lane = e % 4; lane < 4 && e < end; ++lane, ++e) {
            out[e - first] = (static_cast<double>(bits.x[lane]) + 0.5) * kInv2To32;
        }
    }
}

}  // namespace lowrank::philox
