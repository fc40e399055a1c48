// Dense matrices as the core sees them.
//
// `ConstView` is a read-only window on caller memory in either layout: column-major
// (element (i, j) at data[i + j * ld]) or row-major (at data[i * ld + j]). Row-major
// input is handed to BLAS as the transpose of a column-major matrix, so no copy of A
// is ever made just to change its layout. `Matrix` owns column-major storage.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstddef>
#include <cstring>
#include <limits>
#include <new>
#include <type_traits>
#include <vector>

#include "lowrank/runtime/block_cache.hpp"

#if defined(__linux__)
#include <sys/mman.h>
#endif

namespace lowrank {

using index = std::int64_t;

template <class T>
struct ConstView {
    const T* data = nullptr;
    index rows = 0;
    index cols = 0;
    index ld = 0;            // distance between columns (column-major) or rows (row-major)
    bool row_major = false;

    T operator()(index i, index j) const {
        return row_major ? data[i * ld + j] : data[i + j * ld];
    }
    // The stored column-major matrix and the BLAS op that turns it into this view:
    // row-major (rows x cols) is stored as its column-major transpose, op = 'T'.
    char blas_op() const { return row_major ? 'T' : 'N'; }
    // Same matrix, transposed, without touching memory.
    ConstView transposed() const { return {data, cols, rows, ld, !row_major}; }
};

// Storage on 64-byte (cache-line) boundaries, so that the BLAS kernels' vector loads
// on the bottleneck's small matrices never split cache lines. (It did not remove
// the spread of small networks' step times between processes:
// docs/benchmarks-history.md, "The bottleneck network".)
//
// Blocks of 4 MiB and more go on 2 MiB boundaries with Linux's advice to back them
// with transparent huge pages (where it is in madvise mode): the C library maps such
// blocks fresh from the kernel every time, and huge pages fault in several times
// faster than 4 KiB ones (docs/benchmarks-history.md, "Randomized SVD: per-call
// costs, threads and memory", "Huge pages and first calls").
// Freed blocks of 64 KiB and more are kept for the next allocation of their size
// (block_cache.hpp).
template <class T>
struct CacheAligned {
    using value_type = T;
    static constexpr std::size_t alignment = 64;
    static constexpr std::size_t kHuge = std::size_t(2) << 20, kHugeFrom = std::size_t(4) << 20;
    CacheAligned() = default;
    template <class U>
    CacheAligned(const CacheAligned<U>&) {}  // NOLINT: rebinding must be implicit
    static std::size_t alignment_for(std::size_t bytes) {
        return bytes >= kHugeFrom ? kHuge : alignment;
    }
    T* allocate(std::size_t count) {
        const std::size_t bytes = block_cache::rounded(count * sizeof(T));
        const std::size_t align = alignment_for(bytes);
        if (bytes >= block_cache::kFrom) {
            if (void* kept = block_cache::cache().take(bytes, align)) return static_cast<T*>(kept);
        }
        void* p = ::operator new(bytes, std::align_val_t(align));
#if defined(__linux__) && defined(MADV_HUGEPAGE)
        if (bytes >= kHugeFrom) madvise(p, bytes / kHuge * kHuge, MADV_HUGEPAGE);  // advice only
#endif
        return static_cast<T*>(p);
    }
    void deallocate(T* p, std::size_t count) {
        const std::size_t bytes = block_cache::rounded(count * sizeof(T));
        const std::size_t align = alignment_for(bytes);
        if (!block_cache::cache().keep(p, bytes, align)) ::operator delete(p, std::align_val_t(align));
    }
    template <class U>
    bool operator==(const CacheAligned<U>&) const { return true; }
    template <class U>
    bool operator!=(const CacheAligned<U>&) const { return false; }
};

template <class T>
using AlignedVector = std::vector<T, CacheAligned<T>>;

template <class T>
struct Matrix {
    index rows = 0;
    index cols = 0;
    AlignedVector<T> values;  // column-major, leading dimension `rows`

    Matrix() = default;
    Matrix(index r, index c) : rows(r), cols(c), values(static_cast<std::size_t>(r * c)) {}

    T* data() { return values.data(); }
    const T* data() const { return values.data(); }
    index ld() const { return rows > 0 ? rows : 1; }
    T& operator()(index i, index j) { return values[static_cast<std::size_t>(i + j * rows)]; }
    T operator()(index i, index j) const {
        return values[static_cast<std::size_t>(i + j * rows)];
    }
    T* column(index j) { return values.data() + j * rows; }
    const T* column(index j) const { return values.data() + j * rows; }
    ConstView<T> view() const { return {values.data(), rows, cols, ld(), false}; }
};

// A column-major copy of a view (LAPACK routines overwrite their input).
template <class T>
Matrix<T> to_matrix(const ConstView<T>& a) {
    Matrix<T> out(a.rows, a.cols);
    if (a.row_major) {
        for (index i = 0; i < a.rows; ++i) {
            const T* row = a.data + i * a.ld;
            for (index j = 0; j < a.cols; ++j) out(i, j) = row[j];
        }
    } else {
        for (index j = 0; j < a.cols; ++j) {
            const T* col = a.data + j * a.ld;
            T* dst = out.column(j);
            for (index i = 0; i < a.rows; ++i) dst[i] = col[i];
        }
    }
    return out;
}

// True when every entry is finite. One pass that vectorises: x - x is 0 for
// finite x and NaN for NaN/Inf, and the OR-reduction is on integers, so the
// compiler may reorder it (a floating-point sum could not be).
template <class T>
bool all_finite(const ConstView<T>& a) {
    const index outer = a.row_major ? a.rows : a.cols;
    const index inner = a.row_major ? a.cols : a.rows;
    for (index o = 0; o < outer; ++o) {
        const T* p = a.data + o * a.ld;
        int bad = 0;
        for (index i = 0; i < inner; ++i) bad |= !(p[i] - p[i] == T(0));
        if (bad) return false;
    }
    return true;
}

namespace detail {
// The largest of p[0..count) & mask, as unsigned integers. Compiled for AVX-512 and
// AVX2 as well as the baseline, picked at load time (matrix.cpp): the baseline
// (SSE2) has no unsigned vector max and runs several times slower than memory.
// p holds `count` values of the mask's width (float or double bits).
std::uint32_t max_masked(const void* p, index count, std::uint32_t mask);
std::uint64_t max_masked(const void* p, index count, std::uint64_t mask);
// out[0..count) = p[0..count) rounded to float; returns the largest |p[i]|'s bits
// (as max_masked with the sign bit cleared), in the same pass over p. For a large
// copy that goes to memory (its stores bypass the cache on AVX-512), or, with
// `cached`, for one that is read again soon (the AMX product's rounding pass).
std::uint64_t float_copy_max(const double* p, index count, float* out, bool cached = false);
}  // namespace detail

// The largest |entry| of a, or +infinity when an entry is NaN or Inf (0 when empty).
// One pass that vectorises: with the sign bit cleared, IEEE values order like
// their bit patterns read as unsigned integers, and NaN and Inf lie above every
// finite value, so the reduction is an integer max.
template <class T>
T max_abs(const ConstView<T>& a) {
    using Bits = std::conditional_t<sizeof(T) == 8, std::uint64_t, std::uint32_t>;
    static_assert(sizeof(Bits) == sizeof(T), "IEEE float or double");
    constexpr Bits magnitude = ~Bits(0) >> 1;
    const T inf = std::numeric_limits<T>::infinity();
    Bits inf_bits;
    std::memcpy(&inf_bits, &inf, sizeof(T));
    const index outer = a.row_major ? a.rows : a.cols;
    const index inner = a.row_major ? a.cols : a.rows;
    // One call for a contiguous matrix, one per row or column otherwise.
    const bool contiguous = a.ld == inner || outer <= 1;
    const index calls = contiguous ? 1 : outer, length = contiguous ? inner * outer : inner;
    Bits largest = 0;
    for (index o = 0; o < calls; ++o) {
        const Bits m = detail::max_masked(a.data + o * a.ld, length, magnitude);
        if (m >= inf_bits) return inf;
        largest = m > largest ? m : largest;
    }
    T out;
    std::memcpy(&out, &largest, sizeof(T));
    return out;
}

}  // namespace lowrank
