// Shared by the CPU and CUDA bottleneck bindings: the Python layer's option strings
// turned into the core's BottleneckConfig, with one error message for both devices,
// and the Python callbacks of a fit turned into the core's TrainingHooks.
#pragma once

#include <pybind11/pybind11.h>

#include <cstdint>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "lowrank/common/bottleneck_config.hpp"

namespace lowrank::bindings {

// The enum named by `value`, or an error naming the argument and listing the choices.
template <class Enum>
Enum parse_choice(const std::string& value, const char* name,
                  const std::vector<std::pair<const char*, Enum>>& choices) {
    std::string listed;
    for (const auto& [text, choice] : choices) {
        if (value == text) return choice;
        listed += (listed.empty() ? "'" : ", '") + std::string(text) + "'";
    }
    throw std::invalid_argument(std::string(name) + " must be one of " + listed + ", got '" +
                                value + "'");
}

// The option strings of the Python layer and the enums they name.
inline const std::vector<std::pair<const char*, Init>>& init_choices() {
    static const std::vector<std::pair<const char*, Init>> choices{
        {"he_normal", Init::HeNormal},
        {"glorot_uniform", Init::GlorotUniform},
        {"orthogonal", Init::Orthogonal}};
    return choices;
}
inline const std::vector<std::pair<const char*, Optimizer>>& optimizer_choices() {
    static const std::vector<std::pair<const char*, Optimizer>> choices{
        {"sgd", Optimizer::Sgd},
        {"momentum", Optimizer::Momentum},
        {"adam", Optimizer::Adam},
        {"gauss_newton", Optimizer::GaussNewton}};
    return choices;
}
inline const std::vector<std::pair<const char*, DataMode>>& data_choices() {
    static const std::vector<std::pair<const char*, DataMode>> choices{
        {"fixed", DataMode::Fixed}, {"stream", DataMode::Stream}, {"exact", DataMode::Exact}};
    return choices;
}

// The string that names `value` (the inverse of parse_choice).
template <class Enum>
std::string choice_name(Enum value, const std::vector<std::pair<const char*, Enum>>& choices) {
    for (const auto& [text, choice] : choices) {
        if (choice == value) return text;
    }
    throw std::logic_error("an option value without a name");
}

inline BottleneckConfig make_bottleneck_config(const std::vector<index>& widths, bool bias,
                                               const std::string& init,
                                               const std::string& optimizer, double lr,
                                               index epochs, index samples, index batch_size,
                                               const std::string& data, std::uint64_t seed,
                                               double tol = 0, index max_epochs = 1000) {
    BottleneckConfig config;
    config.widths = widths;
    config.bias = bias;
    config.init = parse_choice<Init>(init, "init", init_choices());
    config.optimizer = parse_choice<Optimizer>(optimizer, "optimizer", optimizer_choices());
    config.lr = lr;
    config.epochs = epochs;
    config.samples = samples;
    config.batch_size = batch_size;
    config.data = parse_choice<DataMode>(data, "data", data_choices());
    config.seed = seed;
    config.tol = tol;
    config.max_epochs = max_epochs;
    return config;
}

// The hooks of a fit that runs with the GIL released: they take it back only to call
// `on_epoch(epoch, loss)` after each epoch (a result other than None that is falsy
// stops training), to check for Ctrl-C, and to call `on_poll(fraction done)` (about
// every 0.1 s). Either callback may be None; both must outlive the fit.
inline TrainingHooks python_training_hooks(const pybind11::object& on_epoch,
                                           const pybind11::object& on_poll) {
    TrainingHooks hooks;
    if (!on_epoch.is_none()) {
        hooks.on_epoch = [&on_epoch](index epoch, double loss) {
            pybind11::gil_scoped_acquire acquire;
            const pybind11::object result = on_epoch(epoch, loss);
            return result.is_none() || static_cast<bool>(pybind11::bool_(result));
        };
    }
    hooks.poll = [&on_poll](double fraction) {
        pybind11::gil_scoped_acquire acquire;
        if (PyErr_CheckSignals() != 0) throw pybind11::error_already_set();
        if (!on_poll.is_none()) on_poll(fraction);
        return false;
    };
    return hooks;
}

}  // namespace lowrank::bindings
