// lowrank_core._core._blocks: the randomized SVD's steps on one block of A, for
// drivers that hold A in pieces (lowrank_core._dask runs them as Dask tasks): the
// products with a block (the fused one-pass A^T (A W) among them), and the small
// orthonormalisation and SVD that follow on the client. They are the core's own
// functions (row_blocks.hpp, orthonormalize.hpp, small_svd.hpp); the products run on
// at most `threads` of the core's threads with the BLAS single-threaded meanwhile, so
// that tasks running side by side do not oversubscribe the machine. (The Cholesky-QR
// steps' Gram matrix and Y R are _core._testing.panel_gram and panel_times_upper.)
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "common/numpy_arrays.hpp"
#include "core/register.hpp"
#include "lowrank/runtime/parallel.hpp"
#include "lowrank/svd/orthonormalize.hpp"
#include "lowrank/svd/row_blocks.hpp"
#include "lowrank/svd/small_svd.hpp"

namespace lowrank::bindings {
namespace {

void check_threads(int threads) {
    if (threads < 1) throw std::invalid_argument("threads must be >= 1");
}

// The products on a block A (rows x cols, either contiguous layout) as RowBlocks
// computes them on the row-major M = A or M = A^T, so a block is read as it lies.
template <class T>
class BlockProducts {
  public:
    BlockProducts(const ConstView<T>& a, index l, int threads)
        : row_major_(a.row_major),
          blocks_(a.row_major ? a : a.transposed(), l, Schedule{index(64) << 20, threads, nullptr}) {}

    // Y = A W (rows x l)
    void product(const Matrix<T>& w, Matrix<T>& y) const {
        if (row_major_) blocks_.multiply(w, y);
        else blocks_.multiply_transposed(w, y);
    }
    // Z = A^T Y (cols x l)
    void transposed_product(const Matrix<T>& y, Matrix<T>& z) const {
        if (row_major_) blocks_.multiply_transposed(y, z);
        else blocks_.multiply(y, z);
    }
    // Z = A^T (A W) and Y = A W: for row-major A the fused kernel reads A once.
    void normal_product(const Matrix<T>& w, Matrix<T>& z, Matrix<T>& y) const {
        if (row_major_) {
            blocks_.normal_product(w, z, &y);
        } else {
            product(w, y);
            transposed_product(y, z);
        }
    }

  private:
    bool row_major_;
    RowBlocks<T> blocks_;
};

// The panel `name` (rows x l) as a core matrix; its rows must be `rows`.
template <class T>
Matrix<T> panel(const py::array_t<T>& array, const char* name, index rows) {
    const ConstView<T> view = view_of(array, name);
    if (view.rows != rows) {
        throw std::invalid_argument(std::string(name) + " has " + std::to_string(view.rows) +
                                    " rows, expected " + std::to_string(rows));
    }
    return to_matrix(view);
}

template <class T>
py::tuple normal_product(const py::array_t<T>& a, const py::array_t<T>& w, int threads) {
    check_threads(threads);
    const ConstView<T> view = view_of(a, "A");
    const Matrix<T> wm = panel(w, "W", view.cols);
    Matrix<T> z(view.cols, wm.cols), y(view.rows, wm.cols);
    {
        py::gil_scoped_release release;
        const SingleThreadedBlas single;
        BlockProducts<T>(view, wm.cols, threads).normal_product(wm, z, y);
    }
    return py::make_tuple(to_numpy(std::move(z)), to_numpy(std::move(y)));
}

// A W (kTransposed false) or A^T W (true).
template <class T, bool kTransposed>
py::array_t<T> product(const py::array_t<T>& a, const py::array_t<T>& w, int threads) {
    check_threads(threads);
    const ConstView<T> view = view_of(a, "A");
    const Matrix<T> wm = panel(w, kTransposed ? "Y" : "W", kTransposed ? view.rows : view.cols);
    Matrix<T> out(kTransposed ? view.cols : view.rows, wm.cols);
    {
        py::gil_scoped_release release;
        const SingleThreadedBlas single;
        const BlockProducts<T> blocks(view, wm.cols, threads);
        if (kTransposed) blocks.transposed_product(wm, out);
        else blocks.product(wm, out);
    }
    return to_numpy(std::move(out));
}

template <class T>
py::array_t<T> orthonormal(const py::array_t<T>& y, bool final) {
    Matrix<T> ym = to_matrix(view_of(y, "Y"));
    if (ym.rows < ym.cols) throw std::invalid_argument("Y must have at least as many rows as columns");
    {
        py::gil_scoped_release release;
        orthonormalize(ym, final ? Orthonormal::final : Orthonormal::basis);
    }
    return to_numpy(std::move(ym));
}

template <class T>
py::tuple small(const py::array_t<T>& bt) {
    Matrix<T> btm = to_matrix(view_of(bt, "Bt"));
    const index n = btm.rows, l = btm.cols;
    if (n < l) throw std::invalid_argument("Bt must have at least as many rows as columns");
    Matrix<T> v(n, l), ub_t(l, l);
    std::vector<T> s(static_cast<std::size_t>(l));
    {
        py::gil_scoped_release release;
        small_svd(btm, s.data(), v, ub_t);
    }
    return py::make_tuple(to_numpy(std::move(s)), to_numpy(std::move(v)), to_numpy(std::move(ub_t)));
}

template <class T>
void define(py::module_& m) {
    m.def("normal_product", &normal_product<T>, py::arg("A").noconvert(),
          py::arg("W").noconvert(), py::arg("threads") = 1,
          "(Z, Y) = (A^T (A W), A W); row-major A is read once (the fused kernel).");
    m.def("product", &product<T, false>, py::arg("A").noconvert(), py::arg("W").noconvert(),
          py::arg("threads") = 1, "A W.");
    m.def("transposed_product", &product<T, true>, py::arg("A").noconvert(),
          py::arg("Y").noconvert(), py::arg("threads") = 1, "A^T Y.");
    m.def("orthonormalize", &orthonormal<T>, py::arg("Y").noconvert(), py::arg("final") = true,
          "An orthonormal basis of Y's columns as the randomized SVD takes it: Cholesky-QR\n"
          "(two steps when final) or Householder.");
    m.def("small_svd", &small<T>, py::arg("Bt").noconvert(),
          "(s, V, Ub^T) with Bt = V diag(s) Ub^T: the randomized SVD's step 4.");
}

}  // namespace

void register_blocks(py::module_& m) {
    py::module_ blocks = m.def_submodule(
        "_blocks", "The randomized SVD's steps on one block of A, for drivers that hold A in\n"
                   "pieces (lowrank_core._dask); not an API.");
    define<float>(blocks);
    define<double>(blocks);
}

}  // namespace lowrank::bindings
