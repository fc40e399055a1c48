// What a rank computation is asked for, shared by the CPU and the GPU core.
#pragma once

namespace lowrank {

// How the threshold of `matrix_rank` is given.
enum class Threshold {
    Default,   // S.max() * max(m, n) * eps(T), in T, exactly as numpy.linalg.matrix_rank
    Absolute,  // tol[b], compared in double
    Relative,  // S.max() * rtol[b], in double
};

// The spectral measures of rank (spectral_measure in lowrank/spectrum/rank.hpp).
enum class Measure { Effective, Stable, Entropy };

// The norm of relative_error.
enum class Norm { Spectral, Frobenius };

}  // namespace lowrank
