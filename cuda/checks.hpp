// Deferred checks of one call: NaN/Inf flags written by kernels and LAPACK-style
// devInfo values written by cuSOLVER, kept in one small device array so that the
// call synchronises once, at the end, and then raises the right error.
#pragma once

#include <cuda_runtime_api.h>

#include <string>
#include <vector>

#include "resources.hpp"

namespace lowrank::gpu {

class Checks {
  public:
    // Room for `capacity` flags and infos in all.
    Checks(const Resources& resources, index capacity);

    // A slot a kernel sets to nonzero when its input holds NaN or Inf; `message` is
    // then the ValueError's text.
    int* flag(std::string message);
    // A slot for a cuSOLVER devInfo; `routine` names it in the error.
    int* info(std::string routine);

    // Synchronises the caller's stream, then throws std::invalid_argument for a set
    // flag (the first one), LinAlgError for a positive info, std::logic_error for a
    // negative one. Call once, after all work (and all copies to the host) is issued.
    void verify();

  private:
    int* next(bool is_flag, std::string text);
    const Resources& resources_;
    DeviceBuffer<int> values_;
    std::vector<bool> is_flag_;
    std::vector<std::string> text_;
};

}  // namespace lowrank::gpu
