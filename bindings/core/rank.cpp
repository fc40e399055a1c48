// Bindings for the rank area: matrix_rank, erank, stable_rank, entropy_rank,
// relative_error.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <optional>
#include <string>
#include <vector>

#include "common/interruptible.hpp"
#include "common/numpy_arrays.hpp"
#include "lowrank/spectrum/rank.hpp"
#include "lowrank/svd/adaptive.hpp"
#include "common/signals.hpp"
#include "common/rank_options.hpp"
#include "core/register.hpp"

namespace lowrank::bindings {
namespace {

// `threshold` is None (NumPy's default), or a float64 array of one value per matrix.
template <class T>
py::array_t<std::int64_t> matrix_rank(const py::array_t<T>& a,
                                      const std::optional<py::array_t<double>>& threshold,
                                      bool relative, bool hermitian) {
    const Stack<T> s = stack_of(a, "A");
    Threshold kind = Threshold::Default;
    const double* values = nullptr;
    if (threshold) {
        if (threshold->ndim() != 1 || threshold->shape(0) != s.batch ||
            !(threshold->flags() & py::array::c_style)) {
            throw std::invalid_argument("tol/rtol must hold one value per matrix");
        }
        kind = relative ? Threshold::Relative : Threshold::Absolute;
        values = threshold->data();
    }
    std::vector<py::handle> keep{a};
    if (threshold) keep.push_back(*threshold);
    std::vector<std::int64_t> ranks = run_interruptible(
        worth_a_thread(s.rows, s.cols, s.batch), keep, [s, kind, values, hermitian] {
            std::vector<std::int64_t> out(static_cast<std::size_t>(s.batch));
            matrix_rank_batched(s.data, s.batch, s.rows, s.cols, kind, values, hermitian,
                                out.data());
            return out;
        });
    return to_numpy(std::move(ranks));
}

// `threshold` None: NumPy's default; else absolute (tol) or, `relative`, rtol.
template <class T>
py::tuple randomized_rank_of(const py::array_t<T>& a, std::optional<double> threshold,
                             bool relative, index block_size, index power_iters,
                             std::uint64_t seed, index max_basis) {
    const ConstView<T> view = view_of(a, "A");
    const Threshold kind = !threshold ? Threshold::Default
                                      : (relative ? Threshold::Relative : Threshold::Absolute);
    RankSearchOptions options;
    options.block_size = block_size;
    options.power_iters = power_iters;
    options.seed = seed;
    options.max_basis = max_basis;
    StopPoll stop = python_signal_poll();
    RankSearch found;
    {
        py::gil_scoped_release release;
        found = randomized_rank(view, kind, threshold.value_or(0.0), options, &stop);
    }
    return py::make_tuple(found.rank, found.certified, found.basis_columns,
                          found.residual_bound);
}

template <class T>
py::array_t<double> measure(const py::array_t<T>& a, Measure which) {
    const Stack<T> s = stack_of(a, "A");
    std::vector<double> measures =
        run_interruptible(worth_a_thread(s.rows, s.cols, s.batch), {a}, [s, which] {
            std::vector<double> out(static_cast<std::size_t>(s.batch));
            rank_measure_batched(s.data, s.batch, s.rows, s.cols, which, out.data());
            return out;
        });
    return to_numpy(std::move(measures));
}

template <class T>
double error(const py::array_t<T>& a, const py::array_t<T>& b, const std::string& ord) {
    const ConstView<T> va = view_of(a, "A"), vb = view_of(b, "B");
    const Norm norm = norm_named(ord);
    return run_interruptible(worth_a_thread(va.rows, va.cols), {a, b},
                             [va, vb, norm] { return relative_error(va, vb, norm); });
}

template <class T>
void define(py::module_& m) {
    m.def("matrix_rank", &matrix_rank<T>, py::arg("A").noconvert(), py::arg("threshold"),
          py::arg("relative"), py::arg("hermitian"),
          "Numerical rank of each matrix of a C-contiguous (batch, m, n) stack.");
    m.def("randomized_rank", &randomized_rank_of<T>, py::arg("A").noconvert(),
          py::arg("threshold"), py::arg("relative"), py::arg("block_size"),
          py::arg("power_iters"), py::arg("seed"), py::arg("max_basis") = 0,
          "Numerical rank from a grown basis: (rank, certified, basis_columns, bound);\n"
          "not certified: take matrix_rank.");
    m.def(
        "erank", [](const py::array_t<T>& a) { return measure(a, Measure::Effective); },
        py::arg("A").noconvert(), "(sum s)^2 / sum s^2 of each matrix of a stack.");
    m.def(
        "stable_rank", [](const py::array_t<T>& a) { return measure(a, Measure::Stable); },
        py::arg("A").noconvert(), "||A||_F^2 / s_1^2 of each matrix of a stack.");
    m.def(
        "entropy_rank", [](const py::array_t<T>& a) { return measure(a, Measure::Entropy); },
        py::arg("A").noconvert(), "exp(-sum p log p), p = s / sum s, of each matrix of a stack.");
    m.def("relative_error", &error<T>, py::arg("A").noconvert(), py::arg("B").noconvert(),
          py::arg("ord"), "||A - B|| / ||A|| with ord '2' or 'fro'.");
}

}  // namespace

void register_rank(py::module_& m) {
    define<float>(m);
    define<double>(m);
}

}  // namespace lowrank::bindings
