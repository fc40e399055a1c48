// lowrank_core._core._testing: the switches and kernels that tests and benchmark
// studies reach below the public API (the fused product kernels, AMX, the panel
// kernels, the thread pool, the block cache, Ctrl-C's abandoned calls). Process-wide
// switches return the setting they replace, so a caller can put it back.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <algorithm>
#include <atomic>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "lowrank/kernels/amx_product.hpp"
#include "lowrank/runtime/isa.hpp"
#include "lowrank/backend/blas_lapack.hpp"
#include "lowrank/runtime/block_cache.hpp"
#include "common/interruptible.hpp"
#include "lowrank/kernels/normal_product.hpp"
#include "common/numpy_arrays.hpp"
#include "lowrank/kernels/panel.hpp"
#include "lowrank/runtime/parallel.hpp"
#include "core/register.hpp"
#include "lowrank/svd/exact.hpp"
#include "lowrank/svd/randomized.hpp"
#include "lowrank/svd/sketch.hpp"
#include "lowrank/spectrum/singular_values.hpp"
#include "lowrank/common/svd_options.hpp"
#include "lowrank/runtime/thread_pool.hpp"

namespace lowrank::bindings {
namespace {

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

// For tests of the core's thread pool (thread_pool.hpp): `dispatches` runs of
// `parts` parts that do nothing but count themselves. Returns whether every part of
// every run ran exactly once, and how many parts other than part 0 the calling
// thread ran itself (parts no worker had begun by the time it finished its own).
std::pair<bool, long> pool_parts(int parts, int dispatches) {
    if (parts < 1 || parts > 257) throw std::invalid_argument("parts must be in [1, 257]");
    if (dispatches < 0) throw std::invalid_argument("dispatches must be >= 0");
    const py::gil_scoped_release release;
    struct Counts {
        std::atomic<int> ran[257];
        std::atomic<long> by_caller{0};
        std::thread::id caller = std::this_thread::get_id();
    } counts;
    bool once = true;
    for (int d = 0; d < dispatches; ++d) {
        for (auto& r : counts.ran) r.store(0);
        const PartTask task{[](void* context, int part) {
                                         auto& c = *static_cast<Counts*>(context);
                                         c.ran[part].fetch_add(1);
                                         if (part > 0 && std::this_thread::get_id() == c.caller)
                                             c.by_caller.fetch_add(1);
                                     },
                                     &counts};
        if (!pool_run(parts, task)) throw std::runtime_error("the pool was busy");
        for (int p = 0; p < parts; ++p) once = once && counts.ran[p].load() == 1;
    }
    return {once, counts.by_caller.load()};
}

template <class T>
void define(py::module_& testing) {
    testing.def("two_stage_singular_values", &two_stage_values<T>, py::arg("A").noconvert());
    testing.def("kernel_product", &kernel_product<T>, py::arg("M").noconvert(),
                py::arg("X").noconvert(), py::arg("which"),
                "M^T (M X), M X or M^T X by the randomized SVD's kernels in use (tests, timing);\n"
                "'normal_kept' returns (M^T (M X), M X) from the one pass.");
    testing.def("panel_gram", &panel_gram<T>, py::arg("Y").noconvert(), py::arg("threads") = 1,
                "Y^T Y's upper triangle in float64 (the lower triangle zero), as the Cholesky-QR\n"
                "steps form it, on up to `threads` threads (tests, timing).");
    testing.def("panel_times_upper", &panel_times<T, true>, py::arg("Y").noconvert(),
                py::arg("R").noconvert(), py::arg("threads") = 1,
                "Y R for the upper triangle of float64 R, in Y's dtype, as the Cholesky-QR steps\n"
                "apply R^-1 (tests, timing).");
    testing.def("panel_times_square", &panel_times<T, false>, py::arg("Y").noconvert(),
                py::arg("R").noconvert(), py::arg("threads") = 1,
                "Y R for square float64 R, in Y's dtype, computed in float64 (tests, timing).");
}

}  // namespace

void register_testing(py::module_& testing) {
    define<float>(testing);
    define<double>(testing);
    testing.def(
        "normal_kernels",
        []() {
            std::vector<std::string> names;
            for (kernels::Isa isa : kernels::available()) names.emplace_back(kernels::name(isa));
            return names;
        },
        "The instruction sets the power iterations' fused kernel can use here ('none': BLAS).");
    testing.def(
        "isa_ceiling",
        []() {
            const isa::Ceiling& c = isa::ceiling();
            return py::make_tuple(isa::name(c.level), c.requested, c.recognised);
        },
        "(ceiling, LOWRANK_CORE_ISA as read or '', whether it named a known ceiling): the\n"
        "highest instruction set the kernels may pick (runtime/isa.hpp).");
    testing.def(
        "normal_kernel",
        [](const std::optional<std::string>& choice) {
            const std::string before = kernels::name(kernels::current());
            if (choice) kernels::set(kernels::parse(*choice));
            return before;
        },
        py::arg("kernel") = py::none(),
        "The fused kernel in use; with an argument, selects that one (process-wide, for\n"
        "tests and benchmarks) and returns the one it replaces.");
    define_switch(testing, "panel_kernels", &panel_kernels_available, &panel_kernels_enabled,
                  &panel_kernels_enable,
                  "(available, enabled) for the Cholesky-QR steps' AVX-512 panel kernels; with\n"
                  "an argument, switches them (process-wide; off: BLAS), returning the old\n"
                  "setting as `enabled`.");
    testing.def("amx_normal_product", &amx_product, py::arg("M").noconvert(),
                py::arg("X").noconvert(),
                py::arg("pieces") = 2,
                "M^T (M X) on AMX with M in `pieces` (2 or 1) bfloat16 pieces (float32,\n"
                "C-contiguous M); None without AMX.");
    testing.def(
        "chunked_flops",
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
    define_switch(testing, "amx", &amx_available, &amx_enabled, &amx_enable,
                  "(available, enabled): whether this CPU and OS give AMX, and whether the power\n"
                  "iterations use it; with an argument, switches that (process-wide, for tests\n"
                  "and benchmarks).");
    testing.def("abandoned_calls", &abandoned_calls_running,
                "How many LAPACK calls that Ctrl-C abandoned are still running.");
    testing.def("pool_parts", &pool_parts, py::arg("parts"), py::arg("dispatches"),
                "`dispatches` runs of `parts` empty parts on the core's thread pool;\n"
                "(every part ran exactly once, parts > 0 that the calling thread ran itself).");
    testing.def(
        "block_cache",
        [] {
            return std::make_pair(block_cache::kEnabled, block_cache::cache().kept_bytes());
        },
        "(enabled, bytes kept now) of the cache of freed blocks the core's matrices reuse\n"
        "(cpp/lowrank/runtime/block_cache.hpp; off under AddressSanitizer).");
}

}  // namespace lowrank::bindings
