// Bindings for the matrices known by their products: scipy.sparse matrices (CSR, or
// CSC read as the CSR of A^T), a caller's operator (matmat/rmatmat called back), and
// the centring of any of them or of a dense A (cpp/lowrank/sparse/,
// cpp/lowrank/svd/randomized_map.hpp). The Python layer (_sparse.py) has put the
// arrays in canonical form and wrapped the operator's calls in its checks.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "common/numpy_arrays.hpp"
#include "common/signals.hpp"
#include "core/register.hpp"
#include "core/svd_tuple.hpp"
#include "lowrank/runtime/parallel.hpp"
#include "lowrank/sparse/sparse_svd.hpp"
#include "lowrank/svd/randomized_map.hpp"

namespace lowrank::bindings {
namespace {

template <class T>
std::optional<std::vector<T>> vector_of(const std::optional<py::array_t<T>>& a, const char* name) {
    if (!a) return std::nullopt;
    if (a->ndim() != 1) throw std::invalid_argument(std::string(name) + " must be 1-D");
    const py::array_t<T, py::array::c_style> c(*a);
    return std::vector<T>(c.data(), c.data() + c.size());
}

template <class T, class I>
py::tuple sparse_svd(const py::array_t<I>& indptr, const py::array_t<I>& indices,
                     const py::array_t<T>& data, index rows, index cols, bool of_a,
                     const RandomizedSvdOptions& options,
                     const std::optional<py::array_t<T>>& sketch,
                     const std::optional<py::array_t<T>>& mean) {
    for (const py::array* a : {static_cast<const py::array*>(&indptr),
                               static_cast<const py::array*>(&indices),
                               static_cast<const py::array*>(&data)}) {
        if (a->ndim() != 1 || !(a->flags() & py::array::c_style)) {
            throw std::invalid_argument("the CSR arrays must be C-contiguous and 1-D");
        }
    }
    if (indptr.size() != rows + 1) throw std::invalid_argument("indptr must have rows + 1 values");
    if (indices.size() != data.size()) {
        throw std::invalid_argument("indices and data must have the same length");
    }
    check_csr(indptr.data(), indices.data(), rows, cols, index(data.size()), "A");
    const CsrView<T, I> view{rows, cols, indptr.data(), indices.data(), data.data()};
    std::optional<ConstView<T>> sketch_view;
    if (sketch) sketch_view = view_of(*sketch, "sketch");
    const std::optional<std::vector<T>> centre = vector_of(mean, "mean");
    StopPoll stop = python_signal_poll();
    SvdResult<T> result;
    {
        py::gil_scoped_release release;
        result = sparse_randomized_svd(view, of_a, options, sketch_view ? &*sketch_view : nullptr,
                                       centre ? &*centre : nullptr, &stop);
    }
    return to_tuple(std::move(result));
}

template <class T>
py::tuple centered_svd(const py::array_t<T>& a, const py::array_t<T>& mean,
                       const RandomizedSvdOptions& options,
                       const std::optional<py::array_t<T>>& sketch) {
    const ConstView<T> view = view_of(a, "A");
    std::optional<ConstView<T>> sketch_view;
    if (sketch) sketch_view = view_of(*sketch, "sketch");
    const std::vector<T> centre = *vector_of(std::optional<py::array_t<T>>(mean), "mean");
    StopPoll stop = python_signal_poll();
    SvdResult<T> result;
    {
        py::gil_scoped_release release;
        result = centered_randomized_svd(view, centre, options,
                                         sketch_view ? &*sketch_view : nullptr, &stop);
    }
    return to_tuple(std::move(result));
}

// A caller's operator: `matmat(X)` = A X and `rmatmat(Y)` = A^T Y, Python callables
// that take and return Fortran-ordered arrays of T (the Python layer checks what the
// caller's operator returns before it gets here). Each call takes the GIL for its
// duration only; an exception it raises propagates unchanged.
template <class T>
class PythonOperator final : public LinearMap<T> {
  public:
    PythonOperator(py::object matmat, py::object rmatmat, index rows, index cols)
        : matmat_(std::move(matmat)), rmatmat_(std::move(rmatmat)), rows_(rows), cols_(cols) {}
    ~PythonOperator() override {
        py::gil_scoped_acquire acquire;
        matmat_ = py::object();
        rmatmat_ = py::object();
    }
    PythonOperator(const PythonOperator&) = delete;
    PythonOperator& operator=(const PythonOperator&) = delete;

    index rows() const override { return rows_; }
    index cols() const override { return cols_; }
    void multiply(const Matrix<T>& x, Matrix<T>& y) const override {
        call(matmat_, "matmat", x, rows_, y);
    }
    void multiply_transposed(const Matrix<T>& y, Matrix<T>& z) const override {
        call(rmatmat_, "rmatmat", y, cols_, z);
    }

  private:
    static void call(const py::object& f, const char* name, const Matrix<T>& in, index out_rows,
                     Matrix<T>& out) {
        py::gil_scoped_acquire acquire;
        const auto item = static_cast<py::ssize_t>(sizeof(T));
        py::array_t<T, py::array::f_style> arg(
            {static_cast<py::ssize_t>(in.rows), static_cast<py::ssize_t>(in.cols)},
            {item, item * static_cast<py::ssize_t>(in.ld())});
        if (!in.values.empty()) std::memcpy(arg.mutable_data(), in.data(), in.values.size() * sizeof(T));
        const py::object got = f(arg);
        if (!py::isinstance<py::array_t<T>>(got)) {
            throw std::invalid_argument(std::string("operator: ") + name +
                                        " returned an array of the wrong dtype");
        }
        const py::array_t<T, py::array::f_style | py::array::forcecast> result(got);
        if (result.ndim() != 2 || result.shape(0) != out_rows || result.shape(1) != in.cols) {
            throw std::invalid_argument(std::string("operator: ") + name +
                                        " returned an array of the wrong shape");
        }
        if (out.rows != out_rows || out.cols != in.cols) out = Matrix<T>(out_rows, in.cols);
        if (!out.values.empty()) {
            std::memcpy(out.data(), result.data(), out.values.size() * sizeof(T));
        }
    }

    py::object matmat_, rmatmat_;
    index rows_, cols_;
};

template <class T>
py::tuple operator_svd(py::object matmat, py::object rmatmat, index rows, index cols,
                       const RandomizedSvdOptions& options,
                       const std::optional<py::array_t<T>>& sketch,
                       const std::optional<py::array_t<T>>& mean) {
    std::optional<ConstView<T>> sketch_view;
    if (sketch) sketch_view = view_of(*sketch, "sketch");
    const std::optional<std::vector<T>> centre = vector_of(mean, "mean");
    if (centre && index(centre->size()) != cols) {
        throw std::invalid_argument("mean must have one value per column of A");
    }
    const PythonOperator<T> op(std::move(matmat), std::move(rmatmat), rows, cols);
    const int threads = core_threads();
    SvdResult<T> result;
    {
        py::gil_scoped_release release;
        const ConstView<T>* given = sketch_view ? &*sketch_view : nullptr;
        if (centre) {
            const std::vector<T> ones(static_cast<std::size_t>(rows), T(1));
            const RankOneUpdate<T> centered(op, ones, *centre);
            result = randomized_svd(centered, true, options, given, threads);
        } else {
            result = randomized_svd(op, true, options, given, threads);
        }
    }
    return to_tuple(std::move(result));
}

template <class T, class I>
void define_sparse(py::module_& m) {
    m.def("sparse_randomized_svd", &sparse_svd<T, I>, py::arg("indptr").noconvert(),
          py::arg("indices").noconvert(), py::arg("data").noconvert(), py::arg("rows"),
          py::arg("cols"), py::arg("of_a"), py::arg("options"),
          py::arg("sketch").noconvert() = py::none(), py::arg("mean").noconvert() = py::none(),
          "Randomized SVD of the (rows x cols) CSR matrix (of_a) or of the transpose of the\n"
          "matrix whose CSR it is (a CSC A), optionally of A - 1 mean^T.");
}

template <class T>
void define(py::module_& m) {
    define_sparse<T, std::int32_t>(m);
    define_sparse<T, std::int64_t>(m);
    m.def("centered_randomized_svd", &centered_svd<T>, py::arg("A").noconvert(),
          py::arg("mean").noconvert(), py::arg("options"),
          py::arg("sketch").noconvert() = py::none(),
          "Randomized SVD of A - 1 mean^T for dense A, never forming it.");
}

}  // namespace

void register_sparse(py::module_& m) {
    define<float>(m);
    define<double>(m);
    m.def(
        "operator_randomized_svd",
        [](py::object matmat, py::object rmatmat, index rows, index cols, const std::string& dtype,
           const RandomizedSvdOptions& options, const py::object& sketch,
           const py::object& mean) -> py::tuple {
            auto optional = [](const py::object& a, auto tag) {
                using T = decltype(tag);
                return a.is_none() ? std::optional<py::array_t<T>>()
                                   : std::optional<py::array_t<T>>(a.cast<py::array_t<T>>());
            };
            if (dtype == "float32") {
                return operator_svd<float>(std::move(matmat), std::move(rmatmat), rows, cols,
                                           options, optional(sketch, float()),
                                           optional(mean, float()));
            }
            if (dtype == "float64") {
                return operator_svd<double>(std::move(matmat), std::move(rmatmat), rows, cols,
                                            options, optional(sketch, double()),
                                            optional(mean, double()));
            }
            throw std::invalid_argument("dtype must be 'float32' or 'float64'");
        },
        py::arg("matmat"), py::arg("rmatmat"), py::arg("rows"), py::arg("cols"), py::arg("dtype"),
        py::arg("options"), py::arg("sketch") = py::none(), py::arg("mean") = py::none(),
        "Randomized SVD of an operator known by matmat(X) = A X and rmatmat(Y) = A^T Y\n"
        "(callables on Fortran-ordered arrays of `dtype`; called back with the GIL),\n"
        "optionally of A - 1 mean^T.");
}

}  // namespace lowrank::bindings
