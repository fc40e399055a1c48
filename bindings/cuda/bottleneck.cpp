// CUDA bindings for the bottleneck area: the GPU network for float32 and float64 and a
// factory that picks one by dtype (mirrors bindings/core/bottleneck.cpp). Device
// arrays arrive as objects with __cuda_array_interface__ (device_arrays.hpp), with
// the device; calls that take no array take CuPy's current stream. The initial weights
// arrive as the NumPy arrays the CPU network drew. Training runs with the GIL released
// (python_training_hooks: bottleneck_config.hpp).
#include <pybind11/functional.h>
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cstdint>
#include <initializer_list>
#include <string>
#include <utility>
#include <vector>

#include "common/bottleneck_config.hpp"
#include "cuda/device_arrays.hpp"
#include "cuda/register.hpp"
#include "lowrank/gpu/bottleneck.hpp"

namespace lowrank::bindings {
namespace {

template <class T>
py::array_t<T> host_array(const std::vector<T>& values) {
    py::array_t<T> out(static_cast<py::ssize_t>(values.size()));
    std::copy(values.begin(), values.end(), out.mutable_data());
    return out;
}

// A column-major matrix as a (rows, cols) NumPy array (a copy).
template <class T>
py::array_t<T> host_array(const Matrix<T>& m) {
    py::array_t<T> out({static_cast<py::ssize_t>(m.rows), static_cast<py::ssize_t>(m.cols)});
    auto view = out.template mutable_unchecked<2>();
    for (index i = 0; i < m.rows; ++i) {
        for (index j = 0; j < m.cols; ++j) view(i, j) = m(i, j);
    }
    return out;
}

// A 2-D NumPy array (any layout; forcecast to T by pybind11) as a core matrix.
template <class T>
Matrix<T> matrix_of(const py::array_t<T, py::array::forcecast>& array) {
    if (array.ndim() != 2) throw std::invalid_argument("an initial weight must be 2-D");
    auto view = array.template unchecked<2>();
    Matrix<T> out(view.shape(0), view.shape(1));
    for (index i = 0; i < out.rows; ++i) {
        for (index j = 0; j < out.cols; ++j) out(i, j) = view(i, j);
    }
    return out;
}

template <class T>
py::array_t<double> fit(gpu::GpuBottleneck<T>& net, const py::object& a_array,
                        const py::object& on_epoch, const py::object& on_poll, int device) {
    const DeviceArray a = device_array(a_array, "A");
    const ConstView<T> view = view_of<T>(a);
    const TrainingHooks hooks = python_training_hooks(on_epoch, on_poll);
    {
        py::gil_scoped_release release;
        net.fit(device, stream_of(a), view, hooks);
    }
    return host_array(net.loss_history());
}

template <class T>
void define(py::module_& m, const char* name) {
    using Net = gpu::GpuBottleneck<T>;
    // Runs f(resources) on `device`/`stream` with the GIL released.
    auto on_device = [](int device, cudaStream_t stream, auto&& f) {
        py::gil_scoped_release release;
        const gpu::Resources resources(device, stream);
        return f(resources);
    };
    // Writes write(resources, out) into `out`, a Fortran-ordered device array of
    // `shape`, on its stream.
    auto into = [on_device](const py::object& out, std::initializer_list<index> shape,
                            int device, auto&& write) {
        const DeviceArray o = device_array(out, "out");
        T* data = contiguous_of<T>(o, shape, true);
        on_device(device, stream_of(o), [&](const gpu::Resources& r) {
            write(r, data);
            return 0;
        });
    };
    py::class_<Net>(m, name,
                    "The linear bottleneck network on the GPU (see cuda/lowrank/gpu/bottleneck.hpp). "
                    "Not thread-safe.")
        .def_property_readonly("widths", [](const Net& n) { return n.config().widths; })
        .def_property_readonly("rank", &Net::rank)
        .def_property_readonly("scale", &Net::scale,
                               "s = ||A||_F / sqrt(m) of the last fit (1 before)")
        .def_property_readonly("steps_taken", &Net::steps_taken)
        .def_property_readonly("device", &Net::device,
                               "The GPU that holds the parameters (-1 before the first fit)")
        .def_property_readonly("loss_history",
                               [](const Net& n) { return host_array(n.loss_history()); })
        .def("fit", &fit<T>, py::arg("A"), py::arg("on_epoch"), py::arg("on_poll"),
             py::arg("device"),
             "Trains from the initial weights on a device matrix A, on its stream; returns "
             "the loss history.")
        .def(
            "matrix",
            [into](const Net& n, const py::object& out, int device) {
                into(out, {n.config().widths.back(), n.config().widths.front()}, device,
                     [&](const gpu::Resources& r, T* data) { n.matrix(r, data); });
            },
            py::arg("out"), py::arg("device"),
            "The learned map W into out (m, n), Fortran-ordered.")
        .def(
            "left_factor",
            [into](const Net& n, const py::object& out, int device) {
                into(out, {n.config().widths.back(), n.rank()}, device,
                     [&](const gpu::Resources& r, T* data) { n.left_factor(r, data); });
            },
            py::arg("out"), py::arg("device"), "L into out (m, k), Fortran-ordered.")
        .def(
            "right_factor",
            [into](const Net& n, const py::object& out, int device) {
                into(out, {n.rank(), n.config().widths.front()}, device,
                     [&](const gpu::Resources& r, T* data) { n.right_factor(r, data); });
            },
            py::arg("out"), py::arg("device"), "R into out (k, n), Fortran-ordered.")
        .def(
            "intercept",
            [into](const Net& n, const py::object& out, int device) {
                into(out, {n.config().widths.back()}, device,
                     [&](const gpu::Resources& r, T* data) { n.intercept(r, data); });
            },
            py::arg("out"), py::arg("device"), "The output for x = 0 into out (m,).")
        .def(
            "predict",
            [on_device](const Net& n, const py::object& x, const py::object& out, int device) {
                const DeviceArray xa = device_array(x, "X");
                const T* xd = contiguous_with_ndim<const T>(xa, 2, false);
                const index batch = xa.shape[0];
                if (xa.shape[1] != n.config().widths.front()) {
                    throw std::invalid_argument("X has the wrong number of columns");
                }
                T* od = contiguous_of<T>(device_array(out, "out"),
                                         {batch, n.config().widths.back()}, false);
                on_device(device, stream_of(xa), [&](const gpu::Resources& r) {
                    n.predict(r, xd, batch, od);
                    return 0;
                });
            },
            py::arg("X"), py::arg("out"), py::arg("device"),
            "The learned map on a C-contiguous (batch, n) X into a C-contiguous (batch, m) "
            "out, on X's stream.")
        .def(
            "singular_values",
            [on_device](const Net& n, int device, std::uintptr_t stream) {
                const std::vector<T> sigma =
                    on_device(device, stream_of(stream),
                              [&](const gpu::Resources& r) { return n.singular_values(r); });
                return host_array(sigma);
            },
            py::arg("device"), py::arg("stream"),
            "The k singular values of the learned map (a NumPy array: k numbers).")
        .def(
            "numerical_rank",
            [on_device](const Net& n, int device, std::uintptr_t stream) {
                return on_device(device, stream_of(stream),
                                 [&](const gpu::Resources& r) { return n.numerical_rank(r); });
            },
            py::arg("device"), py::arg("stream"))
        .def(
            "parameters",
            [](const Net& n, int device, std::uintptr_t stream) {
                std::pair<std::vector<Matrix<T>>, std::vector<std::vector<T>>> p;
                if (n.device() < 0) {
                    p = n.parameters(nullptr);
                } else {
                    py::gil_scoped_release release;
                    const gpu::Resources resources(device, stream_of(stream));
                    p = n.parameters(&resources);
                }
                py::list weights, biases;
                for (const Matrix<T>& w : p.first) weights.append(host_array(w));
                for (const std::vector<T>& b : p.second) biases.append(host_array(b));
                return py::make_tuple(weights, biases);
            },
            py::arg("device"), py::arg("stream"),
            "(weights, biases) in the trained units, copied to NumPy (the initial ones "
            "before the first fit).");
}

template <class T>
py::object make(const BottleneckConfig& config, const py::list& weights, const py::list& biases) {
    std::vector<Matrix<T>> w;
    std::vector<std::vector<T>> b;
    for (const py::handle& item : weights) {
        w.push_back(matrix_of<T>(py::cast<py::array_t<T, py::array::forcecast>>(item)));
    }
    for (const py::handle& item : biases) {
        const auto array = py::cast<py::array_t<T, py::array::forcecast>>(item);
        if (array.ndim() != 1) throw std::invalid_argument("an initial bias must be 1-D");
        auto view = array.template unchecked<1>();
        std::vector<T> values(static_cast<std::size_t>(view.shape(0)));
        for (py::ssize_t i = 0; i < view.shape(0); ++i) values[static_cast<std::size_t>(i)] = view(i);
        b.push_back(std::move(values));
    }
    return py::cast(gpu::GpuBottleneck<T>(config, std::move(w), std::move(b)));
}

}  // namespace

void register_cuda_bottleneck(py::module_& m) {
    define<float>(m, "BottleneckNetworkFloat32");
    define<double>(m, "BottleneckNetworkFloat64");
    m.def(
        "bottleneck_network",
        [](const std::string& dtype, const std::vector<index>& widths, bool bias,
           const std::string& init, const std::string& optimizer, double lr, index epochs,
           index samples, index batch_size, const std::string& data, std::uint64_t seed,
           const py::list& weights, const py::list& biases) {
            const BottleneckConfig config = make_bottleneck_config(
                widths, bias, init, optimizer, lr, epochs, samples, batch_size, data, seed);
            if (dtype == "float32") return make<float>(config, weights, biases);
            if (dtype == "float64") return make<double>(config, weights, biases);
            throw std::invalid_argument("dtype must be 'float32' or 'float64', got '" + dtype +
                                        "'");
        },
        py::arg("dtype"), py::arg("widths"), py::arg("bias"), py::arg("init"),
        py::arg("optimizer"), py::arg("lr"), py::arg("epochs"), py::arg("samples"),
        py::arg("batch_size"), py::arg("data"), py::arg("seed"), py::arg("weights"),
        py::arg("biases"),
        "A new GPU bottleneck network with the given initial weights and biases (those the "
        "CPU network draws from `seed`). Needs no GPU until fit.");
}

}  // namespace lowrank::bindings
