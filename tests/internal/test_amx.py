"""Power iterations on AMX in bfloat16 pieces (cpp/amx_product.*).

The product M^T (M X) on AMX is checked against float64 NumPy with X rounded to
bfloat16 (the product's design: amx_product.hpp), to about 2^-16 of the scale, on
shapes that exercise every tail. randomized_svd then uses it for the power
iterations of row-major float32 input (and of float64 input's float32 copy) only
when the spectrum allows, and its spectral error matches the float32 products'.
Where the CPU or OS gives no AMX, these tests skip.
"""

from __future__ import annotations

import numpy as np
import pytest

import lowrank_core as lc
from lowrank_core import _core
from lowrank_core.data import decaying_spectrum

from helpers import random_matrix, spectral_error

AVAILABLE, _ = _core._testing.amx()
needs_amx = pytest.mark.skipif(not AVAILABLE, reason="this CPU or OS gives no AMX-BF16 tiles")


@pytest.fixture
def amx_restored():
    """Leaves the AMX switch as the test found it."""
    _, before = _core._testing.amx()
    yield
    _core._testing.amx(before)


def to_bfloat16(x):
    """float32 rounded to the nearest bfloat16 (ties to even), as float64."""
    bits = np.asarray(x, dtype=np.float32).view(np.uint32).astype(np.uint64)
    bits = ((bits + 0x7FFF + ((bits >> 16) & 1)) >> 16) << 16
    return bits.astype(np.uint32).view(np.float32).astype(np.float64)


SHAPES = [  # (rows, cols, l)
    (1, 1, 1),
    (5, 3, 2),
    (31, 17, 5),  # less than one block of 32 rows, less than one tile of columns
    (64, 32, 16),  # exact tiles
    (129, 100, 33),  # tails in rows, columns and panel tiles (3 of them)
    (97, 45, 30),  # two column tiles (Y stays in the tile registers), tails
    (300, 257, 48),
    (1000, 70, 20),  # many blocks on two threads
    # Wide panels (7 or more column tiles) sum M^T Y two blocks at a time: one step of
    # 64 rows, a step of one block, of a block and a few rows, and two threads' ranges.
    (20, 10, 100),
    (33, 10, 97),
    (65, 33, 112),
    (300, 257, 110),
    (1000, 70, 150),
    (7, 5, 0),
    (0, 5, 3),
]


@needs_amx
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
def test_amx_product_matches_numpy(shape, amx_restored):
    rows, cols, l = shape
    rng = np.random.default_rng(rows + cols + l)
    M = rng.standard_normal((rows, cols)).astype(np.float32)
    X = rng.standard_normal((cols, l)).astype(np.float32)
    Z = _core._testing.amx_normal_product(M, X)
    M64 = M.astype(np.float64)
    expected = M64.T @ (M64 @ to_bfloat16(X))
    assert Z.shape == (cols, l) and Z.dtype == np.float32
    # Each entry: a sum of |M| |M| |X| terms, each off by about 2^-16 of itself.
    scale = np.abs(M64).T @ (np.abs(M64) @ np.abs(to_bfloat16(X)))
    assert np.all(np.abs(Z - expected) <= 2.0**-14 * scale + 1e-30)


@needs_amx
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
def test_one_piece_amx_product_matches_numpy(shape, amx_restored):
    # M rounded to bfloat16 (one piece): Z ~ M_hi^T (M_hi X_hi), Y = M_hi X_hi split
    # in two pieces, so again to about 2^-16 of the scale of M_hi and X_hi.
    rows, cols, l = shape
    rng = np.random.default_rng(rows + cols + l + 1)
    M = rng.standard_normal((rows, cols)).astype(np.float32)
    X = rng.standard_normal((cols, l)).astype(np.float32)
    Z = _core._testing.amx_normal_product(M, X, pieces=1)
    Mh, Xh = to_bfloat16(M), to_bfloat16(X)
    expected = Mh.T @ (Mh @ Xh)
    scale = np.abs(Mh).T @ (np.abs(Mh) @ np.abs(Xh))
    assert Z.shape == (cols, l) and Z.dtype == np.float32
    assert np.all(np.abs(Z - expected) <= 2.0**-14 * scale + 1e-30)
    if rows and cols and l:  # and it is not the two-piece product
        M64 = M.astype(np.float64)
        two_piece = M64.T @ (M64 @ Xh)
        assert np.max(np.abs(Z - two_piece)) > np.max(np.abs(Z - expected))


def test_amx_product_refuses_other_piece_counts():
    M = random_matrix((40, 30), np.float32)
    with pytest.raises(ValueError, match="pieces"):
        _core._testing.amx_normal_product(M, random_matrix((30, 4), np.float32), pieces=3)


@needs_amx
def test_amx_product_declines_when_switched_off(amx_restored):
    M = random_matrix((40, 30), np.float32)
    X = random_matrix((30, 4), np.float32)
    assert _core._testing.amx(False) == (True, True)
    assert _core._testing.amx_normal_product(M, X) is None
    assert _core._testing.amx(True) == (True, False)
    assert _core._testing.amx_normal_product(M, X) is not None


def test_cpu_kernels_reports_what_runs(amx_restored):
    info = lc.cpu_kernels()
    assert info == {"products": _core._testing.normal_kernel(), "amx": AVAILABLE}
    _core._testing.amx(False)
    assert lc.cpu_kernels()["amx"] is False


def test_amx_product_refuses_bad_shapes():
    M = random_matrix((40, 30), np.float32)
    with pytest.raises(ValueError, match="rows"):
        _core._testing.amx_normal_product(M, random_matrix((29, 4), np.float32))
    with pytest.raises(ValueError, match="C-contiguous"):
        _core._testing.amx_normal_product(np.asfortranarray(M), random_matrix((30, 4), np.float32))


def _with_and_without_amx(A, k, **options):
    # The AMX pieces run past the accuracy contract only when asked for by name.
    options.setdefault("mixed_precision", "fast")
    _core._testing.amx(True)
    on = lc.randomized_svd(A, k, seed=5, oversamples=10, power_iters=4, **options)
    _core._testing.amx(False)
    off = lc.randomized_svd(A, k, seed=5, oversamples=10, power_iters=4, **options)
    _core._testing.amx(True)
    return on, off


@needs_amx
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("spectrum", ["inverse", "exponential"])
def test_randomized_svd_on_amx_keeps_the_error(dtype, spectrum, amx_restored):
    # 1/i at k = 20: 2^-16 (sigma_1 / sigma_k)^2 = 6e-3, inside the limit of 2;
    # exp(-i/10) far inside it.
    i = np.arange(1, 601, dtype=np.float64)
    s = 1.0 / i if spectrum == "inverse" else np.exp(-(i - 1) / 10)
    A = decaying_spectrum(2000, 600, s, seed=12, dtype=dtype)
    on, off = _with_and_without_amx(A, 20)
    assert not np.array_equal(on.S, off.S)  # the AMX products ran
    optimum = s[20]
    assert spectral_error(A, on) / optimum == pytest.approx(
        spectral_error(A, off) / optimum, rel=1e-4)
    # Both S are estimates, off sigma by about 1e-4 near sigma_k here.
    np.testing.assert_allclose(on.S, off.S, rtol=1e-4)
    eps = np.finfo(dtype).eps
    for factor in (on.U, on.Vh.T):
        np.testing.assert_allclose(factor.T @ factor, np.eye(20), atol=50 * eps)


@needs_amx
def test_randomized_svd_on_amx_keeps_the_error_of_a_wide_sketch(amx_restored):
    # 1/i at k = 100 (l = 110, seven column tiles): 2^-16 (sigma_1 / sigma_k)^2 =
    # 0.15, inside the limit of 2 (on an estimate about twice that). The precision
    # study measured changes up to 3e-5 there.
    s = 1.0 / np.arange(1, 601, dtype=np.float64)
    A = decaying_spectrum(2000, 600, s, seed=15, dtype=np.float32)
    on, off = _with_and_without_amx(A, 100)
    assert not np.array_equal(on.S, off.S)
    assert spectral_error(A, on) == pytest.approx(spectral_error(A, off), rel=1e-4)
    eps = np.finfo(np.float32).eps
    for factor in (on.U, on.Vh.T):
        np.testing.assert_allclose(factor.T @ factor, np.eye(100), atol=100 * eps)


@needs_amx
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_randomized_svd_leaves_amx_when_the_spectrum_needs_more(dtype, amx_restored):
    # 1/i^2 at k = 60: sigma_1 / sigma_k = 3600, 2^-16 (sigma_1 / sigma_k)^2 = 198,
    # far past the limit. The core sees it in the first product (on AMX), redoes that
    # product in float32 and stays there (float64 input: goes on in float64, past
    # float32's limit too): the very bits of a run without AMX.
    s = np.arange(1, 601, dtype=np.float64) ** -2.0
    A = decaying_spectrum(2000, 600, s, seed=13, dtype=dtype)
    on, off = _with_and_without_amx(A, 60)
    assert all(np.array_equal(x, y) for x, y in zip(on, off))


@needs_amx
def test_a_lifted_limit_puts_any_spectrum_on_amx(amx_restored):
    # The spectrum of the test above, with the limit lifted (as the precision study
    # does): now the power iterations run on AMX, and the bits move.
    s = np.arange(1, 601, dtype=np.float64) ** -2.0
    A = decaying_spectrum(2000, 600, s, seed=13, dtype=np.float32)
    lifted = _core.randomized_svd(A, _core.RandomizedSvdOptions(
        rank=60, sketch_columns=70, power_iters=4, seed=5, mixed_precision="fast",
        tuning=_core.RandomizedSvdTuning(amx_limit=np.inf)))
    default = lc.randomized_svd(A, 60, seed=5, oversamples=10, power_iters=4)
    _core._testing.amx(False)
    without = lc.randomized_svd(A, 60, seed=5, oversamples=10, power_iters=4)
    assert all(np.array_equal(x, y) for x, y in zip(default, without))
    assert not np.array_equal(lifted[1], default.S)


@needs_amx
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_one_piece_iterations_run_inside_their_limit_and_keep_the_error(dtype, amx_restored):
    # 1/i at k = 20: 2^-16 (sigma_1 / sigma_k)^2 = 6e-3, estimated at about twice
    # that, inside amx_one_piece_limit (0.15): the iterations after the first split
    # A into one bfloat16 piece. With that limit at 0 they keep two pieces, and the
    # bits move; the error does not (the precision study's changes there: ~1e-7).
    s = 1.0 / np.arange(1, 601, dtype=np.float64)
    A = decaying_spectrum(2000, 600, s, seed=12, dtype=dtype)
    one = _core.randomized_svd(A, _core.RandomizedSvdOptions(
        rank=20, sketch_columns=30, power_iters=4, seed=5, mixed_precision="fast"))
    two = _core.randomized_svd(A, _core.RandomizedSvdOptions(
        rank=20, sketch_columns=30, power_iters=4, seed=5, mixed_precision="fast",
        tuning=_core.RandomizedSvdTuning(amx_one_piece_limit=0.0)))
    lifted = _core.randomized_svd(A, _core.RandomizedSvdOptions(
        rank=20, sketch_columns=30, power_iters=4, seed=5, mixed_precision="fast",
        tuning=_core.RandomizedSvdTuning(amx_one_piece_limit=np.inf)))
    assert all(np.array_equal(x, y) for x, y in zip(one, lifted))
    assert not np.array_equal(one[1], two[1])
    A64 = A.astype(np.float64)
    errors = [np.linalg.norm(A64 - (U.astype(np.float64) * S) @ Vh.astype(np.float64), 2) / s[20]
              for U, S, Vh in (one, two)]
    assert errors[0] == pytest.approx(errors[1], rel=1e-5)
    np.testing.assert_allclose(one[1], two[1], rtol=1e-4)


@needs_amx
def test_one_piece_iterations_stay_out_past_their_limit(amx_restored):
    # 1/i at k = 100: 2^-16 (sigma_1 / sigma_k)^2 = 0.15, estimated at about 0.3, past
    # amx_one_piece_limit (0.15): two pieces, the
    # bits of amx_one_piece_limit=0.
    s = 1.0 / np.arange(1, 601, dtype=np.float64)
    A = decaying_spectrum(2000, 600, s, seed=15, dtype=np.float32)
    default = _core.randomized_svd(A, _core.RandomizedSvdOptions(
        rank=100, sketch_columns=110, power_iters=4, seed=5, mixed_precision="fast"))
    two = _core.randomized_svd(A, _core.RandomizedSvdOptions(
        rank=100, sketch_columns=110, power_iters=4, seed=5, mixed_precision="fast",
        tuning=_core.RandomizedSvdTuning(amx_one_piece_limit=0.0)))
    assert all(np.array_equal(x, y) for x, y in zip(default, two))


def test_amx_limit_is_checked():
    A = random_matrix((50, 40), np.float32)
    with pytest.raises(ValueError, match="amx_one_piece_limit"):
        _core.randomized_svd(A, _core.RandomizedSvdOptions(
            rank=3, sketch_columns=5, power_iters=2, seed=0,
            tuning=_core.RandomizedSvdTuning(amx_one_piece_limit=-1.0)))
    with pytest.raises(ValueError, match="amx_one_piece_limit"):
        _core.randomized_svd(A, _core.RandomizedSvdOptions(
            rank=3, sketch_columns=5, power_iters=2, seed=0,
            tuning=_core.RandomizedSvdTuning(amx_one_piece_limit=float("nan"))))
    with pytest.raises(ValueError, match="amx_limit"):
        _core.randomized_svd(A, _core.RandomizedSvdOptions(
            rank=3, sketch_columns=5, power_iters=2, seed=0,
            tuning=_core.RandomizedSvdTuning(amx_limit=-1.0)))
    with pytest.raises(ValueError, match="amx_limit"):
        _core.randomized_svd(A, _core.RandomizedSvdOptions(
            rank=3, sketch_columns=5, power_iters=2, seed=0,
            tuning=_core.RandomizedSvdTuning(amx_limit=float("nan"))))


@needs_amx
def test_mixed_precision_false_keeps_float32_products(amx_restored):
    s = 1.0 / np.arange(1, 601, dtype=np.float64)
    A = decaying_spectrum(2000, 600, s, seed=14, dtype=np.float32)
    _core._testing.amx(True)
    plain = lc.randomized_svd(A, 20, seed=3, mixed_precision=False)
    _core._testing.amx(False)
    without = lc.randomized_svd(A, 20, seed=3)
    assert all(np.array_equal(x, y) for x, y in zip(plain, without))


@needs_amx
def test_the_first_amx_pass_checks_every_entry(amx_restored):
    # For C-ordered float32 A whose power iterations go to AMX, A's largest entry (NaN
    # and Inf refused, a huge or tiny A scaled) is found by the first product's pass
    # (amx_product.cpp, split_product), not by a pass of its own. 517 columns end each
    # row in a 5-entry tail of a 16-wide load; 1001 rows end in a short block of 32.
    s = 1.0 / np.arange(1, 518)
    base = decaying_spectrum(1001, 517, s, seed=3, dtype=np.float32)
    positions = [(0, 0), (3, 100), (3, 516), (500, 512), (999, 7), (1000, 516)]
    for row, col in positions:
        for bad in (np.nan, np.inf, -np.inf):
            A = base.copy()
            A[row, col] = bad
            with pytest.raises(ValueError, match="A contains NaN or Inf"):
                lc.randomized_svd(A, 40, oversamples=10, power_iters=2)
    reference = lc.randomized_svd(base, 40, oversamples=10, power_iters=2, seed=4)
    for scale in (2.0**100, 2.0**-100):  # outside the safe range: a scaled copy runs
        for row, col in positions[:3]:
            A = base * np.float32(scale)
            A[row, col] *= 2  # the largest entry, wherever it is, sets the scaling
            got = lc.randomized_svd(A, 40, oversamples=10, power_iters=2, seed=4)
            assert np.all(np.isfinite(got.S))
            np.testing.assert_allclose(got.S / scale, reference.S, rtol=1e-2)


@needs_amx
@pytest.mark.parametrize("dtype", ["nan", "inf", "scaled", "zero"])
def test_the_first_amx_pass_makes_float64_copy(dtype, amx_restored):
    # C-ordered float64 A whose float32 iterations go to AMX: the first product's
    # pass rounds A to float32 on the way, writes the copy the iterations use and
    # finds A's largest entry (amx_normal_product_rounding), where a pass of its own
    # did that before. The copy holds what static_cast rounds to, so the results are
    # those of the separate pass: here, a power-of-two multiple of A (inside
    # float64's safe range, outside the copy's [2^-40, 2^40], so the copy is scaled
    # and the iterations start again) gives the same U and Vh and S scaled exactly.
    # NaN or Inf in a tail (1001 rows, 517 columns) is refused; zero A gives zeros.
    s = 1.0 / np.arange(1, 518)
    base = decaying_spectrum(1001, 517, s, seed=3)
    want = lc.randomized_svd(base, 40, oversamples=10, power_iters=2, seed=4)
    if dtype in ("nan", "inf"):
        for row, col in [(0, 0), (500, 512), (1000, 516)]:
            A = base.copy()
            A[row, col] = np.nan if dtype == "nan" else -np.inf
            with pytest.raises(ValueError, match="A contains NaN or Inf"):
                lc.randomized_svd(A, 40, oversamples=10, power_iters=2)
    elif dtype == "scaled":
        for scale in (2.0**-60, 2.0**60):
            got = lc.randomized_svd(base * scale, 40, oversamples=10, power_iters=2, seed=4)
            np.testing.assert_array_equal(got.S, want.S * scale)
            np.testing.assert_array_equal(got.U, want.U)
            np.testing.assert_array_equal(got.Vh, want.Vh)
    else:
        got = lc.randomized_svd(np.zeros_like(base), 40, oversamples=10, power_iters=2, seed=4)
        assert np.array_equal(got.S, np.zeros(40))



@needs_amx
@pytest.mark.parametrize("pieces", [1, 2])
@pytest.mark.parametrize("shape", [(5000, 40, 20), (3000, 33, 100), (1100, 70, 150),
                                   (4100, 1000, 150)],
                         ids=lambda s: "x".join(map(str, s)))
def test_chunked_amx_product_matches_numpy_and_repeats_its_bits(pieces, shape, chunked,
                                                                 amx_restored):
    """Chunks of 16 blocks of rows or more (8, 5, 2 and 8 of them; the last three on
    wide panels), each summed on its own and added up in the chunks' order: the bits
    must not depend on which thread took which chunk. The last shape's chunks hold
    over 4 MiB of sums, which the threads add up together (gather_z)."""
    rows, cols, l = shape
    rng = np.random.default_rng(rows + pieces)
    M = rng.standard_normal((rows, cols)).astype(np.float32)
    X = rng.standard_normal((cols, l)).astype(np.float32)
    Z = _core._testing.amx_normal_product(M, X, pieces=pieces)
    Mp = to_bfloat16(M) if pieces == 1 else M.astype(np.float64)
    Xh = to_bfloat16(X)
    expected = Mp.T @ (Mp @ Xh)
    scale = np.abs(Mp).T @ (np.abs(Mp) @ np.abs(Xh))
    assert np.all(np.abs(Z - expected) <= 2.0**-14 * scale + 1e-30)
    for _ in range(12):
        np.testing.assert_array_equal(_core._testing.amx_normal_product(M, X, pieces=pieces), Z)
