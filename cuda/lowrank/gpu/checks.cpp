#include "lowrank/gpu/checks.hpp"

#include <stdexcept>
#include <utility>

#include "lowrank/common/errors.hpp"
#include "lowrank/gpu/errors.hpp"

namespace lowrank::gpu {

Checks::Checks(const Resources& resources, index capacity)
    : resources_(resources), values_(capacity > 0 ? capacity : 1, resources.stream()) {
    LOWRANK_CUDA_TRY(cudaMemsetAsync(values_.data(), 0,
                             static_cast<std::size_t>(values_.size()) * sizeof(int),
                             resources.stream()));
}

int* Checks::take(bool is_flag, bool batched, std::string text, index count) {
    if (count < 0 || used_ + count > values_.size()) {
        throw std::logic_error("lowrank_core: too few check slots (a bug in lowrank_core)");
    }
    int* first = values_.data() + used_;
    records_.push_back(Record{is_flag, batched, std::move(text), used_, count});
    used_ += count;
    return first;
}

int* Checks::flag(std::string message) { return take(true, false, std::move(message), 1); }

int* Checks::info(std::string routine) { return take(false, false, std::move(routine), 1); }

int* Checks::infos(std::string routine, index count) {
    return take(false, true, std::move(routine), count);
}

std::vector<int> Checks::read(index count) const {
    std::vector<int> host(static_cast<std::size_t>(count), 0);
    if (!host.empty()) {
        LOWRANK_CUDA_TRY(cudaMemcpyAsync(host.data(), values_.data(), host.size() * sizeof(int),
                                 cudaMemcpyDeviceToHost, resources_.stream()));
    }
    resources_.synchronize();
    return host;
}

void Checks::throw_for_flags(const std::vector<int>& host) const {
    for (const Record& record : records_) {
        const auto slot = static_cast<std::size_t>(record.first);
        if (record.is_flag && slot < host.size() && host[slot] != 0) {
            throw std::invalid_argument(record.text);
        }
    }
}

void Checks::verify_inputs() {
    // Only the slots taken so far: the flags, registered before any solver's devInfo.
    throw_for_flags(read(used_));
}

void Checks::verify() {
    const std::vector<int> host = read(used_);
    // Bad input first (as the CPU core checks it before computing), then the solvers.
    throw_for_flags(host);
    for (const Record& record : records_) {
        if (record.is_flag) continue;
        for (index i = 0; i < record.count; ++i) {
            const int value = host[static_cast<std::size_t>(record.first + i)];
            if (value == 0) continue;
            const std::string routine =
                record.batched ? record.text + " (matrix " + std::to_string(i) + ")"
                               : record.text;
            check_lapack_info(value, routine.c_str());
        }
    }
}

}  // namespace lowrank::gpu
