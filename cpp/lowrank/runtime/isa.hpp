// A ceiling on the instruction sets the CPU core's kernels may pick at run time.
//
// Every kernel checks the CPU (and the OS) before it runs, so one x86-64 build is
// correct from SSE2 to AMX machines. LOWRANK_CORE_ISA lowers the ceiling, so that a
// machine with AVX-512 or AMX runs the paths an older CPU would (CI, bug reports):
//   generic  no kernel of its own beyond the baseline: products through BLAS, scalar
//            Philox deviates, no AVX-512 panels or copies, no AMX
//   avx2     up to the AVX2+FMA product kernels
//   avx512   up to the AVX-512 kernels, no AMX
//   amx      no ceiling (the default; unset or empty means the same)
// Read once, at the first kernel choice. An unknown name sets no ceiling;
// limit_name() then says so, and lowrank_core.show_config() reports it. The few
// loops compiled as GCC target_clones (integer maxima, the float32 copy's
// conversion: exact in every instruction set) keep the loader's choice.
#pragma once

#include <cstdlib>
#include <cstring>
#include <string>

namespace lowrank::isa {

enum class Level { generic = 0, avx2 = 1, avx512 = 2, amx = 3 };

inline const char* name(Level level) {
    switch (level) {
        case Level::generic: return "generic";
        case Level::avx2: return "avx2";
        case Level::avx512: return "avx512";
        case Level::amx: return "amx";
    }
    return "amx";
}

struct Ceiling {
    Level level = Level::amx;
    std::string requested;    // LOWRANK_CORE_ISA as found ("" when unset)
    bool recognised = true;   // false: an unknown name, ignored
};

inline Ceiling read_ceiling() {
    Ceiling out;
    const char* text = std::getenv("LOWRANK_CORE_ISA");
    if (text == nullptr || *text == '\0') return out;
    out.requested = text;
    for (Level level : {Level::generic, Level::avx2, Level::avx512, Level::amx}) {
        if (std::strcmp(text, name(level)) == 0) {
            out.level = level;
            return out;
        }
    }
    out.recognised = false;
    return out;
}

// One reading for the whole process (an inline function's static is one object
// across the translation units of the module).
inline const Ceiling& ceiling() {
    static const Ceiling value = read_ceiling();
    return value;
}

// Whether kernels of `level` may run (the CPU must still support them).
inline bool allows(Level level) { return level <= ceiling().level; }

}  // namespace lowrank::isa
