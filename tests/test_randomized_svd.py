"""randomized_svd: exact agreement with the reference given a sketch, the Philox
sketch shared with the reference, determinism, and accuracy against the optimum."""

from __future__ import annotations

import numpy as np
import pytest

import lowrank_core as lc
from lowrank_core import _core, reference
from lowrank_core.data import decaying_spectrum

from helpers import assert_close, on_gpu, random_matrix, spectral_error, to_device, to_host


def test_philox_known_answers():
    # Known-answer vectors of Random123's philox4x32-10.
    cases = [
        ([0, 0, 0, 0], (0, 0), [0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8]),
        ([0xFFFFFFFF] * 4, (0xFFFFFFFF, 0xFFFFFFFF),
         [0x408F276D, 0x41C83B0E, 0xA20BC7C6, 0x6D5451FD]),
        ([0x243F6A88, 0x85A308D3, 0x13198A2E, 0x03707344], (0xA4093822, 0x299F31D0),
         [0xD16CFE09, 0x94FDCCEB, 0x5001E420, 0x24126EA1]),
    ]
    for counter, key, expected in cases:
        got = reference.philox4x32_10(np.array(counter, np.uint32)[:, None], key)[:, 0]
        assert got.tolist() == expected


@pytest.mark.parametrize("seed", [0, 1, 2**32 + 5, 2**64 - 1])
@pytest.mark.parametrize("shape", [(1, 1), (5, 3), (37, 13)], ids=str)
def test_core_sketch_is_the_reference_sketch(shape, seed):
    for dtype in ("float32", "float64"):
        got = _core.gaussian_sketch(*shape, seed, dtype)
        want = reference.gaussian_sketch(*shape, seed, dtype)
        assert got.dtype == want.dtype
        # Box-Muller's log/sin/cos differ in the last bits between the core's own
        # (cpp/lowrank/svd/gaussian.cpp, or libm's) and NumPy's.
        np.testing.assert_allclose(got, want, rtol=1e-14 if dtype == "float64" else 1e-6,
                                   atol=1e-14)


def _box_muller_with_libm(seed, count):
    """The sketch rule (cpp/lowrank/common/philox.hpp) computed with Python's math module (the C
    library's log, cos and sin) from the reference's uniforms."""
    import math

    u = reference.uniform_stream(seed, 0, count, 0)
    out = np.empty(count)
    for p in range(count // 2):
        radius = math.sqrt(-2.0 * math.log(u[2 * p]))
        angle = 6.283185307179586 * u[2 * p + 1]
        out[2 * p], out[2 * p + 1] = radius * math.cos(angle), radius * math.sin(angle)
    return out


@pytest.mark.parametrize("seed", [3, 2**40 + 7])
def test_core_sketch_is_within_a_few_ulps_of_libm(seed):
    # The core computes Box-Muller on 8 counters at once (cpp/lowrank/svd/gaussian.cpp, its own
    # log, sin and cos on AVX-512): each deviate must stay within a few units in the
    # last place of the C library's, not merely within the test above's 1e-14.
    count = 20000
    got = _core.gaussian_sketch(count, 1, seed, "float64")[:, 0]
    want = _box_muller_with_libm(seed, count)
    ulps = np.abs(got - want) / np.spacing(np.abs(want))
    assert ulps.max() <= 4, ulps.max()
    assert np.mean(ulps) < 1


def test_core_sketch_does_not_depend_on_how_it_is_split():
    # Entry e of the stream is the same bits whichever range computes it: one
    # column, a wider sketch's first column, the flattened sketch, and a sketch
    # large enough to be split over threads.
    seed = 11
    wide = _core.gaussian_sketch(1001, 7, seed, "float64")
    np.testing.assert_array_equal(_core.gaussian_sketch(1001, 1, seed, "float64")[:, 0],
                                  wide[:, 0])
    np.testing.assert_array_equal(_core.gaussian_sketch(7007, 1, seed, "float64")[:, 0],
                                  wide.ravel(order="F"))
    # 120008 entries: on 2 threads the second part starts at entry 60004, inside a
    # group of 32.
    big = _core.gaussian_sketch(30002, 4, seed, "float64")
    import threadpoolctl

    with threadpoolctl.threadpool_limits(1, user_api="blas"):
        np.testing.assert_array_equal(_core.gaussian_sketch(30002, 4, seed, "float64"), big)


def test_sketch_is_standard_gaussian():
    z = reference.gaussian_sketch(1000, 200, seed=7)
    assert abs(z.mean()) < 0.01 and abs(z.std() - 1.0) < 0.01
    assert abs(np.mean(z**4) - 3.0) < 0.05  # Gaussian kurtosis
    assert not np.array_equal(z, reference.gaussian_sketch(1000, 200, seed=8))


@pytest.mark.parametrize("layout", ["C", "F"])
@pytest.mark.parametrize("shape", [(60, 40), (40, 60)], ids=str)
def test_explicit_sketch_matches_reference_to_rounding(shape, layout, float_dtype):
    A = random_matrix(shape, float_dtype, seed=5)
    A = np.asfortranarray(A) if layout == "F" else A
    for k, oversamples, power_iters in [(1, 0, 0), (5, 3, 2), (12, 10, 1), (40, 10, 3)]:
        columns = min(k + oversamples, min(shape))
        sketch = random_matrix((shape[1], columns), float_dtype, seed=k)
        got = lc.randomized_svd(A, k, oversamples=oversamples, power_iters=power_iters,
                                sketch=sketch)
        want = reference.randomized_svd(A, k, oversamples=oversamples,
                                        power_iters=power_iters, sketch=sketch)
        scale = float(want.S[0])
        assert_close(got.S, want.S, float_dtype, scale=scale, factor=10)
        assert_close(got.to_dense(), want.to_dense(), float_dtype, scale=scale, factor=100)


@pytest.mark.parametrize("decay", [0.9, 0.8, 0.77, 0.7, 0.5, 0.3])
def test_small_svd_on_either_side_of_its_cholesky_limit(decay, float_dtype):
    # Step 4's SVD of the tall B^T (n x l) goes through Cholesky-QR2 while B's
    # condition number is at most 1e5 (one Cholesky-QR step for float32 up to 3e3)
    # and through gesdd beyond (cpp/lowrank/svd/small_svd.cpp). With l = 30 and
    # sigma_i = decay^i, cond(B) comes out (computed in float64 with NumPy) at 23,
    # 690, 3e4, 4e5 to 1e6, 6e8 to 1e10, and 8e8 (float32) or 2e16 (float64). Every
    # path must give the reference's triplets to rounding. (Without mixed precision,
    # whose float32 iterations would leave float32's rounding in the subspace found:
    # its own tests are below.)
    n, k, oversamples = 400, 20, 10
    A = decaying_spectrum(600, n, decay ** np.arange(n), seed=8, dtype=float_dtype)
    sketch = random_matrix((n, k + oversamples), float_dtype, seed=4)
    got = lc.randomized_svd(A, k, oversamples=oversamples, power_iters=2, sketch=sketch,
                            mixed_precision=False)
    want = reference.randomized_svd(A, k, oversamples=oversamples, power_iters=2,
                                    sketch=sketch)
    scale = float(want.S[0])
    assert_close(got.S, want.S, float_dtype, scale=scale, factor=10)
    assert_close(got.to_dense(), want.to_dense(), float_dtype, scale=scale, factor=100)
    U = got.U.astype(np.float64)
    assert_close(U.T @ U, np.eye(k), float_dtype, scale=1.0, factor=100)


def test_seed_gives_one_result_and_matches_reference(float_dtype):
    A = decaying_spectrum(80, 50, 0.8 ** np.arange(50), seed=6, dtype=float_dtype)
    first = lc.randomized_svd(A, 8, seed=42)
    second = lc.randomized_svd(A, 8, seed=42)
    for a, b in zip(first, second):
        assert np.array_equal(a, b)
    want = reference.randomized_svd(A, 8, seed=42)
    assert_close(first.U, want.U, float_dtype, scale=1.0, factor=100)
    assert_close(first.S, want.S, float_dtype, factor=10)
    # A different seed is a different sketch: the results differ beyond rounding.
    other = lc.randomized_svd(A, 8, seed=43, power_iters=0, oversamples=0)
    same = lc.randomized_svd(A, 8, seed=42, power_iters=0, oversamples=0)
    assert not np.allclose(other.S, same.S, rtol=1e-3)


@pytest.mark.parametrize("shape,k", [((300, 200), 1), ((300, 200), 10), ((200, 300), 20),
                                     ((500, 120), 30), ((120, 120), 60)], ids=str)
def test_default_accuracy_within_one_percent_on_one_over_i(shape, k, float_dtype):
    sigma = 1.0 / np.arange(1, min(shape) + 1)
    A = decaying_spectrum(*shape, sigma, seed=k, dtype=float_dtype)
    for seed in range(3):
        result = lc.randomized_svd(A, k, seed=seed)
        error = np.linalg.norm(A.astype(np.float64) - result.to_dense(), 2)
        assert error <= 1.01 * sigma[k], (seed, error / sigma[k])


def test_sketch_columns_are_capped_at_min_dimension():
    A = random_matrix((12, 9), np.float64, seed=8)
    result = lc.randomized_svd(A, 9, seed=0)  # k + oversamples = 19 > 9
    assert_close(result.S, np.linalg.svd(A, compute_uv=False), np.float64, factor=100)
    sketch = random_matrix((9, 9), np.float64, seed=9)
    assert_close(lc.randomized_svd(A, 4, sketch=sketch).S,
                 reference.randomized_svd(A, 4, sketch=sketch).S, np.float64, factor=10)


def test_exact_on_low_rank_input(float_dtype):
    A = decaying_spectrum(70, 40, [5.0, 3.0, 1.0], seed=3, dtype=float_dtype)
    result = lc.randomized_svd(A, 3, seed=1, power_iters=0)
    assert_close(result.S, [5.0, 3.0, 1.0], float_dtype, factor=10)
    assert lc.relative_error(A, result.to_dense()) < 50 * (1e-4 if float_dtype == np.float32
                                                          else 1e-12)


@pytest.mark.parametrize("layout", ["C", "F"])
def test_threaded_sizes_match_reference(layout, float_dtype):
    # Large enough for the BLAS to run threaded. In A's own dtype all through (without
    # mixed precision), to compare with the reference to that dtype's rounding.
    A = decaying_spectrum(900, 500, 1.0 / np.arange(1, 501), seed=11, dtype=float_dtype)
    A = np.asfortranarray(A) if layout == "F" else A
    sketch = random_matrix((500, 40), float_dtype, seed=12)
    got = lc.randomized_svd(A, 30, oversamples=10, power_iters=3, sketch=sketch,
                            mixed_precision=False)
    want = reference.randomized_svd(A, 30, oversamples=10, power_iters=3, sketch=sketch)
    assert_close(got.S, want.S, float_dtype, factor=10)
    assert_close(got.to_dense(), want.to_dense(), float_dtype, scale=float(want.S[0]), factor=100)


def test_thread_count_changes_only_rounding():
    threadpoolctl = pytest.importorskip("threadpoolctl")
    # float64 all through (mixed precision's float32 iterations would change in
    # float32's rounding: docs/reliability.md).
    A = decaying_spectrum(900, 500, 1.0 / np.arange(1, 501), seed=13)
    default = lc.randomized_svd(A, 20, seed=5, mixed_precision=False)
    with threadpoolctl.threadpool_limits(1, user_api="blas"):
        single = lc.randomized_svd(A, 20, seed=5, mixed_precision=False)
    assert_close(single.S, default.S, np.float64, factor=10)
    assert_close(single.to_dense(), default.to_dense(), np.float64, scale=1.0, factor=100)
    again = lc.randomized_svd(A, 20, seed=5, mixed_precision=False)  # same bits
    assert all(np.array_equal(x, y) for x, y in zip(again, default))


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int64],
                         ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("shape", [(1, 1), (7, 3), (3, 7), (6, 6), (30, 12)], ids=str)
def test_every_rank_with_explicit_sketch_matches_reference(shape, dtype):
    A = random_matrix(shape, dtype, seed=14)
    computed = np.float32 if dtype == np.float32 else np.float64
    for k in range(1, min(shape) + 1):
        columns = min(k + 2, min(shape))
        sketch = random_matrix((shape[1], columns), computed, seed=k)
        got = lc.randomized_svd(A, k, oversamples=2, power_iters=1, sketch=sketch)
        want = reference.randomized_svd(A, k, oversamples=2, power_iters=1, sketch=sketch)
        assert got.U.shape == (shape[0], k) and got.Vh.shape == (k, shape[1])
        assert got.S.dtype == computed
        scale = max(float(want.S[0]), 1e-30)
        assert_close(got.S, want.S, computed, scale=scale, factor=10)
        assert_close(got.to_dense(), want.to_dense(), computed, scale=scale, factor=100)


def test_blas_thread_count_is_left_as_found():
    threadpoolctl = pytest.importorskip("threadpoolctl")

    def counts():
        return sorted((i["filepath"], i["num_threads"])
                      for i in threadpoolctl.threadpool_info() if i["user_api"] == "blas")

    before = counts()
    A = decaying_spectrum(900, 500, 1.0 / np.arange(1, 501), seed=13)
    lc.randomized_svd(A, 20, seed=5)
    lc.singular_values(np.stack([A[:50, :40]] * 4))
    lc.Bottleneck(2, epochs=1, samples=64, seed=0).fit(A[:20, :10])
    assert counts() == before


@pytest.mark.parametrize("scale", [1e300, 1e-300, 1e30, 1e-30])
def test_entries_near_overflow_or_underflow(scale, float_dtype):
    # A power iteration forms A^T A W, of size ||A||^2: without scaling, entries of
    # 1e300 overflowed to NaN there (found by tools/fuzz_bindings.py). float32 cannot
    # hold 1e300, so it is checked at 1e30 and 1e-30 (its ||A||^2 overflows too).
    if float_dtype == np.float32 and abs(np.log10(scale)) > 30:
        pytest.skip("outside float32's range")
    base = decaying_spectrum(40, 30, np.exp(-np.arange(8) / 2), seed=3)
    A = (base * scale).astype(float_dtype)
    got = lc.randomized_svd(A, 5, seed=0)
    want = np.linalg.svd(A.astype(np.float64), compute_uv=False)[:5]
    assert np.all(np.isfinite(got.S))
    assert_close(got.S / scale, want / scale, float_dtype, scale=float(want[0] / scale),
                 factor=10)


@pytest.mark.parametrize("scale", [1e300, 1e-300])
def test_a_given_sketch_of_any_scale(scale):
    # Only the sketch's span matters; entries of 1e300 overflowed A^T A Omega (found
    # by tools/fuzz_bindings.py). It is scaled by a power of two, exactly.
    A = decaying_spectrum(30, 20, np.exp(-np.arange(6.0)), seed=4)
    sketch = np.random.default_rng(5).standard_normal((20, 8))
    want = lc.randomized_svd(A, 4, sketch=sketch, oversamples=4)
    got = lc.randomized_svd(A, 4, sketch=sketch * scale, oversamples=4)
    assert_close(got.S, want.S, np.float64, scale=float(want.S[0]), factor=10)


@pytest.mark.parametrize("layout", ["C", "F"])
def test_many_row_blocks_match_one(layout, float_dtype):
    # A read in blocks of a few rows (both panel layouts: float32 passes its panels
    # to BLAS transposed) gives what one block gives, to rounding.
    A = decaying_spectrum(300, 200, 1.0 / np.arange(1, 201), seed=21, dtype=float_dtype)
    A = np.asfortranarray(A) if layout == "F" else A
    one = _core.randomized_svd(A, _core.RandomizedSvdOptions(
        rank=10, sketch_columns=20, power_iters=2, seed=3, mixed_precision="off"))
    itemsize = A.dtype.itemsize
    for block_bytes in (1, 7 * 200 * itemsize, 64 * 300 * itemsize):
        many = _core.randomized_svd(A, _core.RandomizedSvdOptions(
            rank=10, sketch_columns=20, power_iters=2, seed=3, mixed_precision="off",
            tuning=_core.RandomizedSvdTuning(block_bytes=block_bytes)))
        assert_close(many[1], one[1], float_dtype, factor=10)
        assert_close(many[0] * many[1] @ many[2], one[0] * one[1] @ one[2], float_dtype,
                     factor=100)
    with pytest.raises(ValueError, match="block_bytes"):
        _core.randomized_svd(A, _core.RandomizedSvdOptions(
            rank=10, sketch_columns=20, power_iters=2, seed=3, mixed_precision="off",
            tuning=_core.RandomizedSvdTuning(block_bytes=0)))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("noise", [0.0, "tiny", 1e-2], ids=["rank-k", "tiny-noise", "noise"])
def test_last_products_with_and_without_the_shared_pass(dtype, noise):
    # Row-major A: Q and B come from one pass (Y = A W, Z = A^T Y, B^T = Z R^-1)
    # when Y is well enough conditioned (noise 1e-2), and from a pass of their own
    # when it is not (exactly rank k: Cholesky refuses; noise so far below sigma_1
    # that eps (sigma_1 / noise)^2 > 1: the accuracy estimate refuses). Either way
    # the result is the optimum's, to the dtype's rounding.
    m, n, k = 900, 400, 10
    tiny = 1e-4 if dtype == np.float32 else 1e-9
    level = tiny if noise == "tiny" else noise
    s = np.concatenate([np.linspace(1.0, 0.5, k), np.full(n - k, level)])
    A = decaying_spectrum(m, n, s, seed=12).astype(dtype)
    r = lc.randomized_svd(A, k, oversamples=10, power_iters=2, seed=3)
    error = np.linalg.norm(A.astype(np.float64) - r.to_dense().astype(np.float64), 2)
    floor = 50 * np.finfo(dtype).eps * s[0]
    assert error <= 1.001 * s[k] + floor
    assert_close(r.S, s[:k], dtype, scale=s[0], factor=50)
    for factor in (r.U, r.Vh.T):
        assert_close(factor.T @ factor, np.eye(k), dtype, factor=50)


def _mixed_and_full(A, k, mode="auto", **options):
    # The float32 iterations themselves: AMX's, a step lower where the CPU has it,
    # are tests/internal/test_amx.py's. `mode`: the default, verified ("auto"), or "fast".
    _, amx = _core._testing.amx(False)
    try:
        mixed = lc.randomized_svd(A, k, seed=7, mixed_precision=mode, **options)
        full = lc.randomized_svd(A, k, seed=7, mixed_precision=False, **options)
    finally:
        _core._testing.amx(amx)
    return mixed, full


@pytest.mark.parametrize("layout", ["C", "F"])
@pytest.mark.parametrize("scale", [1.0, 2.0**-1000, 2.0**1000], ids=["1", "tiny", "huge"])
def test_mixed_precision_is_as_accurate_as_float64(layout, scale):
    # Asked for by name ("fast"), the float32 power iterations run on a slowly
    # decaying spectrum (1/i) where their rounding stays below the algorithm's own
    # error; the default ("auto") takes them only where the Ritz-leak check proves
    # that (tests/test_accuracy_contract.py).
    s = 1.0 / np.arange(1, 601)
    A = decaying_spectrum(2000, 600, s, seed=8) * scale
    A = np.asfortranarray(A) if layout == "F" else A
    mixed, full = _mixed_and_full(A, 20, mode="fast", oversamples=10, power_iters=3)
    # Float32 rounding took part: the bits differ from the all-float64 run ...
    assert not np.array_equal(mixed.S, full.S)
    # ... but not the accuracy: the singular values agree to 1e-6 of themselves (the
    # algorithm's own error in them is 1e-3 here: sigma_20 = 0.05 comes out 0.04992)
    # and the spectral error to 1e-7 of itself.
    np.testing.assert_allclose(mixed.S, full.S, rtol=1e-6)
    assert spectral_error(A, mixed) == pytest.approx(spectral_error(A, full), rel=1e-7)
    assert spectral_error(A, mixed) <= 1.01 * s[20] * scale
    for factor in (mixed.U, mixed.Vh.T):
        np.testing.assert_allclose(factor.T @ factor, np.eye(20), atol=1e-13)
    assert mixed.U.dtype == np.float64


@pytest.mark.parametrize("layout", ["C", "F"])
def test_the_float32_copy_pass_sees_every_entry(layout):
    # The pass that rounds float64 A to float32 also finds A's largest entry
    # (cpp/lowrank/common/matrix.cpp, float_copy_max): scalar up to the copy's first 64-byte
    # boundary, 16 at a time with streaming stores, scalar for the tail. 517 columns
    # put row 3 of the C-ordered copy 60 bytes past a boundary (a one-entry head);
    # the F-ordered copy's rows of 1000 end in an 8-entry tail. A NaN or Inf
    # anywhere, head, body or tail, must be found, and so must a huge entry that
    # sets the copy's scaling.
    s = 1.0 / np.arange(1, 518)
    base = decaying_spectrum(1000, 517, s, seed=3)
    positions = [(3, 0), (3, 100), (3, 516), (0, 0), (999, 516), (995, 7)]
    for row, col in positions:
        for bad in (np.nan, np.inf, -np.inf):
            A = base.copy()
            A[row, col] = bad
            A = np.asfortranarray(A) if layout == "F" else A
            with pytest.raises(ValueError, match="A contains NaN or Inf"):
                lc.randomized_svd(A, 40, oversamples=10, power_iters=2)
    for row, col in positions:
        A = base * 1e-30
        A[row, col] = 1e200  # far outside float32's range: the copy is scaled
        A = np.asfortranarray(A) if layout == "F" else A
        got = lc.randomized_svd(A, 40, oversamples=10, power_iters=2)
        assert got.S[0] == pytest.approx(1e200, rel=1e-12)


@pytest.mark.parametrize("layout", ["C", "F"])
def test_mixed_precision_near_its_limit_keeps_the_error(layout):
    # mixed_precision="fast": 1/i at k = 150: eps32 (sigma_1 / sigma_k)^2 = 2.7e-3
    # (the core's estimate is about twice that), inside the 3e-2 limit: float32
    # iterations run, and the spectral error moves by no more than a different
    # sketch would move it.
    s = 1.0 / np.arange(1, 601)
    A = decaying_spectrum(2000, 600, s, seed=11)
    A = np.asfortranarray(A) if layout == "F" else A
    mixed, full = _mixed_and_full(A, 150, "fast", oversamples=10, power_iters=3)
    assert not np.array_equal(mixed.S, full.S)
    assert spectral_error(A, mixed) == pytest.approx(spectral_error(A, full), rel=1e-4)
    np.testing.assert_allclose(mixed.S, full.S, rtol=1e-4)
    for factor in (mixed.U, mixed.Vh.T):
        np.testing.assert_allclose(factor.T @ factor, np.eye(150), atol=1e-13)


@pytest.mark.parametrize("floor", [1e-2, 1e-6])
def test_mixed_precision_takes_its_basis_from_float32_only_where_that_is_negligible(floor):
    # mixed_precision="fast", C-ordered float64 after float32 iterations: Y = A W
    # comes from the float32 copy
    # while eps32 sigma_1 / sigma_(k+1) <= 1e-4, as with a floor of 1e-2 under
    # sigma_1 = 1 (1.2e-5). Under a floor of 1e-6 (1.2e-1) rounding A to float32
    # would move the basis by a good part of sigma_(k+1): the float64 pass runs
    # instead. Either way the error is the optimum's, to far below float32's
    # rounding.
    # copy_range_limit=0 (a private option, for benchmarks/studies/copy_range_study.py)
    # keeps the float64 product: the bits show which ran.
    k = 10
    s = np.concatenate([np.linspace(1.0, 0.5, k), np.full(590, floor)])
    A = decaying_spectrum(2000, 600, s, seed=13)
    mixed, full = _mixed_and_full(A, k, "fast", oversamples=10, power_iters=3)
    assert spectral_error(A, mixed) <= (1 + 1e-6) * s[k]
    assert spectral_error(A, mixed) == pytest.approx(spectral_error(A, full), rel=1e-6)
    np.testing.assert_allclose(mixed.S, full.S, rtol=1e-9)
    _, amx = _core._testing.amx(False)
    try:
        default = _core.randomized_svd(A, _core.RandomizedSvdOptions(
            rank=k, sketch_columns=k + 10, power_iters=3, seed=7, mixed_precision="fast"))
        float64_y = _core.randomized_svd(A, _core.RandomizedSvdOptions(
            rank=k, sketch_columns=k + 10, power_iters=3, seed=7, mixed_precision="fast",
            tuning=_core.RandomizedSvdTuning(copy_range_limit=0.0)))
    finally:
        _core._testing.amx(amx)
    taken = not all(np.array_equal(x, y) for x, y in zip(default, float64_y))
    assert taken == (floor == 1e-2)


def test_copy_range_limit_is_checked():
    A = random_matrix((60, 40), np.float64, seed=2)
    for bad in (-1.0, float("nan")):
        with pytest.raises(ValueError, match="copy_range_limit"):
            _core.randomized_svd(A, _core.RandomizedSvdOptions(
                rank=3, sketch_columns=5, power_iters=2, seed=0,
                tuning=_core.RandomizedSvdTuning(copy_range_limit=bad)))


def test_mixed_precision_falls_back_when_float32_cannot_resolve_the_spectrum():
    # exp(-i/3): sigma_1 / sigma_40 ~ 5e5, far below what float32 iterations resolve.
    # The core sees it after one float32 iteration and recomputes in float64: the
    # very bits of mixed_precision=False.
    A = decaying_spectrum(2000, 600, np.exp(-np.arange(600) / 3.0), seed=9)
    mixed, full = _mixed_and_full(A, 40, oversamples=10, power_iters=3)
    assert all(np.array_equal(x, y) for x, y in zip(mixed, full))


def test_mixed_precision_is_checked_and_ignored_for_small_float32():
    # Float32 input goes lower only on AMX and for products of at least 1e7 flops
    # (2 m n l; here 4.8e6): tests/internal/test_amx.py.
    A = random_matrix((400, 300), np.float32, seed=10)
    mixed, full = _mixed_and_full(A, 10, power_iters=2)
    assert all(np.array_equal(x, y) for x, y in zip(mixed, full))
    with pytest.raises(ValueError, match="mixed_precision"):
        lc.randomized_svd(A, 10, mixed_precision="yes")
    with pytest.raises(TypeError, match="mixed_precision"):
        lc.randomized_svd(A, 10, mixed_precision=1.0)


# --- NumPy or CuPy --------------------------------------------------------------------
# On either device (the xp fixture): CuPy input runs on the CUDA core and must give
# the CPU core's answers, in arrays of the input's kind.


@pytest.mark.parametrize("layout", ["C", "F"])
@pytest.mark.parametrize("shape", [(80, 50), (50, 80)], ids=str)
def test_randomized_svd_same_seed_agrees_with_cpu(xp, shape, layout, float_dtype):
    m, n = shape
    A_host = decaying_spectrum(m, n, 0.8 ** np.arange(min(m, n)), seed=6, dtype=float_dtype)
    A = to_device(xp, A_host, layout)
    before = A.copy()
    for k, oversamples, power_iters in [(1, 0, 0), (8, 5, 2), (10, 10, "auto")]:
        got = lc.randomized_svd(A, k, oversamples=oversamples, power_iters=power_iters,
                                seed=42)
        assert all(isinstance(x, xp.ndarray) for x in got)
        # The GPU runs in A's precision throughout, so either device is compared with the
        # CPU without power iterations below A's precision: the same algorithm, to rounding.
        cpu = lc.randomized_svd(A_host, k, oversamples=oversamples, power_iters=power_iters,
                                seed=42, mixed_precision=False)
        scale = float(cpu.S[0])
        assert_close(to_host(got.S), cpu.S, float_dtype, scale=scale, factor=10)
        assert_close(to_host(got.U), cpu.U, float_dtype, scale=1.0, factor=100)
        assert_close(to_host(got.Vh), cpu.Vh, float_dtype, scale=1.0, factor=100)
        # Deterministic: the same seed twice gives the same bits; on the GPU whatever
        # mixed_precision asks for (the GPU has one precision).
        for precision in ("auto", "fast", False) if on_gpu(xp) else ("auto",):
            again = lc.randomized_svd(A, k, oversamples=oversamples, power_iters=power_iters,
                                      seed=42, mixed_precision=precision)
            for a, b in zip(got, again):
                assert bool((a == b).all())
    assert bool((A == before).all()), "A was modified"


def test_randomized_svd_explicit_sketch_matches_reference(xp, float_dtype):
    A_host = random_matrix((60, 40), float_dtype, seed=5)
    A = xp.asarray(A_host)
    for k, oversamples, power_iters in [(1, 0, 0), (5, 3, 2), (40, 10, 3)]:
        columns = min(k + oversamples, 40)
        sketch_host = random_matrix((40, columns), float_dtype, seed=k)
        for sketch in (xp.asarray(sketch_host), xp.asfortranarray(xp.asarray(sketch_host))):
            got = lc.randomized_svd(A, k, oversamples=oversamples, power_iters=power_iters,
                                    sketch=sketch)
            want = reference.randomized_svd(A_host, k, oversamples=oversamples,
                                            power_iters=power_iters, sketch=sketch_host)
            scale = float(want.S[0])
            assert_close(to_host(got.S), want.S, float_dtype, scale=scale, factor=10)
            assert_close(to_host(got.to_dense()), want.to_dense(), float_dtype, scale=scale,
                         factor=100)
