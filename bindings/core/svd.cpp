// Bindings for the SVD area: svd, randomized_svd, singular_values, gaussian_sketch.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <optional>
#include <string>

#include "numpy_arrays.hpp"
#include "register.hpp"
#include "signals.hpp"
#include "svd.hpp"

namespace lowrank::bindings {
namespace {

template <class T>
py::tuple to_tuple(SvdResult<T>&& r) {
    return py::make_tuple(to_numpy(std::move(r.U)), to_numpy(std::move(r.S)),
                          to_numpy(std::move(r.Vh)));
}

template <class T>
py::tuple svd(const py::array_t<T>& a, index k) {
    const ConstView<T> view = view_of(a, "A");
    SvdResult<T> result;
    {
        py::gil_scoped_release release;
        result = exact_svd(view, k);
    }
    return to_tuple(std::move(result));
}

template <class T>
py::tuple randomized(const py::array_t<T>& a, index k, index sketch_columns, index power_iters,
                     std::uint64_t seed, const std::optional<py::array_t<T>>& sketch,
                     bool mixed_precision, index block_bytes) {
    if (block_bytes < 1) throw std::invalid_argument("block_bytes must be >= 1");
    const ConstView<T> view = view_of(a, "A");
    std::optional<ConstView<T>> sketch_view;
    if (sketch) sketch_view = view_of(*sketch, "sketch");
    const RandomizedSvdOptions options{k,    sketch_columns,  power_iters,
                                       seed, mixed_precision, block_bytes};
    StopPoll stop = python_signal_poll();
    SvdResult<T> result;
    {
        py::gil_scoped_release release;
        result = randomized_svd(view, options, sketch_view ? &*sketch_view : nullptr, &stop);
    }
    return to_tuple(std::move(result));
}

template <class T>
py::array_t<T> stack_singular_values(const py::array_t<T>& a) {
    const Stack<T> s = stack_of(a, "A");
    const index p = std::min(s.rows, s.cols);
    py::array_t<T> out({static_cast<py::ssize_t>(s.batch), static_cast<py::ssize_t>(p)});
    T* out_data = out.mutable_data();
    {
        py::gil_scoped_release release;
        singular_values_batched(s.data, s.batch, s.rows, s.cols, out_data);
    }
    return out;
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
    m.def("randomized_svd", &randomized<T>, py::arg("A").noconvert(), py::arg("k"),
          py::arg("sketch_columns"), py::arg("power_iters"), py::arg("seed"),
          py::arg("sketch").noconvert() = py::none(), py::arg("mixed_precision") = true,
          py::arg("block_bytes") = RandomizedSvdOptions{}.block_bytes,
          "Randomized SVD (Halko-Martinsson-Tropp) with a Philox or given sketch; float64\n"
          "power iterations on a float32 copy of A where safe, unless mixed_precision=False.");
    m.def("singular_values", &stack_singular_values<T>, py::arg("A").noconvert(),
          "Singular values of a C-contiguous (batch, m, n) stack: (batch, min(m, n)).");
}

}  // namespace

void register_svd(py::module_& m) {
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
