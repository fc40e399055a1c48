// Bindings for the SVD area: svd, randomized_svd and its options, singular_values,
// gaussian_sketch.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <algorithm>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "common/interruptible.hpp"
#include "common/numpy_arrays.hpp"
#include "core/register.hpp"
#include "core/svd_tuple.hpp"
#include "common/signals.hpp"
#include "lowrank/svd/adaptive.hpp"
#include "lowrank/svd/error_estimate.hpp"
#include "lowrank/svd/exact.hpp"
#include "lowrank/svd/randomized.hpp"
#include "lowrank/svd/sketch.hpp"
#include "lowrank/spectrum/singular_values.hpp"
#include "lowrank/common/svd_options.hpp"

namespace lowrank::bindings {
namespace {

// mixed_precision as Python spells it: "auto" (verified), "fast" or "off".
const std::vector<std::pair<const char*, MixedPrecision>>& precision_choices() {
    static const std::vector<std::pair<const char*, MixedPrecision>> choices{
        {"auto", MixedPrecision::verified},
        {"fast", MixedPrecision::fast},
        {"off", MixedPrecision::off}};
    return choices;
}

MixedPrecision precision_named(const std::string& name) {
    for (const auto& [text, value] : precision_choices()) {
        if (name == text) return value;
    }
    throw std::invalid_argument("mixed_precision must be 'auto', 'fast' or 'off'");
}

std::string precision_name(MixedPrecision value) {
    for (const auto& [text, choice] : precision_choices()) {
        if (choice == value) return text;
    }
    throw std::logic_error("a mixed_precision without a name");
}

// RandomizedSvdOptions and its tuning part (cpp/lowrank/common/svd_options.hpp), bound once: both cores'
// randomized_svd take this one type (lowrank_core._cuda imports _core for it).
// Fields are checked where the SVD starts (validate), not when they are set.
void bind_randomized_svd_options(py::module_& m) {
    using Tuning = RandomizedSvdTuning;
    using Options = RandomizedSvdOptions;
    const Tuning defaults;
    py::class_<Tuning>(m, "RandomizedSvdTuning",
                       "How the CPU core runs a randomized SVD (none of it changes what is\n"
                       "computed beyond rounding); for tests and the studies in benchmarks/.")
        .def(py::init([](index block_bytes, double amx_limit, double copy_range_limit,
                         double amx_one_piece_limit, double leak_margin) {
                 return Tuning{block_bytes, amx_limit, copy_range_limit, amx_one_piece_limit,
                               leak_margin};
             }),
             py::kw_only(), py::arg("block_bytes") = defaults.block_bytes,
             py::arg("amx_limit") = defaults.amx_limit,
             py::arg("copy_range_limit") = defaults.copy_range_limit,
             py::arg("amx_one_piece_limit") = defaults.amx_one_piece_limit,
             py::arg("leak_margin") = defaults.leak_margin)
        .def_readwrite("block_bytes", &Tuning::block_bytes)
        .def_readwrite("amx_limit", &Tuning::amx_limit)
        .def_readwrite("copy_range_limit", &Tuning::copy_range_limit)
        .def_readwrite("amx_one_piece_limit", &Tuning::amx_one_piece_limit)
        .def_readwrite("leak_margin", &Tuning::leak_margin)
        .def("__repr__", [](const Tuning& t) {
            return py::str("RandomizedSvdTuning(block_bytes={}, amx_limit={}, "
                           "copy_range_limit={}, amx_one_piece_limit={}, leak_margin={})")
                .format(t.block_bytes, t.amx_limit, t.copy_range_limit, t.amx_one_piece_limit,
                        t.leak_margin);
        });
    const Options initial;
    py::class_<Options>(m, "RandomizedSvdOptions",
                        "One randomized SVD's contract (both cores): rank k, sketch_columns l,\n"
                        "power_iters, seed, mixed_precision ('auto', 'fast' or 'off'; the CPU\n"
                        "core's) and tuning (RandomizedSvdTuning).")
        .def(py::init([](index rank, index sketch_columns, index power_iters,
                         std::uint64_t seed, const std::string& mixed_precision,
                         const Tuning& tuning) {
                 return Options{rank, sketch_columns, power_iters, seed,
                                precision_named(mixed_precision), tuning};
             }),
             py::kw_only(), py::arg("rank") = initial.rank,
             py::arg("sketch_columns") = initial.sketch_columns,
             py::arg("power_iters") = initial.power_iters, py::arg("seed") = initial.seed,
             py::arg("mixed_precision") = precision_name(initial.mixed_precision),
             py::arg("tuning") = initial.tuning)
        .def_readwrite("rank", &Options::rank)
        .def_readwrite("sketch_columns", &Options::sketch_columns)
        .def_readwrite("power_iters", &Options::power_iters)
        .def_readwrite("seed", &Options::seed)
        .def_property(
            "mixed_precision", [](const Options& o) { return precision_name(o.mixed_precision); },
            [](Options& o, const std::string& name) { o.mixed_precision = precision_named(name); })
        .def_readwrite("tuning", &Options::tuning)
        .def("__repr__", [](const Options& o) {
            return py::str("RandomizedSvdOptions(rank={}, sketch_columns={}, power_iters={}, "
                           "seed={}, mixed_precision='{}', tuning={})")
                .format(o.rank, o.sketch_columns, o.power_iters, o.seed,
                        precision_name(o.mixed_precision), py::repr(py::cast(o.tuning)));
        });
}

template <class T>
py::tuple svd(const py::array_t<T>& a, index k) {
    const ConstView<T> view = view_of(a, "A");
    return to_tuple(run_interruptible(worth_a_thread(view.rows, view.cols), {a},
                                      [view, k] { return exact_svd(view, k); }));
}

template <class T>
py::tuple randomized(const py::array_t<T>& a, const RandomizedSvdOptions& options,
                     const std::optional<py::array_t<T>>& sketch) {
    const ConstView<T> view = view_of(a, "A");
    std::optional<ConstView<T>> sketch_view;
    if (sketch) sketch_view = view_of(*sketch, "sketch");
    StopPoll stop = python_signal_poll();
    SvdResult<T> result;
    {
        py::gil_scoped_release release;
        result = randomized_svd(view, options, sketch_view ? &*sketch_view : nullptr, &stop);
    }
    return to_tuple(std::move(result));
}

Norm norm_named(const std::string& name) {
    if (name == "fro") return Norm::Frobenius;
    if (name == "2") return Norm::Spectral;
    throw std::invalid_argument("ord must be 'fro' or 2");
}

template <class T>
py::tuple to_tolerance(const py::array_t<T>& a, double tol, const std::string& ord,
                       index max_rank, index block_size, index power_iters, std::uint64_t seed,
                       index probes, index error_steps,
                       const std::optional<py::array_t<T>>& sketch) {
    const ConstView<T> view = view_of(a, "A");
    std::optional<ConstView<T>> sketch_view;
    if (sketch) sketch_view = view_of(*sketch, "sketch");
    ToleranceSvdOptions options;
    options.tol = tol;
    options.norm = norm_named(ord);
    options.max_rank = max_rank;
    options.block_size = block_size;
    options.power_iters = power_iters;
    options.seed = seed;
    options.probes = probes;
    options.error_steps = error_steps;
    StopPoll stop = python_signal_poll();
    ToleranceSvdResult<T> result;
    {
        py::gil_scoped_release release;
        result = randomized_svd_to_tolerance(view, options, sketch_view ? &*sketch_view : nullptr,
                                             &stop);
    }
    py::dict info;
    info["error"] = result.error;
    info["error_bound"] = result.error_bound;
    info["norm"] = result.norm;
    info["basis_columns"] = result.basis_columns;
    info["reached"] = result.reached;
    return py::make_tuple(to_numpy(std::move(result.svd.U)), to_numpy(std::move(result.svd.S)),
                          to_numpy(std::move(result.svd.Vh)), info);
}

template <class T>
py::tuple error_of(const py::array_t<T>& a, const py::array_t<T>& u, const py::array_t<T>& s,
                   const py::array_t<T>& vh, const std::string& ord, index probes, index steps,
                   std::uint64_t seed) {
    const ConstView<T> view = view_of(a, "A"), u_view = view_of(u, "U"), vh_view = view_of(vh, "Vh");
    if (s.ndim() != 1 || s.shape(0) != u_view.cols || !(s.flags() & py::array::c_style)) {
        throw std::invalid_argument("S must be 1-D with one value per column of U");
    }
    const T* values = s.data();
    const Norm norm = norm_named(ord);
    StopPoll stop = python_signal_poll();
    ErrorEstimate e;
    {
        py::gil_scoped_release release;
        e = estimate_error(view, u_view, values, vh_view, norm, probes, steps, seed, &stop);
    }
    return py::make_tuple(e.estimate, e.bound);
}

template <class T>
py::array_t<T> stack_singular_values(const py::array_t<T>& a) {
    const Stack<T> s = stack_of(a, "A");
    const index p = std::min(s.rows, s.cols);
    std::vector<T> values = run_interruptible(
        worth_a_thread(s.rows, s.cols, s.batch), {a}, [s, p] {
            std::vector<T> out(static_cast<std::size_t>(s.batch * p));
            singular_values_batched(s.data, s.batch, s.rows, s.cols, out.data());
            return out;
        });
    const auto item = static_cast<py::ssize_t>(sizeof(T));
    return adopt(std::move(values), {static_cast<py::ssize_t>(s.batch), static_cast<py::ssize_t>(p)},
                 {item * std::max<py::ssize_t>(p, 1), item});
}

template <class T>
py::array_t<T> sketch(index rows, index cols, std::uint64_t seed) {
    if (rows < 0 || cols < 0) throw std::invalid_argument("rows and cols must be >= 0");
    Matrix<T> omega;
    {
        py::gil_scoped_release release;
        omega = gaussian_sketch<T>(rows, cols, seed);
    }
    return to_numpy(std::move(omega));
}

template <class T>
void define(py::module_& m) {
    m.def("svd", &svd<T>, py::arg("A").noconvert(), py::arg("k"),
          "Top-k SVD (LAPACK gesdd): (U, S, Vh), U's largest entries positive.");
    m.def("randomized_svd", &randomized<T>, py::arg("A").noconvert(), py::arg("options"),
          py::arg("sketch").noconvert() = py::none(),
          "Randomized SVD (Halko-Martinsson-Tropp) as RandomizedSvdOptions say, with the\n"
          "Philox sketch for options.seed or the given one (n, options.sketch_columns).");
    m.def("randomized_svd_to_tolerance", &to_tolerance<T>, py::arg("A").noconvert(),
          py::arg("tol"), py::arg("ord"), py::arg("max_rank"), py::arg("block_size"),
          py::arg("power_iters"), py::arg("seed"), py::arg("probes"), py::arg("error_steps"),
          py::arg("sketch").noconvert() = py::none(),
          "Randomized SVD to a relative tolerance in ord ('fro' or '2'), rank at most\n"
          "max_rank (0: min(m, n)): (U, S, Vh, info).");
    m.def("estimate_error", &error_of<T>, py::arg("A").noconvert(), py::arg("U").noconvert(),
          py::arg("S").noconvert(), py::arg("Vh").noconvert(), py::arg("ord"),
          py::arg("probes"), py::arg("power_steps"), py::arg("seed"),
          "||A - U diag(S) Vh|| in ord ('fro' exactly, '2' estimated): (estimate, bound).");
    m.def("singular_values", &stack_singular_values<T>, py::arg("A").noconvert(),
          "Singular values of a C-contiguous (batch, m, n) stack: (batch, min(m, n)).");
}

}  // namespace

void register_svd(py::module_& m) {
    bind_randomized_svd_options(m);
    define<float>(m);
    define<double>(m);
    m.def(
        "gaussian_sketch",
        [](index rows, index cols, std::uint64_t seed, const std::string& dtype) -> py::object {
            if (dtype == "float32") return sketch<float>(rows, cols, seed);
            if (dtype == "float64") return sketch<double>(rows, cols, seed);
            throw std::invalid_argument("dtype must be 'float32' or 'float64'");
        },
        py::arg("rows"), py::arg("cols"), py::arg("seed"), py::arg("dtype") = "float64",
        "The Philox Gaussian sketch (rows, cols) for a seed, as randomized_svd draws it.");
}

}  // namespace lowrank::bindings
