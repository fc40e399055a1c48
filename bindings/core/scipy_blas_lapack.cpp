// BLAS and LAPACK for the CPU core, from SciPy: the function pointers that
// scipy.linalg.cython_blas and cython_lapack export as capsules (so the core links
// no BLAS of its own and uses the one NumPy's users already have), and, where that
// BLAS is SciPy's OpenBLAS, its thread-count functions.
#include <pybind11/pybind11.h>

#include <stdexcept>
#include <string>
#include <vector>

#if defined(__linux__)
#include <dlfcn.h>
#include <link.h>
#endif

#include "lowrank/backend/blas_lapack.hpp"
#include "core/register.hpp"

namespace lowrank::bindings {

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
void fill(blas_lapack::Table<T>& table, const py::dict& blas, const py::dict& lapack,
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
void find_openblas_threading(blas_lapack::Functions& functions) {
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

}  // namespace

void install_scipy_blas_lapack() {
    const py::dict blas = py::module_::import("scipy.linalg.cython_blas").attr("__pyx_capi__");
    const py::dict lapack =
        py::module_::import("scipy.linalg.cython_lapack").attr("__pyx_capi__");
    blas_lapack::Functions functions;
    fill(functions.s, blas, lapack, 's');
    fill(functions.d, blas, lapack, 'd');
    find_openblas_threading(functions);
    blas_lapack::install(functions);
}

}  // namespace lowrank::bindings
