// Checks of one call: NaN/Inf flags written by kernels and LAPACK-style devInfo
// values written by cuSOLVER, kept in one small device array. The flags are read
// once, right after the kernels that set them and before any solver runs (as the CPU
// core checks its input before LAPACK: cuSOLVER is not to be given NaN or Inf); the
// devInfo values once, at the end, and then the right error is raised.
#pragma once

#include <cuda_runtime_api.h>

#include <string>
#include <vector>

#include "lowrank/gpu/resources.hpp"

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

    // Copies the flags set so far to the host (one small copy), synchronises the
    // caller's stream and throws std::invalid_argument for a set flag (the first one).
    // Call after the flag kernels, before the first cuSOLVER call.
    void verify_inputs();

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
    // Copies slots [0, count) to the host and synchronises the stream.
    std::vector<int> read(index count) const;
    // Throws std::invalid_argument for the first set flag among `host`'s slots.
    void throw_for_flags(const std::vector<int>& host) const;
    const Resources& resources_;
    DeviceBuffer<int> values_;
    index used_ = 0;
    std::vector<Record> records_;
};

}  // namespace lowrank::gpu
