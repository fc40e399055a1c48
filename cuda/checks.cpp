#include "checks.hpp"

#include <stdexcept>
#include <utility>

#include "cuda_errors.hpp"
#include "errors.hpp"  // cpp/: check_lapack_info, LinAlgError

namespace lowrank::gpu {

Checks::Checks(const Resources& resources, index capacity)
    : resources_(resources), values_(capacity > 0 ? capacity : 1, resources.stream()) {
    CUDA_TRY(cudaMemsetAsync(values_.data(), 0,
                             static_cast<std::size_t>(values_.size()) * sizeof(int),
                             resources.stream()));
}

int* Checks::next(bool is_flag, std::string text) {
    const index slot = static_cast<index>(text_.size());
    if (slot >= values_.size()) {
        throw std::logic_error("lowrank_core: too few check slots (a bug in lowrank_core)");
    }
    is_flag_.push_back(is_flag);
    text_.push_back(std::move(text));
    return values_.data() + slot;
}

int* Checks::flag(std::string message) { return next(true, std::move(message)); }

int* Checks::info(std::string routine) { return next(false, std::move(routine)); }

void Checks::verify() {
    std::vector<int> host(text_.size(), 0);
    if (!host.empty()) {
        CUDA_TRY(cudaMemcpyAsync(host.data(), values_.data(), host.size() * sizeof(int),
                                 cudaMemcpyDeviceToHost, resources_.stream()));
    }
    resources_.synchronize();
    for (std::size_t i = 0; i < host.size(); ++i) {
        if (is_flag_[i] && host[i] != 0) throw std::invalid_argument(text_[i]);
    }
    for (std::size_t i = 0; i < host.size(); ++i) {
        if (!is_flag_[i]) check_lapack_info(host[i], text_[i].c_str());
    }
}

}  // namespace lowrank::gpu
