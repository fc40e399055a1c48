// Bindings for the bottleneck area: the network class for float32 and float64 and a
// factory that picks one by dtype. Training runs with the GIL released
// (python_training_hooks: bottleneck_config.hpp).
#include <pybind11/functional.h>
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <string>
#include <vector>

#include "common/bottleneck_config.hpp"
#include "common/numpy_arrays.hpp"
#include "core/register.hpp"
#include "lowrank/bottleneck/network.hpp"

namespace lowrank::bindings {
namespace {

// A C-contiguous (b, width) batch: the core's column-major (width x b), ld = width.
template <class T>
const T* batch_of(const py::array_t<T>& x, index width, const char* name) {
    if (x.ndim() != 2 || x.shape(1) != width || !(x.flags() & py::array::c_style)) {
        throw std::invalid_argument(std::string(name) + " must be a C-contiguous (batch, " +
                                    std::to_string(width) + ") array");
    }
    require_aligned(x, name);
    return x.data();
}

// (b, m) = apply(network, X) for a (b, n) batch X, `apply` being forward or predict.
template <class T>
py::array_t<T> on_batch(BottleneckNetwork<T>& network, const py::array_t<T>& x,
                        void (BottleneckNetwork<T>::*apply)(const T*, index, index, T*, index)) {
    const T* data = batch_of(x, network.input_width(), "X");
    const index b = x.shape(0), out_width = network.output_width();
    py::array_t<T> out({static_cast<py::ssize_t>(b), static_cast<py::ssize_t>(out_width)});
    T* out_data = out.mutable_data();
    py::gil_scoped_release release;
    (network.*apply)(data, b, network.input_width(), out_data, out_width);
    return out;
}

template <class T>
py::list matrices_to_list(const std::vector<Matrix<T>>& matrices) {
    py::list out;
    for (Matrix<T> m : matrices) out.append(to_numpy(std::move(m)));
    return out;
}

template <class T>
py::list vectors_to_list(const std::vector<std::vector<T>>& vectors) {
    py::list out;
    for (std::vector<T> v : vectors) out.append(to_numpy(std::move(v)));
    return out;
}

template <class T>
std::vector<Matrix<T>> matrices_from(const py::list& arrays, const char* name) {
    std::vector<Matrix<T>> out;
    for (const py::handle& item : arrays) {
        out.push_back(to_matrix(view_of(py::cast<py::array_t<T>>(item), name)));
    }
    return out;
}

template <class T>
std::vector<std::vector<T>> vectors_from(const py::list& arrays, const char* name) {
    std::vector<std::vector<T>> out;
    for (const py::handle& item : arrays) {
        const auto array = py::cast<py::array_t<T, py::array::c_style | py::array::forcecast>>(item);
        if (array.ndim() != 1) {
            throw std::invalid_argument(std::string(name) + " must be a 1-D array");
        }
        out.emplace_back(array.data(), array.data() + array.shape(0));
    }
    return out;
}

// Pickling: the configuration, by the Python layer's option names, and the state
// (BottleneckState). Version 2 of the format (version 1, without tol and max_epochs,
// still loads).
constexpr int kPickleVersion = 2;

template <class T>
py::tuple pickled(const BottleneckNetwork<T>& net) {
    const BottleneckConfig& c = net.config();
    const py::tuple config = py::make_tuple(
        c.widths, c.bias, choice_name(c.init, init_choices()),
        choice_name(c.optimizer, optimizer_choices()), c.lr, c.epochs, c.samples, c.batch_size,
        choice_name(c.data, data_choices()), c.seed, c.tol, c.max_epochs);
    BottleneckState<T> s = net.state();
    const py::tuple state = py::make_tuple(
        matrices_to_list(s.weights), vectors_to_list(s.biases),
        matrices_to_list(s.weight_moment1), matrices_to_list(s.weight_moment2),
        vectors_to_list(s.bias_moment1), vectors_to_list(s.bias_moment2), s.steps, s.scale,
        to_numpy(std::move(s.loss_history)));
    return py::make_tuple(kPickleVersion, config, state);
}

template <class T>
BottleneckNetwork<T> unpickled(const py::tuple& pickle) {
    const int version = pickle.size() == 3 ? pickle[0].cast<int>() : 0;
    if (version != 1 && version != kPickleVersion) {
        throw std::invalid_argument("not a pickled bottleneck network of this version");
    }
    const auto config = pickle[1].cast<py::tuple>();
    const auto state = pickle[2].cast<py::tuple>();
    if (config.size() != (version == 1 ? 10u : 12u) || state.size() != 9) {
        throw std::invalid_argument("not a pickled bottleneck network of this version");
    }
    BottleneckNetwork<T> net(make_bottleneck_config(
        config[0].cast<std::vector<index>>(), config[1].cast<bool>(),
        config[2].cast<std::string>(), config[3].cast<std::string>(), config[4].cast<double>(),
        config[5].cast<index>(), config[6].cast<index>(), config[7].cast<index>(),
        config[8].cast<std::string>(), config[9].cast<std::uint64_t>(),
        version == 1 ? 0.0 : config[10].cast<double>(),
        version == 1 ? index{1000} : config[11].cast<index>()));
    BottleneckState<T> s;
    s.weights = matrices_from<T>(state[0].cast<py::list>(), "a weight");
    s.biases = vectors_from<T>(state[1].cast<py::list>(), "a bias");
    s.weight_moment1 = matrices_from<T>(state[2].cast<py::list>(), "a weight moment");
    s.weight_moment2 = matrices_from<T>(state[3].cast<py::list>(), "a weight moment");
    s.bias_moment1 = vectors_from<T>(state[4].cast<py::list>(), "a bias moment");
    s.bias_moment2 = vectors_from<T>(state[5].cast<py::list>(), "a bias moment");
    s.steps = state[6].cast<index>();
    s.scale = state[7].cast<double>();
    const auto losses =
        state[8].cast<py::array_t<double, py::array::c_style | py::array::forcecast>>();
    s.loss_history.assign(losses.data(), losses.data() + losses.size());
    net.set_state(std::move(s));
    return net;
}

template <class T>
py::tuple gradients_tuple(const BottleneckNetwork<T>& net, double loss) {
    return py::make_tuple(loss, matrices_to_list(net.weight_gradients()),
                          vectors_to_list(net.bias_gradients()));
}

template <class T>
py::array_t<double> fit(BottleneckNetwork<T>& net, const py::array_t<T>& a,
                               const py::object& on_epoch, const py::object& on_poll) {
    const ConstView<T> view = view_of(a, "A");
    const TrainingHooks hooks = python_training_hooks(on_epoch, on_poll);
    {
        py::gil_scoped_release release;
        net.fit(view, hooks);
    }
    return to_numpy(std::vector<double>(net.loss_history()));
}

template <class T>
py::array_t<double> fit_design(BottleneckNetwork<T>& net, const py::array_t<T>& x,
                               const py::array_t<T>& t, index bias_from, double loss_offset,
                               const py::object& on_epoch, const py::object& on_poll) {
    // (cols, n) and (cols, m) C-contiguous: the core's (n x cols) and (m x cols).
    const T* xd = batch_of(x, net.input_width(), "X");
    const T* td = batch_of(t, net.output_width(), "T");
    if (t.shape(0) != x.shape(0)) {
        throw std::invalid_argument("X and T must hold the same number of vectors");
    }
    const ConstView<T> xv{xd, net.input_width(), x.shape(0), net.input_width(), false};
    const ConstView<T> tv{td, net.output_width(), t.shape(0), net.output_width(), false};
    const TrainingHooks hooks = python_training_hooks(on_epoch, on_poll);
    {
        py::gil_scoped_release release;
        net.fit_design(xv, tv, bias_from, loss_offset, hooks);
    }
    return to_numpy(std::vector<double>(net.loss_history()));
}

template <class T>
py::array_t<double> fit_pairs(BottleneckNetwork<T>& net, const py::array_t<T>& x,
                              const py::array_t<T>& y, const py::object& on_epoch,
                              const py::object& on_poll) {
    const T* xd = batch_of(x, net.input_width(), "X");
    const T* yd = batch_of(y, net.output_width(), "Y");
    if (y.shape(0) != x.shape(0)) {
        throw std::invalid_argument("X and Y must hold the same number of samples");
    }
    const ConstView<T> xv{xd, net.input_width(), x.shape(0), net.input_width(), false};
    const ConstView<T> yv{yd, net.output_width(), y.shape(0), net.output_width(), false};
    const TrainingHooks hooks = python_training_hooks(on_epoch, on_poll);
    {
        py::gil_scoped_release release;
        net.fit_pairs(xv, yv, hooks);
    }
    return to_numpy(std::vector<double>(net.loss_history()));
}

template <class T>
void define(py::module_& m, const char* name) {
    using Net = BottleneckNetwork<T>;
    py::class_<Net>(m, name,
                    "The linear bottleneck network (see cpp/lowrank/bottleneck/network.hpp). Not thread-safe.")
        .def_property_readonly("widths", [](const Net& n) { return n.config().widths; })
        .def_property_readonly("rank", &Net::rank)
        .def_property_readonly("scale", &Net::scale, "s = ||A||_F / ||W0||_F of the last fit (1 before)")
        .def_property_readonly("steps_taken", &Net::steps_taken)
        .def_property_readonly(
            "loss_history",
            [](const Net& n) { return to_numpy(std::vector<double>(n.loss_history())); })
        .def("parameters",
             [](const Net& n) {
                 return py::make_tuple(matrices_to_list(n.weights()), vectors_to_list(n.biases()));
             },
             "(weights, biases) in the trained units: weight l is (widths[l+1], widths[l]).")
        .def(
            "set_parameters",
            [](Net& n, const std::vector<py::array_t<T>>& weights,
               const std::vector<py::array_t<T>>& biases) {
                std::vector<Matrix<T>> w;
                std::vector<std::vector<T>> b;
                for (const auto& array : weights) w.push_back(to_matrix(view_of(array, "weight")));
                for (const auto& array : biases) {
                    if (array.ndim() != 1 || !(array.flags() & py::array::c_style)) {
                        throw std::invalid_argument("a bias must be a contiguous 1-D array");
                    }
                    require_aligned(array, "bias");
                    b.emplace_back(array.data(), array.data() + array.shape(0));
                }
                n.set_parameters(w, b);
            },
            py::arg("weights"), py::arg("biases"), "Sets the parameters; resets the optimizer.")
        .def(
            "forward",
            [](Net& n, const py::array_t<T>& x) { return on_batch(n, x, &Net::forward); },
            py::arg("X").noconvert(), "The raw network (trained units) on a (b, n) batch.")
        .def(
            "predict",
            [](Net& n, const py::array_t<T>& x) { return on_batch(n, x, &Net::predict); },
            py::arg("X").noconvert(), "The learned map on a (b, n) batch, scaled back.")
        .def(
            "batch_gradients",
            [](Net& n, const py::array_t<T>& x, const py::array_t<T>& t) {
                const T* xd = batch_of(x, n.input_width(), "X");
                const T* td = batch_of(t, n.output_width(), "T");
                if (t.shape(0) != x.shape(0)) {
                    throw std::invalid_argument("X and T must hold the same number of vectors");
                }
                double loss;
                {
                    py::gil_scoped_release release;
                    loss = n.batch_gradients(xd, td, x.shape(0), n.input_width(),
                                             n.output_width());
                }
                return gradients_tuple(n, loss);
            },
            py::arg("X").noconvert(), py::arg("T").noconvert(),
            "MSE of the raw network on (X, T) and its gradients: (loss, dW list, db list).")
        .def(
            "exact_gradients",
            [](Net& n, const py::array_t<T>& a) {
                const ConstView<T> view = view_of(a, "A");
                double loss;
                {
                    py::gil_scoped_release release;
                    loss = n.exact_gradients(view);
                }
                return gradients_tuple(n, loss);
            },
            py::arg("A").noconvert(),
            "||W - A||_F^2 / m + ||c||^2 / m and its gradients: (loss, dW list, db list).")
        .def("step", &Net::step, py::arg("lr"),
             "One optimizer step with the gradients of the last *_gradients call.")
        .def("fit", &fit<T>, py::arg("A").noconvert(), py::arg("on_epoch") = py::none(),
             py::arg("on_poll") = py::none(),
             "Trains from the initial weights; returns the loss history.")
        .def("fit_design", &fit_design<T>, py::arg("X").noconvert(), py::arg("T").noconvert(),
             py::arg("bias_from"), py::arg("loss_offset") = 0.0,
             py::arg("on_epoch") = py::none(), py::arg("on_poll") = py::none(),
             "Trains on the full-batch loss of the design rows X (cols, n) against T (cols, m), "
             "the bias on rows >= bias_from (data='exact').")
        .def("fit_pairs", &fit_pairs<T>, py::arg("X").noconvert(), py::arg("Y").noconvert(),
             py::arg("on_epoch") = py::none(), py::arg("on_poll") = py::none(),
             "Trains on the pairs (X[i], Y[i]) in shuffled mini-batches (data='fixed').")
        .def_property_readonly("converged", &Net::converged,
                               "Whether the last fit stopped by its tol.")
        .def_property_readonly("relative_gradient", &Net::relative_gradient,
                               "The relative gradient norm the last fit measured last (NaN if none).")
        .def("matrix",
             [](const Net& n) {
                 Matrix<T> w;
                 {
                     py::gil_scoped_release release;
                     w = n.matrix();
                 }
                 return to_numpy(std::move(w));
             })
        .def("factors",
             [](const Net& n) {
                 return py::make_tuple(to_numpy(n.left_factor()), to_numpy(n.right_factor()));
             })
        .def("intercept", [](const Net& n) { return to_numpy(n.intercept()); })
        .def("singular_values", [](const Net& n) { return to_numpy(n.singular_values()); })
        .def("numerical_rank", &Net::numerical_rank)
        .def(py::pickle(&pickled<T>, &unpickled<T>));
}

template <class T>
py::object make(const BottleneckConfig& config) {
    return py::cast(BottleneckNetwork<T>(config));
}

}  // namespace

void register_bottleneck(py::module_& m) {
    define<float>(m, "BottleneckNetworkFloat32");
    define<double>(m, "BottleneckNetworkFloat64");
    m.def(
        "bottleneck_network",
        [](const std::string& dtype, const std::vector<index>& widths, bool bias,
           const std::string& init, const std::string& optimizer, double lr, index epochs,
           index samples, index batch_size, const std::string& data, std::uint64_t seed,
           double tol, index max_epochs) {
            const BottleneckConfig config = make_bottleneck_config(
                widths, bias, init, optimizer, lr, epochs, samples, batch_size, data, seed, tol,
                max_epochs);
            if (dtype == "float32") return make<float>(config);
            if (dtype == "float64") return make<double>(config);
            throw std::invalid_argument("dtype must be 'float32' or 'float64', got '" + dtype +
                                        "'");
        },
        py::arg("dtype"), py::arg("widths"), py::arg("bias"), py::arg("init"),
        py::arg("optimizer"), py::arg("lr"), py::arg("epochs"), py::arg("samples"),
        py::arg("batch_size"), py::arg("data"), py::arg("seed"), py::arg("tol") = 0.0,
        py::arg("max_epochs") = 1000,
        "A new bottleneck network with its initial weights drawn from `seed`.");
}

}  // namespace lowrank::bindings
