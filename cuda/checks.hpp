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
    // `count` consecutive slots for the devInfo of each matrix of a batch; an error
    // names the routine and the matrix.
    int* infos(std::string routine, index count);

    // Synchronises the caller's stream, then throws std::invalid_argument for a set
    // flag (the first one), LinAlgError for a positive info, std::logic_error for a
    // negative one. Call once, after all work (and all copies to the host) is issued.
    void verify();

  private:
    struct Record {
        bool is_flag;
        bool batched;
        std::string text;
        index first, count;
    };
    int* take(bool is_flag, bool batched, std::string text, index count);
    const Resources& resources_;
    DeviceBuffer<int> values_;
    index used_ = 0;
    std::vector<Record> records_;
};

}  // namespace lowrank::gpu
