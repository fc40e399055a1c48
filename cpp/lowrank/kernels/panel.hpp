// The two products behind the randomized SVD's Cholesky-QR steps on tall panels
// (m x l, m >> l, column-major, float32 or float64), always computed in float64:
//
//   gram_upper(Y, G):     G = Y^T Y (l x l, upper triangle);
//   times_upper(Y, R):    Y <- Y R for upper-triangular R (l x l), rounded to Y's type;
//   times_square(Y, W):   Y <- Y W for any W (l x l), likewise.
//
// OpenBLAS runs far below the machine's peak on these shapes (a small square result
// from a tall, narrow panel), and a float32 panel first had to be copied to float64
// and back. On AVX-512 both run as kernels of their own that
// read float32 directly (widening on load) and write float32 directly, in one pass
// each; elsewhere they are that copy and BLAS (syrk, trmm).
#pragma once

#include "lowrank/common/matrix.hpp"

namespace lowrank {

// G's upper triangle (l x l, G resized to l x l when its shape is wrong) = Y^T Y,
// sums in float64; the strict lower triangle is left as it was (zero when new).
template <class T>
void gram_upper(const Matrix<T>& y, Matrix<double>& g);

// Y <- Y R, R upper triangular (l x l; its strict lower triangle is not read), in
// float64 and rounded to T.
template <class T>
void times_upper(Matrix<T>& y, const Matrix<double>& r);

// Y <- Y W, W square (l x l), in float64 and rounded to T.
template <class T>
void times_square(Matrix<T>& y, const Matrix<double>& w);

// While alive, the kernels called on this thread split tall panels over up to
// `threads` of the core's threads (parallel.hpp), ranges of rows each: the kernels'
// Y R has the same bits either way (OpenBLAS rounds rows near a range's edge
// differently); Y^T Y adds the parts' sums, so its bits depend on the split, as the
// products' do on the thread count. Without one: 1 thread.
// randomized_svd sets its own thread count for the whole call.
class PanelThreads {
  public:
    explicit PanelThreads(int threads);
    ~PanelThreads();
    PanelThreads(const PanelThreads&) = delete;
    PanelThreads& operator=(const PanelThreads&) = delete;

  private:
    int saved_;
};

// Whether this CPU has the AVX-512 kernels, and whether they are switched on
// (process-wide; off runs the BLAS path, for tests and benchmarks that compare).
bool panel_kernels_available();
bool panel_kernels_enabled();
void panel_kernels_enable(bool on);

}  // namespace lowrank
