// lowrank_core._core: the CPU core. Builds the module, installs BLAS/LAPACK from
// SciPy's capsules, maps the core's exceptions, and registers each area.
#include <pybind11/pybind11.h>

#include <atomic>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#if defined(__linux__)
#include <dlfcn.h>
#include <link.h>
#endif

#include "common/interruptible.hpp"
#include "core/register.hpp"
#include "lowrank/backend/blas_lapack.hpp"
#include "lowrank/common/errors.hpp"
#include "lowrank/runtime/block_cache.hpp"
#include "lowrank/runtime/thread_pool.hpp"

namespace py = pybind11;

namespace {

// The function pointer behind `scipy.linalg.cython_<library>.__pyx_capi__[name]`.
template <class Function>
Function capsule_function(const py::dict& capi, const char* library, const char* name) {
    if (!capi.contains(name)) {
        throw std::runtime_error(std::string("scipy.linalg.cython_") + library + " lacks " + name);
    }
    py::object capsule = capi[name];
    void* pointer = PyCapsule_GetPointer(capsule.ptr(), PyCapsule_GetName(capsule.ptr()));
    if (pointer == nullptr) throw py::error_already_set();
    return reinterpret_cast<Function>(pointer);
}

template <class T>
void fill(lowrank::blas_lapack::Table<T>& table, const py::dict& blas, const py::dict& lapack,
          char prefix) {
    const std::string p(1, prefix);
    table.gemm = capsule_function<decltype(table.gemm)>(blas, "blas", (p + "gemm").c_str());
    table.syrk = capsule_function<decltype(table.syrk)>(blas, "blas", (p + "syrk").c_str());
    table.trmm = capsule_function<decltype(table.trmm)>(blas, "blas", (p + "trmm").c_str());
    table.gesdd = capsule_function<decltype(table.gesdd)>(lapack, "lapack", (p + "gesdd").c_str());
    table.geqrf = capsule_function<decltype(table.geqrf)>(lapack, "lapack", (p + "geqrf").c_str());
    table.orgqr = capsule_function<decltype(table.orgqr)>(lapack, "lapack", (p + "orgqr").c_str());
    table.potrf = capsule_function<decltype(table.potrf)>(lapack, "lapack", (p + "potrf").c_str());
    table.trtri = capsule_function<decltype(table.trtri)>(lapack, "lapack", (p + "trtri").c_str());
    table.syevd = capsule_function<decltype(table.syevd)>(lapack, "lapack", (p + "syevd").c_str());
    table.gelqf = capsule_function<decltype(table.gelqf)>(lapack, "lapack", (p + "gelqf").c_str());
    table.larft = capsule_function<decltype(table.larft)>(lapack, "lapack", (p + "larft").c_str());
    table.larfb = capsule_function<decltype(table.larfb)>(lapack, "lapack", (p + "larfb").c_str());
    table.gbbrd = capsule_function<decltype(table.gbbrd)>(lapack, "lapack", (p + "gbbrd").c_str());
    table.lasq1 = capsule_function<decltype(table.lasq1)>(lapack, "lapack", (p + "lasq1").c_str());
}

#if defined(__linux__)
// Paths of the loaded shared objects (dl_iterate_phdr), to find SciPy's OpenBLAS.
std::vector<std::string> loaded_objects() {
    std::vector<std::string> paths;
    dl_iterate_phdr(
        [](dl_phdr_info* info, size_t, void* data) {
            if (info->dlpi_name && info->dlpi_name[0]) {
                static_cast<std::vector<std::string>*>(data)->emplace_back(info->dlpi_name);
            }
            return 0;
        },
        &paths);
    return paths;
}
#endif

// The thread-count functions of the OpenBLAS SciPy ships (libscipy_openblas, the
// 32-bit-integer build behind cython_blas), when it exports them; left null
// otherwise, and the core then leaves threading to the BLAS.
void find_openblas_threading(lowrank::blas_lapack::Functions& functions) {
#if defined(__linux__)
    for (const std::string& path : loaded_objects()) {
        const auto slash = path.find_last_of('/');
        const std::string file = path.substr(slash == std::string::npos ? 0 : slash + 1);
        if (file.rfind("libscipy_openblas", 0) != 0 || file.find("openblas64") != std::string::npos) {
            continue;
        }
        void* handle = dlopen(path.c_str(), RTLD_LAZY | RTLD_NOLOAD);
        if (!handle) continue;
        void* get = dlsym(handle, "scipy_openblas_get_num_threads");
        void* set_local = dlsym(handle, "openblas_set_num_threads_local");
        if (get && set_local) {
            functions.get_num_threads = reinterpret_cast<int (*)()>(get);
            functions.set_num_threads_local = reinterpret_cast<int (*)(int)>(set_local);
        }
        dlclose(handle);  // drops only the reference taken here; SciPy keeps it loaded
        if (functions.get_num_threads) return;
    }
#else
    (void)functions;
#endif
}

void install_scipy_blas_lapack() {
    const py::dict blas = py::module_::import("scipy.linalg.cython_blas").attr("__pyx_capi__");
    const py::dict lapack =
        py::module_::import("scipy.linalg.cython_lapack").attr("__pyx_capi__");
    lowrank::blas_lapack::Functions functions;
    fill(functions.s, blas, lapack, 's');
    fill(functions.d, blas, lapack, 'd');
    find_openblas_threading(functions);
    lowrank::blas_lapack::install(functions);
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
        const lowrank::PartTask task{[](void* context, int part) {
                                         auto& c = *static_cast<Counts*>(context);
                                         c.ran[part].fetch_add(1);
                                         if (part > 0 && std::this_thread::get_id() == c.caller)
                                             c.by_caller.fetch_add(1);
                                     },
                                     &counts};
        if (!lowrank::pool_run(parts, task)) throw std::runtime_error("the pool was busy");
        for (int p = 0; p < parts; ++p) once = once && counts.ran[p].load() == 1;
    }
    return {once, counts.by_caller.load()};
}

}  // namespace

PYBIND11_MODULE(_core, m) {
    m.doc() = "lowrank_core's CPU core (C++, BLAS/LAPACK from SciPy). Use the lowrank_core API.";
    install_scipy_blas_lapack();

    static py::object lin_alg_error = py::module_::import("numpy.linalg").attr("LinAlgError");
    py::register_exception_translator([](std::exception_ptr p) {
        try {
            if (p) std::rethrow_exception(p);
        } catch (const lowrank::LinAlgError& e) {
            PyErr_SetString(lin_alg_error.ptr(), e.what());
        } catch (const lowrank::Interrupted&) {
            if (!PyErr_Occurred()) PyErr_SetNone(PyExc_KeyboardInterrupt);
        }
    });

    m.attr("blas_thread_control") =
        lowrank::blas_lapack::installed().set_num_threads_local != nullptr;
    lowrank::bindings::register_svd(m);
    lowrank::bindings::register_rank(m);
    lowrank::bindings::register_bottleneck(m);
    m.def("_wait_for_abandoned_calls", &lowrank::bindings::wait_for_abandoned_calls,
          "Blocks until the LAPACK calls that Ctrl-C abandoned have ended (or until the\n"
          "next Ctrl-C); registered with atexit (bindings/interruptible.hpp).");
    m.def("_abandoned_calls", &lowrank::bindings::abandoned_calls_running,
          "How many LAPACK calls that Ctrl-C abandoned are still running (for tests).");
    m.def("_pool_parts", &pool_parts, py::arg("parts"), py::arg("dispatches"),
          "For tests: `dispatches` runs of `parts` empty parts on the core's thread pool;\n"
          "(every part ran exactly once, parts > 0 that the calling thread ran itself).");
    m.def(
        "_block_cache",
        [] {
            return std::make_pair(lowrank::block_cache::kEnabled,
                                  lowrank::block_cache::cache().kept_bytes());
        },
        "(enabled, bytes kept now) of the cache of freed blocks the core's matrices reuse\n"
        "(cpp/block_cache.hpp; off under AddressSanitizer).");
}
