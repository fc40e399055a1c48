// Shared by the CPU and CUDA rank bindings: the Python layer's norm names turned into
// the core's Norm, with one error message for both devices.
#pragma once

#include <stdexcept>
#include <string>

#include "lowrank/common/rank_options.hpp"

namespace lowrank::bindings {

// `ord` as the Python layer passes it ("2" or "fro", already checked there).
inline Norm norm_named(const std::string& ord) {
    if (ord == "2") return Norm::Spectral;
    if (ord == "fro") return Norm::Frobenius;
    throw std::invalid_argument("ord must be 2 or 'fro'");
}

}  // namespace lowrank::bindings
