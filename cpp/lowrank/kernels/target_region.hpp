// A region of a source file compiled for an instruction set that the rest of the
// library does not assume (the kernels check the CPU at run time before calling
// into it):
//
//   LOWRANK_TARGET_BEGIN("avx512f,fma")
//   ... functions ...
//   LOWRANK_TARGET_END
//
// GCC spells this push_options/target, Clang an attribute applied to every function
// in the region. Inside it GCC 12 also warns within its own AVX-512 headers
// (intrinsics that start from an undefined vector, a known false positive), so the
// region silences -W(maybe-)uninitialized for GCC.
#pragma once

#define LOWRANK_PRAGMA(text) _Pragma(#text)

#if defined(__clang__)
#define LOWRANK_TARGET_BEGIN(isa) \
    LOWRANK_PRAGMA(clang attribute push(__attribute__((target(isa))), apply_to = function))
#define LOWRANK_TARGET_END LOWRANK_PRAGMA(clang attribute pop)
#else
#define LOWRANK_TARGET_BEGIN(isa)                                \
    LOWRANK_PRAGMA(GCC push_options)                             \
    LOWRANK_PRAGMA(GCC target(isa))                              \
    LOWRANK_PRAGMA(GCC diagnostic push)                          \
    LOWRANK_PRAGMA(GCC diagnostic ignored "-Wuninitialized")     \
    LOWRANK_PRAGMA(GCC diagnostic ignored "-Wmaybe-uninitialized")
#define LOWRANK_TARGET_END \
    LOWRANK_PRAGMA(GCC diagnostic pop) LOWRANK_PRAGMA(GCC pop_options)
#endif
