// Bindings for the SVD area: svd, randomized_svd, singular_values, gaussian_sketch.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <algorithm>
#include <optional>
#include <string>
#include <vector>

#include "common/interruptible.hpp"
#include "common/numpy_arrays.hpp"
#include "common/signals.hpp"
#include "core/register.hpp"
#include "lowrank/backend/blas_lapack.hpp"
#include "lowrank/kernels/amx_product.hpp"
#include "lowrank/kernels/normal_product.hpp"
#include "lowrank/kernels/panel.hpp"
#include "lowrank/runtime/parallel.hpp"
#include "lowrank/spectrum/singular_values.hpp"
#include "lowrank/svd/exact.hpp"
#include "lowrank/svd/randomized.hpp"
#include "lowrank/svd/sketch.hpp"

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
    return to_tuple(run_interruptible(worth_a_thread(view.rows, view.cols), {a},
                                      [view, k] { return exact_svd(view, k); }));
}

template <class T>
py::tuple randomized(const py::array_t<T>& a, index k, index sketch_columns, index power_iters,
                     std::uint64_t seed, const std::optional<py::array_t<T>>& sketch,
                     const std::string& mixed_precision, index block_bytes, double amx_limit,
                     double copy_range_limit, double amx_one_piece_limit, double leak_margin) {
    MixedPrecision precision;
    if (mixed_precision == "auto") {
        precision = MixedPrecision::verified;
    } else if (mixed_precision == "fast") {
        precision = MixedPrecision::fast;
    } else if (mixed_precision == "off") {
        precision = MixedPrecision::off;
    } else {
        throw std::invalid_argument("mixed_precision must be 'auto', 'fast' or 'off'");
    }
    const ConstView<T> view = view_of(a, "A");
    std::optional<ConstView<T>> sketch_view;
    if (sketch) sketch_view = view_of(*sketch, "sketch");
    RandomizedSvdOptions options{k, sketch_columns, power_iters, seed, precision, {}};
    options.tuning = {block_bytes, amx_limit, copy_range_limit, amx_one_piece_limit, leak_margin};
    StopPoll stop = python_signal_poll();
    SvdResult<T> result;
    {
        py::gil_scoped_release release;
        result = randomized_svd(view, options, sketch_view ? &*sketch_view : nullptr, &stop);
    }
    return to_tuple(std::move(result));
}

// M^T (M X), M X or M^T X ("normal", "plain", "transposed") by the randomized SVD's
// kernels in use, or by BLAS when that is "none": exposed for the tests that check
// the kernels against NumPy, and for timing them.
template <class T>
py::object kernel_product(const py::array_t<T>& m, const py::array_t<T>& x,
                          const std::string& which) {
    ConstView<T> mv = view_of(m, "M");
    const ConstView<T> xv = view_of(x, "X");
    const bool plain = which == "plain", kept = which == "normal_kept";
    const bool normal = kept || which == "normal";
    if (!plain && !normal && which != "transposed") {
        throw std::invalid_argument(
            "which must be 'normal', 'normal_kept', 'plain' or 'transposed'");
    }
    if (xv.rows != (normal || plain ? mv.cols : mv.rows)) {
        throw std::invalid_argument("X has the wrong number of rows for M");
    }
    const Matrix<T> xm = to_matrix(xv);
    Matrix<T> out(plain ? mv.rows : mv.cols, xm.cols), y;  // y: sized where it is written
    {
        py::gil_scoped_release release;
        // The kernels read M by rows: a column-major M goes through a row-major copy.
        Matrix<T> copy;
        if (!mv.row_major) {
            copy = Matrix<T>(mv.cols, mv.rows);  // column-major M^T = row-major M
            for (index j = 0; j < mv.cols; ++j)
                for (index i = 0; i < mv.rows; ++i) copy(j, i) = mv(i, j);
            mv = {copy.data(), mv.rows, mv.cols, copy.ld(), true};
        }
        const int threads = core_threads();
        const index l = xm.cols;
        const bool done =
            normal  ? kernel_normal_product(mv, xm, out, threads, nullptr, kept ? &y : nullptr)
            : plain ? kernel_product(mv, xm, out, threads, nullptr)
                    : kernel_transposed_product(mv, xm, out, threads, nullptr);
        if (!done && (plain || normal)) {  // Y = M X: (M^T stored column-major)^T X
            y = Matrix<T>(mv.rows, l);
            Blas<T>::gemm('T', 'N', mv.rows, l, mv.cols, T(1), mv.data, mv.ld, xm.data(),
                          xm.ld(), T(0), y.data(), y.ld());
            if (plain) out = std::move(y);
            else Blas<T>::gemm('N', 'N', mv.cols, l, mv.rows, T(1), mv.data, mv.ld, y.data(),
                               y.ld(), T(0), out.data(), out.ld());
        } else if (!done) {
            Blas<T>::gemm('N', 'N', mv.cols, l, mv.rows, T(1), mv.data, mv.ld, xm.data(), xm.ld(),
                          T(0), out.data(), out.ld());
        }
    }
    if (kept) return py::make_tuple(to_numpy(std::move(out)), to_numpy(std::move(y)));
    return to_numpy(std::move(out));
}

// M^T (M X) on AMX with M in `pieces` (2 or 1) bfloat16 pieces (amx_product.hpp), for
// the tests; None where the product declines (no AMX, or switched off).
py::object amx_product(const py::array_t<float>& m, const py::array_t<float>& x, int pieces) {
    if (pieces != 1 && pieces != 2) throw std::invalid_argument("pieces must be 1 or 2");
    if (!(m.flags() & py::array::c_style)) throw std::invalid_argument("M must be C-contiguous");
    ConstView<float> mv = view_of(m, "M");
    mv = {mv.data, mv.rows, mv.cols, std::max<index>(mv.cols, 1), true};  // also when empty
    const ConstView<float> xv = view_of(x, "X");
    if (xv.rows != mv.cols) throw std::invalid_argument("X has the wrong number of rows for M");
    const Matrix<float> xm = to_matrix(xv);
    Matrix<float> out;
    bool done = false;
    {
        py::gil_scoped_release release;
        done = amx_normal_product(mv, xm, out, core_threads(), nullptr, nullptr,
                                  pieces == 2 ? AmxPieces::two : AmxPieces::one);
    }
    if (!done) return py::none();
    return to_numpy(std::move(out));
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

// singular_values' two-stage path at any size, for the tests of its edge shapes.
template <class T>
py::array_t<T> two_stage_values(const py::array_t<T>& a) {
    const ConstView<T> view = view_of(a, "A");
    std::vector<T> s(static_cast<std::size_t>(std::min(view.rows, view.cols)));
    {
        py::gil_scoped_release release;
        two_stage_singular_values(view, s.data());
    }
    return to_numpy(std::move(s));
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

// The Cholesky-QR steps' products on a panel Y (m x l): Y^T Y (upper triangle,
// float64), and Y R for upper-triangular R (float64), in Y's dtype.
template <class T>
py::array_t<double> panel_gram(const py::array_t<T>& y, int threads) {
    if (threads < 1) throw std::invalid_argument("threads must be >= 1");
    const Matrix<T> ym = to_matrix(view_of(y, "Y"));
    Matrix<double> g(ym.cols, ym.cols);
    {
        py::gil_scoped_release release;
        const PanelThreads scope(threads);
        gram_upper(ym, g);
    }
    return to_numpy(std::move(g));
}

// A process-wide switch for tests and benchmarks: name(enable=None) returns
// (available, enabled before the call) and, given a bool, sets it.
void define_switch(py::module_& m, const char* name, bool (*available)(), bool (*enabled)(),
                   void (*enable)(bool), const char* doc) {
    m.def(
        name,
        [available, enabled, enable](std::optional<bool> on) {
            const bool before = enabled();
            if (on) enable(*on);
            return py::make_tuple(available(), before);
        },
        py::arg("enable") = py::none(), doc);
}

template <class T, bool kUpper>
py::array_t<T> panel_times(const py::array_t<T>& y, const py::array_t<double>& r,
                           int threads) {
    if (threads < 1) throw std::invalid_argument("threads must be >= 1");
    Matrix<T> ym = to_matrix(view_of(y, "Y"));
    const Matrix<double> rm = to_matrix(view_of(r, "R"));
    if (rm.rows != ym.cols || rm.cols != ym.cols) {
        throw std::invalid_argument("R must be square with as many rows as Y has columns");
    }
    {
        py::gil_scoped_release release;
        const PanelThreads scope(threads);
        if (kUpper) {
            times_upper(ym, rm);
        } else {
            times_square(ym, rm);
        }
    }
    return to_numpy(std::move(ym));
}

template <class T>
void define(py::module_& m) {
    m.def("svd", &svd<T>, py::arg("A").noconvert(), py::arg("k"),
          "Top-k SVD (LAPACK gesdd): (U, S, Vh), U's largest entries positive.");
    m.def("randomized_svd", &randomized<T>, py::arg("A").noconvert(), py::arg("k"),
          py::arg("sketch_columns"), py::arg("power_iters"), py::arg("seed"),
          py::arg("sketch").noconvert() = py::none(), py::arg("mixed_precision") = "auto",
          py::arg("block_bytes") = RandomizedSvdTuning{}.block_bytes,
          py::arg("amx_limit") = RandomizedSvdTuning{}.amx_limit,
          py::arg("copy_range_limit") = RandomizedSvdTuning{}.copy_range_limit,
          py::arg("amx_one_piece_limit") = RandomizedSvdTuning{}.amx_one_piece_limit,
          py::arg("leak_margin") = RandomizedSvdTuning{}.leak_margin,
          "Randomized SVD (Halko-Martinsson-Tropp) with a Philox or given sketch; power\n"
          "iterations below A's precision: 'auto' where verified, 'fast', or 'off'.");
    m.def("singular_values", &stack_singular_values<T>, py::arg("A").noconvert(),
          "Singular values of a C-contiguous (batch, m, n) stack: (batch, min(m, n)).");
    m.def("_two_stage_singular_values", &two_stage_values<T>, py::arg("A").noconvert());
    m.def("_kernel_product", &kernel_product<T>, py::arg("M").noconvert(),
          py::arg("X").noconvert(), py::arg("which"),
          "M^T (M X), M X or M^T X by the randomized SVD's kernels in use (tests, timing);\n"
          "'normal_kept' returns (M^T (M X), M X) from the one pass.");
    m.def("_panel_gram", &panel_gram<T>, py::arg("Y").noconvert(), py::arg("threads") = 1,
          "Y^T Y's upper triangle in float64 (the lower triangle zero), as the Cholesky-QR\n"
          "steps form it, on up to `threads` threads (tests, timing).");
    m.def("_panel_times_upper", &panel_times<T, true>, py::arg("Y").noconvert(),
          py::arg("R").noconvert(), py::arg("threads") = 1,
          "Y R for the upper triangle of float64 R, in Y's dtype, as the Cholesky-QR steps\n"
          "apply R^-1 (tests, timing).");
    m.def("_panel_times_square", &panel_times<T, false>, py::arg("Y").noconvert(),
          py::arg("R").noconvert(), py::arg("threads") = 1,
          "Y R for square float64 R, in Y's dtype, computed in float64 (tests, timing).");
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
    m.def(
        "_normal_kernels",
        []() {
            std::vector<std::string> names;
            for (kernels::Isa isa : kernels::available()) names.emplace_back(kernels::name(isa));
            return names;
        },
        "The instruction sets the power iterations' fused kernel can use here ('none': BLAS).");
    m.def(
        "_normal_kernel",
        [](const std::optional<std::string>& choice) {
            const std::string before = kernels::name(kernels::current());
            if (choice) kernels::set(kernels::parse(*choice));
            return before;
        },
        py::arg("kernel") = py::none(),
        "The fused kernel in use; with an argument, selects that one (process-wide, for\n"
        "tests and benchmarks) and returns the one it replaces.");
    define_switch(m, "_panel_kernels", &panel_kernels_available, &panel_kernels_enabled,
                  &panel_kernels_enable,
                  "(available, enabled) for the Cholesky-QR steps' AVX-512 panel kernels; with\n"
                  "an argument, switches them (process-wide; off: BLAS), returning the old\n"
                  "setting as `enabled`.");
    m.def("_amx_normal_product", &amx_product, py::arg("M").noconvert(), py::arg("X").noconvert(),
          py::arg("pieces") = 2,
          "M^T (M X) on AMX with M in `pieces` (2 or 1) bfloat16 pieces (float32,\n"
          "C-contiguous M); None without AMX.");
    m.def(
        "_chunked_flops",
        [](std::optional<double> flops) {
            const double before = chunked_flops().load();
            if (flops) {
                if (!(*flops >= 0)) throw std::invalid_argument("flops must be >= 0");
                chunked_flops().store(*flops);
            }
            return before;
        },
        py::arg("flops") = py::none(),
        "The product size (2 m n l) from which the products' threads take chunks of rows\n"
        "as they come, more chunks than threads; with an argument, sets it (process-wide,\n"
        "for tests) and returns the one it replaces.");
    define_switch(m, "_amx", &amx_available, &amx_enabled, &amx_enable,
                  "(available, enabled): whether this CPU and OS give AMX, and whether the power\n"
                  "iterations use it; with an argument, switches that (process-wide, for tests\n"
                  "and benchmarks).");
}

}  // namespace lowrank::bindings
