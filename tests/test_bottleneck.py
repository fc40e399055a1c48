"""The bottleneck network: core against the reference and finite differences, the
accuracy the issue asks of data="exact", rank, scale, determinism, hooks and errors."""

from __future__ import annotations

import _thread
import signal
import threading

import numpy as np
import pytest

import lowrank_core as lc
from lowrank_core import _core, reference
from lowrank_core.reference import _bottleneck as ref_bottleneck

from helpers import assert_close, random_matrix, to_host

WIDTHS = [7, 6, 3, 5]  # n -> 6 -> 3 -> m: a non-square A and unequal widths


def core_network(dtype, widths=WIDTHS, *, bias=True, init="he_normal", optimizer="adam",
                 lr=1e-3, epochs=1, samples=64, batch_size=16, data="fixed", seed=0):
    return _core.bottleneck_network(np.dtype(dtype).name, widths, bias, init, optimizer, lr,
                                    epochs, samples, batch_size, data, seed)


def random_parameters(widths, dtype, seed=0):
    rng = np.random.default_rng(seed)
    weights = [rng.standard_normal((o, i)).astype(dtype) / np.sqrt(i)
               for i, o in zip(widths[:-1], widths[1:])]
    biases = [rng.standard_normal(o).astype(dtype) for o in widths[1:]]
    return weights, biases


def relative_spectral_gap(A, W, k):
    s = np.linalg.svd(np.asarray(A, np.float64), compute_uv=False)
    error = np.linalg.norm(np.asarray(A, np.float64) - np.asarray(W, np.float64), 2) / s[0]
    return error - s[k] / s[0]


# --- the core against the reference ---------------------------------------------


@pytest.mark.parametrize("init", ["he_normal", "glorot_uniform", "orthogonal"])
def test_initial_weights_are_the_reference_draws(init, float_dtype):
    widths = [9, 12, 4, 9, 6]
    core_weights, core_biases = core_network(float_dtype, widths, init=init, seed=11).parameters()
    weights, biases = reference.initial_parameters(widths, init, 11, float_dtype)
    for got, want in zip(core_weights, weights):
        assert got.dtype == float_dtype and got.shape == want.shape
        assert_close(got, want, float_dtype, scale=1.0, factor=10)
    for got in core_biases:
        assert not got.any()
    if init == "orthogonal":  # orthonormal columns (tall) or rows (wide)
        for w in weights:
            small = w.T @ w if w.shape[0] >= w.shape[1] else w @ w.T
            assert_close(small, np.eye(small.shape[0]), float_dtype, scale=1.0, factor=10)
    # Another seed draws other weights; the layers draw from distinct substreams.
    other, _ = core_network(float_dtype, widths, init=init, seed=12).parameters()
    assert not np.allclose(other[0], core_weights[0])
    assert not np.allclose(core_weights[0][:4, :4], core_weights[2][:4, :4])


def test_he_normal_has_the_he_variance():
    weights, _ = reference.initial_parameters([400, 300, 10], "he_normal", 0, np.float64)
    assert np.std(weights[0]) == pytest.approx(np.sqrt(2 / 400), rel=0.01)
    assert abs(np.mean(weights[0])) < 0.01 * np.sqrt(2 / 400) * 10


def test_forward_matches_reference(float_dtype):
    net = core_network(float_dtype)
    weights, biases = random_parameters(WIDTHS, float_dtype)
    net.set_parameters(weights, biases)
    X = random_matrix((11, WIDTHS[0]), float_dtype, seed=1)
    want = reference.forward(weights, biases, X)
    assert_close(net.forward(X), want, float_dtype, factor=10)
    # Before any fit the scale is 1: predict is forward.
    assert_close(net.predict(X), want, float_dtype, factor=10)


@pytest.mark.parametrize("bias", [True, False])
def test_batch_gradients_match_reference(float_dtype, bias):
    net = core_network(float_dtype, bias=bias)
    weights, biases = random_parameters(WIDTHS, float_dtype, seed=2)
    if not bias:
        biases = [np.zeros_like(b) for b in biases]
    net.set_parameters(weights, biases)
    X = random_matrix((13, WIDTHS[0]), float_dtype, seed=3)
    T = random_matrix((13, WIDTHS[-1]), float_dtype, seed=4)
    loss, gw, gb = net.batch_gradients(X, T)
    want_loss, want_gw, want_gb = reference.mse_gradients(weights, biases, X, T)
    assert loss == pytest.approx(want_loss, rel=1e-5 if float_dtype == np.float32 else 1e-12)
    for got, want in zip(gw, want_gw):
        assert_close(got, want, float_dtype, factor=10)
    for got, want in zip(gb, want_gb):
        if bias:
            assert_close(got, want, float_dtype, factor=10)
        else:
            assert not got.any()


def test_exact_gradients_match_reference(float_dtype):
    net = core_network(float_dtype, data="exact")
    weights, biases = random_parameters(WIDTHS, float_dtype, seed=5)
    net.set_parameters(weights, biases)
    A = random_matrix((WIDTHS[-1], WIDTHS[0]), float_dtype, seed=6)
    loss, gw, gb = net.exact_gradients(A)
    want_loss, want_gw, want_gb = reference.exact_gradients(weights, biases, A)
    assert loss == pytest.approx(want_loss, rel=1e-5)
    for got, want in zip(gw + gb, want_gw + want_gb):
        assert_close(got, want, float_dtype, factor=10)


def test_exact_loss_is_the_expected_loss():
    # ||W - A||_F^2 / m + ||c||^2 / m, and the MSE over sqrt(n) [I, -I], whose first two
    # moments are those of a standard Gaussian (mean 0, E[x x^T] = I).
    net = core_network(np.float64, data="exact")
    weights, biases = random_parameters(WIDTHS, np.float64, seed=7)
    net.set_parameters(weights, biases)
    A = random_matrix((WIDTHS[-1], WIDTHS[0]), np.float64, seed=8)
    loss, gw, gb = net.exact_gradients(A)
    W = weights[2] @ weights[1] @ weights[0]
    c = reference.forward(weights, biases, np.zeros((1, WIDTHS[0])))[0]
    m, n = A.shape
    assert loss == pytest.approx((np.sum((W - A) ** 2) + np.sum(c**2)) / m, rel=1e-12)
    X = np.sqrt(n) * np.vstack([np.eye(n), -np.eye(n)])
    batch_loss, batch_gw, batch_gb = net.batch_gradients(X, X @ A.T)
    assert batch_loss == pytest.approx(loss, rel=1e-12)
    for got, want in zip(gw + gb, batch_gw + batch_gb):
        assert_close(got, want, np.float64, factor=100)
    # And a Monte-Carlo estimate agrees to its sampling error.
    X = np.random.default_rng(0).standard_normal((200_000, n))
    mc_loss, _, _ = net.batch_gradients(X, X @ A.T)
    assert mc_loss == pytest.approx(loss, rel=0.02)


@pytest.mark.parametrize("optimizer", ["sgd", "momentum", "adam"])
def test_optimizer_steps_match_reference(float_dtype, optimizer):
    net = core_network(float_dtype, optimizer=optimizer)
    weights, biases = random_parameters(WIDTHS, float_dtype, seed=9)
    net.set_parameters(weights, biases)
    weights = [w.copy() for w in weights]
    biases = [b.copy() for b in biases]
    state = {}
    for step in range(3):  # three steps: the moments and Adam's bias corrections matter
        X = random_matrix((8, WIDTHS[0]), float_dtype, seed=20 + step)
        T = random_matrix((8, WIDTHS[-1]), float_dtype, seed=30 + step)
        net.batch_gradients(X, T)
        net.step(0.01)
        _, gw, gb = reference.mse_gradients(weights, biases, X, T)
        reference.optimizer_step(weights + biases, gw + gb, state, optimizer, 0.01)
    got_weights, got_biases = net.parameters()
    assert net.steps_taken == 3
    for got, want in zip(got_weights + got_biases, weights + biases):
        assert_close(got, want, float_dtype, scale=1.0, factor=10)


def test_adam_first_step_moves_each_parameter_by_lr():
    # Adam's first step is lr * g / (|g| + eps): about lr in every coordinate.
    net = core_network(np.float64, optimizer="adam")
    weights, biases = random_parameters(WIDTHS, np.float64, seed=10)
    net.set_parameters(weights, biases)
    X = random_matrix((8, WIDTHS[0]), np.float64, seed=1)
    _, gw, _ = net.batch_gradients(X, random_matrix((8, WIDTHS[-1]), np.float64, seed=2))
    net.step(1e-3)
    for after, before, g in zip(net.parameters()[0], weights, gw):
        np.testing.assert_allclose(before - after, 1e-3 * g / (np.abs(g) + 1e-7), rtol=1e-9)


@pytest.mark.parametrize("data", ["fixed", "stream", "exact"])
def test_fit_matches_reference(data, float_dtype):
    A = random_matrix((8, 6), float_dtype, seed=12)
    options = dict(layers=(5, 2, 4), epochs=2, samples=40, batch_size=16, data=data, seed=4,
                   dtype=float_dtype.name, optimizer="momentum" if data == "stream" else "adam")
    got = lc.Bottleneck(2, **options).fit(A)
    want = reference.Bottleneck(2, **options).fit(A)
    tolerance = 1e-4 if float_dtype == np.float32 else 1e-10
    np.testing.assert_allclose(got.loss_history_, want.loss_history_, rtol=tolerance)
    scale = float(np.abs(want.matrix()).max())
    assert_close(got.matrix(), want.matrix(), float_dtype, scale=scale, factor=10)
    assert_close(got.intercept_, want.intercept_, float_dtype, scale=scale, factor=10)
    assert got.rank_ == want.rank_ == 2


# --- gradients against finite differences (float64) ---------------------------


def _finite_difference_check(loss_of, parameters, gradients, rng, probes=6):
    for p, g in zip(parameters, gradients):
        for flat in rng.choice(p.size, size=min(probes, p.size), replace=False):
            index = np.unravel_index(flat, p.shape)
            keep = p[index]
            h = 1e-6
            p[index] = keep + h
            up = loss_of()
            p[index] = keep - h
            down = loss_of()
            p[index] = keep
            assert (up - down) / (2 * h) == pytest.approx(g[index], rel=1e-5, abs=1e-8)


@pytest.mark.parametrize("mode", ["batch", "exact"])
def test_gradients_match_finite_differences(mode):
    net = core_network(np.float64)
    weights, biases = random_parameters(WIDTHS, np.float64, seed=13)
    rng = np.random.default_rng(14)
    X = rng.standard_normal((9, WIDTHS[0]))
    T = rng.standard_normal((9, WIDTHS[-1]))
    A = rng.standard_normal((WIDTHS[-1], WIDTHS[0]))

    def loss_of():
        net.set_parameters(weights, biases)
        return net.batch_gradients(X, T)[0] if mode == "batch" else net.exact_gradients(A)[0]

    loss_of()
    _, gw, gb = net.batch_gradients(X, T) if mode == "batch" else net.exact_gradients(A)
    _finite_difference_check(loss_of, weights + biases, gw + gb, rng)


# --- accuracy of data="exact" at the defaults -------------------------------------


@pytest.mark.parametrize("matrix_seed", [0, 1])
def test_exact_mode_reaches_the_svd_on_random_10x10(matrix_seed):
    A = np.random.default_rng(matrix_seed).standard_normal((10, 10))
    for k in range(1, 10):
        net = lc.Bottleneck(k, data="exact", seed=0).fit(A)
        assert net.rank_ <= k
        gap = relative_spectral_gap(A, net.matrix(), k)
        assert abs(gap) <= 1e-4, (k, gap)


@pytest.mark.parametrize("name", ["identity", "diag(1..50)"])
def test_exact_mode_reaches_the_svd_on_the_papers_matrices(name):
    A = np.eye(50) if name == "identity" else np.diag(np.arange(1.0, 51.0))
    net = lc.Bottleneck(20, data="exact", seed=0).fit(A)
    assert net.rank_ == 20
    gap = relative_spectral_gap(A, net.matrix(), 20)
    assert abs(gap) <= 1e-4, gap


# --- the learned map ---------------------------------------------------------------


@pytest.mark.parametrize("data", ["fixed", "stream", "exact"])
@pytest.mark.parametrize("layers", [None, (12, 6, 3, 6), (3,)])
def test_rank_never_exceeds_rank_and_factors_multiply_to_the_map(data, layers):
    A = random_matrix((9, 12), np.float32, seed=15)
    net = lc.Bottleneck(3, layers=layers, data=data, epochs=1, samples=200, seed=1).fit(A)
    L, R = net.factors()
    W = net.matrix()
    assert L.shape == (9, 3) and R.shape == (3, 12) and W.shape == (9, 12)
    assert_close(L @ R, W, np.float32, factor=10)
    assert net.rank_ <= 3
    assert net.singular_values_.shape == (3,)
    assert lc.rank(W.astype(np.float64), tol=1e-6 * np.abs(W).max()) <= 3
    X = random_matrix((4, 12), np.float32, seed=16)
    assert_close(net.predict(X), X @ W.T + net.intercept_, np.float32, factor=100)


def test_rank_counts_a_collapsed_map():
    # A rank-1 target learned through a rank-3 choke: the map may keep tiny
    # directions, but rank_ never reports more than 3, and the dominant one is learned.
    A = np.outer(np.arange(1.0, 7.0), np.arange(1.0, 6.0))
    net = lc.Bottleneck(3, data="exact", dtype="float64", seed=0).fit(A)
    assert 1 <= net.rank_ <= 3
    assert lc.relative_error(A, net.matrix()) < 1e-6


def test_without_bias_the_intercept_is_zero():
    A = random_matrix((6, 6), np.float64, seed=17)
    net = lc.Bottleneck(2, bias=False, epochs=2, samples=100, dtype="float64", seed=0).fit(A)
    assert not net.intercept_.any()
    assert all(not b.any() for b in net._network.parameters()[1])


@pytest.mark.parametrize("factor", [1e6, 1e-6])
def test_learned_map_scales_with_a(factor):
    A = np.random.default_rng(18).standard_normal((10, 10))
    for data in ["exact", "fixed"]:
        options = dict(data=data, seed=0, epochs=2 if data == "fixed" else 10)
        base = lc.Bottleneck(4, **options).fit(A)
        scaled = lc.Bottleneck(4, **options).fit(A * factor)
        W = base.matrix().astype(np.float64)
        assert_close(scaled.matrix() / factor, W, np.float32, scale=np.abs(W).max(),
                     factor=50)
        np.testing.assert_allclose(scaled.loss_history_ / factor**2, base.loss_history_,
                                   rtol=1e-3)


def test_training_scale_matches_the_initial_map():
    # s = ||A||_F / ||W0||_F: the targets A x / s are as large as the initial outputs.
    A = random_matrix((8, 6), np.float64, seed=30)
    options = dict(epochs=1, samples=16, dtype="float64", seed=5)
    initial = lc.Bottleneck(2, **options)
    initial.fit(A, callback=lambda epoch, loss: False)
    net = core_network(np.float64, [6, 6, 2, 8], seed=5)
    W0 = net.parameters()[0]
    W0 = W0[2] @ W0[1] @ W0[0]
    assert initial._network.scale == pytest.approx(np.linalg.norm(A) / np.linalg.norm(W0),
                                                   rel=1e-12)


def test_zero_matrix_is_learned_as_zero():
    net = lc.Bottleneck(2, data="exact", seed=0).fit(np.zeros((5, 4)))
    assert np.abs(net.matrix()).max() < 1e-3
    assert net.rank_ <= 2


def test_fixed_mode_improves_on_its_start():
    A = np.random.default_rng(19).standard_normal((10, 10))
    net = lc.Bottleneck(5, seed=0).fit(A)
    history = net.loss_history_
    assert history.shape == (10,) and history.dtype == np.float64
    assert history[-1] < 0.5 * history[0]
    assert relative_spectral_gap(A, net.matrix(), 5) < 0.5


# --- determinism, callbacks, interrupts ------------------------------------------


@pytest.mark.parametrize("data", ["fixed", "stream", "exact"])
def test_a_seed_gives_bit_identical_histories(data):
    A = random_matrix((10, 8), np.float32, seed=20)
    options = dict(data=data, epochs=2, samples=500, seed=123)
    first = lc.Bottleneck(3, **options).fit(A)
    second = lc.Bottleneck(3, **options).fit(A)
    assert np.array_equal(first.loss_history_, second.loss_history_)
    assert np.array_equal(first.matrix(), second.matrix())
    # Refitting the same object starts again from the seed's initial weights.
    assert np.array_equal(first.fit(A).loss_history_, second.loss_history_)
    other = lc.Bottleneck(3, **{**options, "seed": 124}).fit(A)
    assert not np.array_equal(other.loss_history_, first.loss_history_)


def test_seed_none_draws_and_records_a_seed():
    A = random_matrix((6, 6), np.float32, seed=21)
    net = lc.Bottleneck(2, epochs=1, samples=64).fit(A)
    again = lc.Bottleneck(2, epochs=1, samples=64, seed=net.seed_).fit(A)
    assert np.array_equal(net.loss_history_, again.loss_history_)


def test_callback_sees_each_epoch_and_false_stops():
    A = random_matrix((6, 6), np.float32, seed=22)
    seen = []

    def callback(epoch, loss):
        seen.append((epoch, loss))
        return False if epoch == 3 else None

    net = lc.Bottleneck(2, epochs=10, samples=64, seed=0).fit(A, callback=callback)
    assert [e for e, _ in seen] == [1, 2, 3]
    assert np.array_equal(net.loss_history_, [loss for _, loss in seen])
    # The weights are those after three epochs: a three-epoch fit gives the same map.
    three = lc.Bottleneck(2, epochs=3, samples=64, seed=0).fit(A)
    assert np.array_equal(net.matrix(), three.matrix())


def test_callback_error_propagates_and_keeps_the_completed_epochs():
    A = random_matrix((6, 6), np.float32, seed=23)

    def callback(epoch, loss):
        if epoch == 2:
            raise RuntimeError("stop here")

    net = lc.Bottleneck(2, epochs=5, samples=64, seed=0)
    with pytest.raises(RuntimeError, match="stop here"):
        net.fit(A, callback=callback)
    two = lc.Bottleneck(2, epochs=2, samples=64, seed=0).fit(A)
    assert np.array_equal(net.loss_history_, two.loss_history_)
    assert np.array_equal(net.matrix(), two.matrix())


def test_ctrl_c_interrupts_and_leaves_the_last_completed_epoch():
    A = random_matrix((10, 10), np.float32, seed=24)
    net = lc.Bottleneck(3, epochs=1_000_000, samples=2000, seed=0)
    # Python's own handler, also where pytest inherited SIGINT ignored (a background
    # job of a shell without job control): interrupt_main then does nothing.
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    timer = threading.Timer(0.3, _thread.interrupt_main)
    timer.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            net.fit(A)
    finally:
        timer.cancel()
        signal.signal(signal.SIGINT, previous)
    completed = len(net.loss_history_)
    assert 1 <= completed < 1_000_000
    again = lc.Bottleneck(3, epochs=completed, samples=2000, seed=0).fit(A)
    assert np.array_equal(net.loss_history_, again.loss_history_)
    assert np.array_equal(net.matrix(), again.matrix())


def test_progress_bar_goes_to_stderr(capsys):
    A = random_matrix((6, 6), np.float32, seed=25)
    lc.Bottleneck(2, epochs=3, samples=64, seed=0).fit(A, progress=True)
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "epoch 3/3" in captured.err and "loss" in captured.err and "left" in captured.err


# --- input handling and errors -------------------------------------------------------


def test_input_is_never_modified_and_any_layout_works():
    A = random_matrix((12, 10), np.float64, seed=26)
    keep = A.copy()
    strided = A[::2, ::2]  # neither C- nor Fortran-contiguous
    options = dict(epochs=1, samples=100, seed=0)
    got = lc.Bottleneck(2, **options).fit(strided)
    want = lc.Bottleneck(2, **options).fit(np.ascontiguousarray(strided))
    fortran = lc.Bottleneck(2, **options).fit(np.asfortranarray(strided))
    assert np.array_equal(A, keep)
    assert np.array_equal(got.loss_history_, want.loss_history_)
    assert_close(fortran.matrix(), want.matrix(), np.float32, factor=10)
    X = A[1::2, ::2]  # a strided batch for predict
    X_keep = X.copy()
    assert_close(got.predict(X), got.predict(np.ascontiguousarray(X)), np.float32)
    assert np.array_equal(X, X_keep)
    integer = lc.Bottleneck(2, **options, dtype="float64").fit(np.arange(30).reshape(6, 5))
    assert integer.matrix().dtype == np.float64


@pytest.mark.parametrize("kwargs, message", [
    (dict(rank=0), "rank must be >= 1"),
    (dict(rank=2, layers=(6, 1, 6)), "layers has a width below rank"),
    (dict(rank=2, layers=(6, 3)), "narrowest of layers must equal rank"),
    (dict(rank=2, layers=()), "layers must hold at least one width"),
    (dict(rank=2, optimizer="rmsprop"), "optimizer must be one of 'sgd', 'momentum', 'adam'"),
    (dict(rank=2, init="zeros"), "init must be one of 'he_normal', 'glorot_uniform', "
                                 "'orthogonal'"),
    (dict(rank=2, data="online"), "data must be one of 'fixed', 'stream', 'exact'"),
    (dict(rank=2, epochs=0), "epochs must be >= 1"),
    (dict(rank=2, samples=0), "samples must be >= 1"),
    (dict(rank=2, batch_size=-1), "batch_size must be >= 1"),
    (dict(rank=2, lr=0.0), "lr must be a finite number > 0"),
    (dict(rank=2, lr=-1e-3), "lr must be a finite number > 0"),
    (dict(rank=2, lr=float("nan")), "lr must be a finite number > 0"),
    (dict(rank=2, dtype="float16"), "dtype must be one of 'float32', 'float64'"),
    (dict(rank=2, seed=-1), "seed must be >= 0"),
])
def test_bad_options_are_value_errors_naming_the_argument(kwargs, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        lc.Bottleneck(**kwargs)
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        reference.Bottleneck(**kwargs)


@pytest.mark.parametrize("kwargs, error", [
    (dict(rank=2.0), TypeError), (dict(rank=2, epochs=1.5), TypeError),
    (dict(rank=2, lr="fast"), TypeError), (dict(rank=2, layers=5), TypeError),
    (dict(rank=2, bias="yes"), TypeError),
])
def test_wrong_types_are_type_errors(kwargs, error):
    with pytest.raises(error):
        lc.Bottleneck(**kwargs)


def test_bad_matrices_are_value_errors():
    net = lc.Bottleneck(3, epochs=1, samples=10)
    with pytest.raises(ValueError, match="rank must be <= 2"):
        net.fit(np.ones((2, 5)))
    for bad in (np.nan, np.inf, -np.inf):
        A = np.ones((4, 4))
        A[1, 2] = bad
        with pytest.raises(ValueError, match="A contains NaN or Inf"):
            net.fit(A)
    with pytest.raises(ValueError, match="A must be 2-D"):
        net.fit(np.ones(4))
    with pytest.raises(ValueError, match="A is empty"):
        net.fit(np.ones((0, 4)))
    with pytest.raises(TypeError, match="complex"):
        net.fit(np.ones((4, 4), complex))
    with pytest.raises(TypeError, match="callback must be callable"):
        net.fit(np.ones((4, 4)), callback=3)


def test_use_before_fit_is_a_clear_error():
    net = lc.Bottleneck(2)
    for use in (net.matrix, net.factors, lambda: net.predict(np.ones((1, 3))),
                lambda: net.rank_, lambda: net.loss_history_):
        with pytest.raises(lc.NotFittedError, match="call fit"):
            use()
    assert not hasattr(net, "rank_")  # NotFittedError is an AttributeError too
    with pytest.raises(lc.NotFittedError):
        reference.Bottleneck(2).matrix()


def test_a_diverging_training_is_an_error_naming_lr():
    # 1 x 1, momentum, exact gradients from 10 * lr: with these initial weights the
    # steps overshoot and the weights blow up (in the plain-NumPy reference too).
    A = np.array([[0.12573022]])
    options = dict(bias=False, init="he_normal", optimizer="momentum", epochs=1,
                   data="exact", seed=221398)
    net = lc.Bottleneck(1, **options)
    with pytest.raises(ValueError, match=r"training diverged.*lr=0.001"):
        net.fit(A)
    with pytest.raises(lc.NotFittedError):
        net.matrix()
    with np.errstate(all="ignore"):
        assert np.isnan(reference.Bottleneck(1, **options).fit(A).matrix()).all()
    # A smaller step trains.
    net = lc.Bottleneck(1, lr=1e-4, **options).fit(A)
    assert np.isfinite(net.matrix()).all()


def test_predict_checks_its_input():
    net = lc.Bottleneck(2, epochs=1, samples=10, seed=0).fit(np.eye(4))
    with pytest.raises(ValueError, match="X must have 4 columns"):
        net.predict(np.ones((3, 5)))
    with pytest.raises(ValueError, match="X must be 2-D"):
        net.predict(np.ones(4))
    for bad in (np.nan, np.inf, -np.inf):
        X = np.ones((3, 4))
        X[1, 2] = bad
        before = X.copy()
        with pytest.raises(ValueError, match="X contains NaN or Inf"):
            net.predict(X)
        np.testing.assert_array_equal(X, before)


def test_core_rejects_what_the_python_layer_would():
    with pytest.raises(ValueError, match="optimizer must be one of"):
        core_network(np.float32, optimizer="rmsprop")
    with pytest.raises(ValueError, match="lr must be > 0"):
        core_network(np.float32, lr=-1.0)
    with pytest.raises(ValueError, match="rank"):
        core_network(np.float32, widths=[3, 5, 4, 3])
    net = core_network(np.float32)
    with pytest.raises(ValueError, match="A must have shape"):
        net.fit(np.ones((3, 3), np.float32))
    with pytest.raises(ValueError, match="C-contiguous"):
        net.forward(np.ones((7, 4), np.float32))


def test_philox_streams_are_distinct_and_stream_zero_is_the_sketch():
    sketch = reference.gaussian_sketch(6, 5, seed=9)
    assert np.array_equal(reference.gaussian_stream(9, 0, 30, 0).reshape(5, 6).T, sketch)
    draws = [reference.gaussian_stream(9, 0, 30, stream) for stream in range(4)]
    for i in range(4):
        for j in range(i):
            assert not np.allclose(draws[i], draws[j])
    # Any window of a stream is the same entries as the whole stream's.
    whole = reference.gaussian_stream(9, 0, 40, 2, 5)
    assert np.array_equal(reference.gaussian_stream(9, 7, 21, 2, 5), whole[7:28])
    uniform = reference.uniform_stream(9, 3, 1000, 3)
    assert 0 < uniform.min() and uniform.max() < 1 and abs(uniform.mean() - 0.5) < 0.05


# --- Edges found by an adversarial probe -------------------------------------------------


def test_float64_a_below_float32s_range_is_refused_not_zeroed():
    # Narrowed to float32 it would be all zeros (or subnormals without digits), and the
    # learned map silently wrong by many orders of magnitude.
    A = random_matrix((6, 5), np.float64, seed=40) * 1e-300
    with pytest.raises(ValueError, match="A has values too small for float32"):
        lc.Bottleneck(2, seed=0).fit(A)
    # float64 networks hold it, and a float32 one takes A scaled up.
    net = lc.Bottleneck(2, data="exact", dtype="float64", seed=0).fit(A)
    assert net.rank_ == 2 and np.all(np.isfinite(net.matrix()))
    assert lc.relative_error(A, net.matrix()) < 1.0
    lc.Bottleneck(2, epochs=1, samples=64, seed=0).fit(A * 1e300)


def test_predict_refuses_x_below_float32s_range():
    net = lc.Bottleneck(2, epochs=1, samples=64, seed=0).fit(random_matrix((6, 5), np.float32))
    with pytest.raises(ValueError, match="X has values too small for float32"):
        net.predict(np.full((3, 5), 1e-300))


@pytest.mark.parametrize("factor", [3e37, 1e38, 3e38 / 4])
def test_rank_of_a_float32_network_is_scale_invariant(factor):
    # s_max * max(m, n) overflowed float32 near its limit, and the rank came out 0.
    A = random_matrix((4, 4), np.float64, seed=41)
    small = lc.Bottleneck(2, data="exact", seed=0).fit(A)
    large = lc.Bottleneck(2, data="exact", seed=0).fit(A * (factor / np.abs(A).max()))
    assert np.all(np.isfinite(large.singular_values_))
    assert small.rank_ == large.rank_ == 2


@pytest.mark.parametrize("name, value, message", [
    ("data", "foo", "data must be one of"),
    ("lr", "x", "lr must be a real number"),
    ("lr", -1.0, "lr must be a finite number > 0"),
    ("layers", (1,), "layers has a width below rank"),
    ("layers", "abc", "layers must be a sequence of integers"),
    ("rank", 0, "rank must be >= 1"),
    ("epochs", 1.5, "epochs must be an integer"),
    ("optimizer", "rmsprop", "optimizer must be one of"),
    ("init", None, "init must be one of"),
    ("bias", 1, "bias must be True or False"),
    ("dtype", "float16", "dtype must be one of"),
    ("seed", -1, "seed must be >= 0"),
])
def test_attributes_set_after_construction_are_checked_at_fit(name, value, message):
    net = lc.Bottleneck(2, epochs=1, samples=64, seed=0)
    setattr(net, name, value)
    with pytest.raises((ValueError, TypeError), match=message):
        net.fit(random_matrix((6, 5), np.float32))
    # The same message as the constructor's.
    options = dict(epochs=1, samples=64, seed=0)
    options[name] = value
    rank = options.pop("rank", 2)
    with pytest.raises((ValueError, TypeError), match=message):
        lc.Bottleneck(rank, **options)


def test_valid_attributes_set_after_construction_are_used():
    A = random_matrix((6, 5), np.float32, seed=42)
    net = lc.Bottleneck(3, epochs=1, samples=64, seed=0)
    net.rank, net.layers, net.dtype, net.data = 2, (4, 2), "float64", "exact"
    net.fit(A)
    assert net.matrix().dtype == np.float64
    assert net.factors()[0].shape == (6, 2)
    want = lc.Bottleneck(2, layers=(4, 2), epochs=1, samples=64, dtype="float64",
                         data="exact", seed=0).fit(A)
    np.testing.assert_array_equal(net.matrix(), want.matrix())


def _same_network(a, b):
    np.testing.assert_array_equal(a.matrix(), b.matrix())
    np.testing.assert_array_equal(a.loss_history_, b.loss_history_)
    np.testing.assert_array_equal(a.intercept_, b.intercept_)
    assert a.rank_ == b.rank_ and a.seed_ == b.seed_
    wa, ba = a._network.parameters()
    wb, bb = b._network.parameters()
    for x, y in zip(wa + ba, wb + bb):
        np.testing.assert_array_equal(x, y)


@pytest.mark.parametrize("optimizer", ["sgd", "momentum", "adam"])
@pytest.mark.parametrize("float_dtype", [np.float32, np.float64])
def test_a_fitted_network_pickles_and_deep_copies(optimizer, float_dtype):
    import copy
    import pickle

    A = random_matrix((8, 6), float_dtype, seed=43)
    net = lc.Bottleneck(2, optimizer=optimizer, epochs=2, samples=128,
                        dtype=np.dtype(float_dtype).name, seed=5).fit(A)
    for other in (pickle.loads(pickle.dumps(net)), copy.deepcopy(net)):
        _same_network(net, other)
        assert repr(other) == repr(net)
        np.testing.assert_array_equal(other.predict(A[:3, :]), net.predict(A[:3, :]))
        # The optimizer state came along: the same next steps give the same parameters.
        x = random_matrix((16, 6), float_dtype, seed=44)
        t = random_matrix((16, 8), float_dtype, seed=45)
        for network in (net._network, other._network):
            for _ in range(3):
                network.batch_gradients(x, t)
                network.step(1e-2)
        _same_network(net, other)
        # And a new fit of the copy is the original's.
        np.testing.assert_array_equal(other.fit(A).matrix(), net.fit(A).matrix())


def test_an_unfitted_network_pickles():
    import pickle

    net = pickle.loads(pickle.dumps(lc.Bottleneck(3, lr=0.01, seed=1)))
    assert repr(net) == repr(lc.Bottleneck(3, lr=0.01, seed=1))
    with pytest.raises(lc.NotFittedError):
        net.matrix()


def test_a_pickled_network_refuses_a_state_that_does_not_fit():
    net = lc.Bottleneck(2, epochs=1, samples=64, seed=0).fit(random_matrix((6, 5), np.float32))
    version, config, state = net._network.__getstate__()
    bad = list(state)
    bad[0] = bad[0][:-1]  # a weight missing
    with pytest.raises(ValueError, match="do not fit the widths"):
        type(net._network).__new__(type(net._network)).__setstate__((version, config, tuple(bad)))
    with pytest.raises(ValueError, match="not a pickled bottleneck network of this version"):
        type(net._network).__new__(type(net._network)).__setstate__((99, config, state))


def test_a_gpu_fitted_network_refuses_pickling_clearly():
    # (Stands in for a GPU fit: the refusal is decided by where the network was fitted;
    # tests/test_gpu.py checks it on a real one.)
    import copy
    import pickle

    net = lc.Bottleneck(2, epochs=1, samples=64, seed=0).fit(random_matrix((6, 5), np.float32))
    net._on_gpu = True
    for save in (pickle.dumps, copy.deepcopy):
        with pytest.raises(TypeError, match="fitted on the GPU cannot be pickled"):
            save(net)


# --- NumPy or CuPy --------------------------------------------------------------------
# On either device (the xp fixture): CuPy input runs on the CUDA core and must give
# the CPU core's answers, in arrays of the input's kind.


def device_and_cpu_fits(xp, A_host, k, dtype="float32", **options):
    dev = lc.Bottleneck(k, dtype=dtype, **options).fit(xp.asarray(A_host))
    cpu = lc.Bottleneck(k, dtype=dtype, **options).fit(A_host)
    return dev, cpu


def test_bottleneck_exact_mode_learns_the_cpu_map(xp, float_dtype):
    A_host = random_matrix((10, 8), np.float64, seed=30)
    dev, cpu = device_and_cpu_fits(xp, A_host, 3, dtype=float_dtype.name, data="exact", epochs=2,
                                optimizer="adam", seed=0)
    W = cpu.matrix()
    scale = float(np.abs(W).max())
    # Same initial weights, same schedule, same steps: the maps agree to a float32
    # tolerance (the two BLAS round differently, a few thousand steps apart).
    assert_close(to_host(dev.matrix()), W, np.float32, scale=scale, factor=50)
    np.testing.assert_allclose(dev.loss_history_, cpu.loss_history_, rtol=1e-3)
    assert dev._network.steps_taken == cpu._network.steps_taken == 2000
    # The scale divides by the initial map's norm, a product of the weights in the
    # network's dtype (cuBLAS against the CPU's BLAS): equal to that dtype's rounding.
    assert dev._network.scale == pytest.approx(cpu._network.scale,
                                               rel=100 * float(np.finfo(float_dtype).eps))
    for got, want in zip(dev._network.parameters()[0], cpu._network.parameters()[0]):
        assert_close(got, want, np.float32, scale=float(np.abs(want).max()), factor=50)
    assert_close(to_host(dev.intercept_), cpu.intercept_, np.float32, scale=scale, factor=50)
    assert_close(to_host(dev.singular_values_), cpu.singular_values_, np.float32, scale=scale,
                 factor=50)


@pytest.mark.parametrize("data", ["fixed", "stream"])
def test_bottleneck_sampled_modes_follow_the_cpu(xp, data, float_dtype):
    # The same vectors (Philox data stream) in the same order (the CPU's shuffle):
    # the loss histories stay close.
    A_host = random_matrix((9, 7), np.float64, seed=31)
    dev, cpu = device_and_cpu_fits(xp, A_host, 3, dtype=float_dtype.name, data=data, epochs=3,
                                samples=500, batch_size=32, seed=1)
    assert dev.loss_history_.shape == cpu.loss_history_.shape == (3,)
    np.testing.assert_allclose(dev.loss_history_, cpu.loss_history_, rtol=1e-2)
    W = cpu.matrix()
    assert_close(to_host(dev.matrix()), W, np.float32, scale=float(np.abs(W).max()), factor=100)


@pytest.mark.parametrize("matrix_seed", [0, 1, 2])
def test_bottleneck_exact_mode_reaches_the_svd_on_random_10x10_at_every_k(xp, matrix_seed):
    A_host = np.random.default_rng(matrix_seed).standard_normal((10, 10))
    s = np.linalg.svd(A_host, compute_uv=False)
    for k in [1, 2, 5, 9]:
        net = lc.Bottleneck(k, data="exact", seed=0).fit(xp.asarray(A_host))
        assert isinstance(net.rank_, int) and net.rank_ <= k
        W = to_host(net.matrix()).astype(np.float64)
        gap = np.linalg.norm(A_host - W, 2) / s[0] - s[k] / s[0]
        assert abs(gap) <= 1e-4, (k, gap)


@pytest.mark.parametrize("layers, bias", [(None, True), ((12, 6, 3, 6), True), ((3,), False)])
def test_bottleneck_outputs_are_arrays_of_the_inputs_kind(xp, layers, bias):
    A_host = random_matrix((9, 12), np.float32, seed=32)
    A = xp.asarray(A_host)
    before = A.copy()
    net = lc.Bottleneck(3, layers=layers, bias=bias, epochs=2, samples=200, seed=1).fit(A)
    assert bool((A == before).all()), "A was modified"
    W = net.matrix()
    L, R = net.factors()
    assert isinstance(W, xp.ndarray) and W.shape == (9, 12) and W.dtype == np.float32
    assert isinstance(L, xp.ndarray) and L.shape == (9, 3)
    assert isinstance(R, xp.ndarray) and R.shape == (3, 12)
    assert_close(to_host(L @ R), to_host(W), np.float32, factor=10)
    assert isinstance(net.rank_, int) and net.rank_ <= 3
    history = net.loss_history_
    assert isinstance(history, np.ndarray) and history.dtype == np.float64
    assert history.shape == (2,)
    intercept = net.intercept_
    assert isinstance(intercept, xp.ndarray) and intercept.shape == (9,)
    if not bias:
        assert not bool(intercept.any())
    sigma = net.singular_values_
    assert isinstance(sigma, xp.ndarray) and sigma.shape == (3,)
    X_host = random_matrix((4, 12), np.float32, seed=33)
    X = xp.asarray(X_host)
    Y = net.predict(X)
    assert isinstance(Y, xp.ndarray) and Y.shape == (4, 9)
    assert_close(to_host(Y), X_host @ to_host(W).T + to_host(intercept), np.float32, factor=100)
    assert bool((X == xp.asarray(X_host)).all()), "X was modified"
    assert net.predict(xp.ones((0, 12), np.float32)).shape == (0, 9)
    # The same input in Fortran order trains the same network.
    fortran = lc.Bottleneck(3, layers=layers, bias=bias, epochs=2, samples=200,
                            seed=1).fit(xp.asfortranarray(A))
    assert_close(to_host(fortran.matrix()), to_host(W), np.float32, factor=10)


@pytest.mark.parametrize("data", ["fixed", "stream", "exact"])
def test_bottleneck_seed_gives_bit_identical_histories(xp, data):
    A = xp.asarray(random_matrix((10, 8), np.float32, seed=34))
    options = dict(data=data, epochs=2, samples=500, seed=123)
    first = lc.Bottleneck(3, **options).fit(A)
    second = lc.Bottleneck(3, **options).fit(A)
    assert np.array_equal(first.loss_history_, second.loss_history_)
    assert bool((first.matrix() == second.matrix()).all())
    assert np.array_equal(first.fit(A).loss_history_, second.loss_history_)


def test_bottleneck_callbacks_stop_and_keep_the_completed_epochs(xp):
    A = xp.asarray(random_matrix((6, 6), np.float32, seed=35))
    seen = []

    def callback(epoch, loss):
        seen.append(epoch)
        # The callback may use the core itself (the fit holds no lock meanwhile).
        assert lc.relative_error(A, A * 0.5) == pytest.approx(0.5)
        if epoch == 3:
            return False
        return None

    net = lc.Bottleneck(2, epochs=10, samples=64, seed=0).fit(A, callback=callback)
    assert seen == [1, 2, 3]
    three = lc.Bottleneck(2, epochs=3, samples=64, seed=0).fit(A)
    assert np.array_equal(net.loss_history_, three.loss_history_)
    assert bool((net.matrix() == three.matrix()).all())

    def failing(epoch, loss):
        if epoch == 2:
            raise RuntimeError("stop here")

    broken = lc.Bottleneck(2, epochs=5, samples=64, seed=0)
    with pytest.raises(RuntimeError, match="stop here"):
        broken.fit(A, callback=failing)
    two = lc.Bottleneck(2, epochs=2, samples=64, seed=0).fit(A)
    assert np.array_equal(broken.loss_history_, two.loss_history_)
    assert bool((broken.matrix() == two.matrix()).all())


def test_bottleneck_ctrl_c_leaves_the_last_completed_epoch(xp):
    A = xp.asarray(random_matrix((10, 10), np.float32, seed=36))
    # The handles and kernels are loaded first, and the interrupt is armed only once
    # the first epoch is complete: in a fresh process it cannot land in epoch 1.
    lc.Bottleneck(3, epochs=1, samples=64, seed=0).fit(A)
    timer = threading.Timer(0.3, _thread.interrupt_main)

    def arm(epoch, loss):
        if epoch == 1:
            timer.start()

    net = lc.Bottleneck(3, epochs=1_000_000, samples=2000, seed=0)
    try:
        with pytest.raises(KeyboardInterrupt):
            net.fit(A, callback=arm)
    finally:
        timer.cancel()
    completed = len(net.loss_history_)
    assert 1 <= completed < 1_000_000
    again = lc.Bottleneck(3, epochs=completed, samples=2000, seed=0).fit(A)
    assert np.array_equal(net.loss_history_, again.loss_history_)
    assert bool((net.matrix() == again.matrix()).all())


def test_bottleneck_bad_inputs_are_the_cpu_errors(xp):
    net = lc.Bottleneck(3, epochs=1, samples=10)
    with pytest.raises(ValueError, match="rank must be <= 2"):
        net.fit(xp.ones((2, 5)))
    for bad in (np.nan, np.inf, -np.inf):
        A = xp.ones((4, 4))
        A[1, 2] = bad
        with pytest.raises(ValueError, match="A contains NaN or Inf"):
            net.fit(A)
    with pytest.raises(ValueError, match="A must be 2-D"):
        net.fit(xp.ones(4))
    with pytest.raises(ValueError, match="A is empty"):
        net.fit(xp.ones((0, 4)))
    with pytest.raises(TypeError, match="complex"):
        net.fit(xp.ones((4, 4), complex))
    with pytest.raises(lc.NotFittedError):
        net.matrix()
    fitted = lc.Bottleneck(2, epochs=1, samples=10, seed=0).fit(xp.eye(4))
    with pytest.raises(ValueError, match="X must have 4 columns"):
        fitted.predict(xp.ones((3, 5)))
    with pytest.raises(ValueError, match="X must be 2-D"):
        fitted.predict(xp.ones(4))
    # Integer input becomes the network's dtype on the input's device.
    integer = lc.Bottleneck(2, epochs=1, samples=10, dtype="float64", seed=0).fit(
        xp.arange(30).reshape(6, 5))
    assert isinstance(integer.matrix(), xp.ndarray) and integer.matrix().dtype == np.float64


# --- data="exact" to convergence: the stopping rule and Gauss-Newton ------------------


def spectral_excess(A, W, k):
    """||A - W||_2 / sigma_(k+1) - 1: the relative spectral error over the SVD's."""
    A = np.asarray(A, np.float64)
    s = np.linalg.svd(A, compute_uv=False)
    return np.linalg.norm(A - np.asarray(W, np.float64), 2) / s[k] - 1


@pytest.mark.parametrize("k", [1, 5, 20, 50, 100])
def test_exact_defaults_converge_on_the_test_image(k):
    from lowrank_core.data import test_image

    A = test_image(256)
    net = lc.Bottleneck(k, data="exact", seed=0).fit(A)
    assert net.optimizer_ == "gauss_newton" and net.tol_ == pytest.approx(1e-7)
    assert net.converged_ and net.relative_gradient_ <= 1e-7
    assert len(net.loss_history_) < net.max_epochs
    assert abs(spectral_excess(A, net.matrix(), k)) <= 1e-4


@pytest.mark.parametrize("k", [10, 50])
def test_exact_defaults_converge_on_the_photograph(k):
    from lowrank_core.data import photograph

    A, _ = photograph(400)
    net = lc.Bottleneck(k, data="exact", seed=0).fit(A)
    assert net.converged_
    assert abs(spectral_excess(A, net.matrix(), k)) <= 1e-4


@pytest.mark.parametrize("layers, bias", [(None, True), (None, False), ((9, 8, 3, 7, 9), True),
                                          ((8, 3), True)])
def test_gauss_newton_sweeps_match_the_reference(layers, bias):
    # float64: the core's sweeps against the NumPy formulas, sweep by sweep.
    A = random_matrix((7, 8), np.float64, seed=40)
    options = dict(layers=layers, bias=bias, data="exact", dtype="float64", seed=3,
                   optimizer="gauss_newton", tol=0, epochs=4)
    got = lc.Bottleneck(3, **options).fit(A)
    want = reference.Bottleneck(3, **options).fit(A)
    np.testing.assert_allclose(got.loss_history_, want.loss_history_, rtol=1e-9)
    assert_close(got.matrix(), want.matrix(), np.float64, scale=float(np.abs(A).max()),
                 factor=1e3)
    assert_close(got.intercept_, want.intercept_, np.float64, scale=float(np.abs(A).max()),
                 factor=1e3)
    assert got._network.steps_taken == 4


def test_gauss_newton_reaches_the_optimum_with_biases_and_deeper_layers():
    A = random_matrix((9, 8), np.float64, seed=41)
    for layers in [None, (9, 8, 3, 9, 10)]:
        net = lc.Bottleneck(3, layers=layers, data="exact", dtype="float64", seed=0).fit(A)
        assert net.optimizer_ == "gauss_newton" and net.converged_
        assert abs(spectral_excess(A, net.matrix(), 3)) <= 1e-8
        np.testing.assert_allclose(net.intercept_, 0, atol=1e-10 * np.abs(A).max())


def test_the_stopping_rule_and_its_cap():
    A = random_matrix((6, 5), np.float64, seed=42)
    # The cap: tol far below reach stops at max_epochs, not converged.
    capped = lc.Bottleneck(2, data="exact", tol=1e-300, max_epochs=3, seed=0).fit(A)
    assert len(capped.loss_history_) == 3 and not capped.converged_
    # tol=0: exactly `epochs` sweeps.
    fixed = lc.Bottleneck(2, data="exact", tol=0, epochs=5, seed=0).fit(A)
    assert len(fixed.loss_history_) == 5 and not fixed.converged_
    # Adam with tol restarts its schedule until the gradient is small enough.
    adam = lc.Bottleneck(2, data="exact", optimizer="adam", tol=1e-3, epochs=1,
                         dtype="float64", seed=0).fit(A)
    assert adam.converged_ and adam.relative_gradient_ <= 1e-3
    want = reference.Bottleneck(2, data="exact", optimizer="adam", tol=1e-3, epochs=1,
                                dtype="float64", seed=0).fit(A)
    np.testing.assert_allclose(adam.loss_history_, want.loss_history_, rtol=1e-9)
    # Without tol the gradient optimizers keep the fixed budget of `epochs`.
    budget = lc.Bottleneck(2, data="exact", optimizer="adam", epochs=1, seed=0).fit(A)
    assert budget.tol_ == 0 and len(budget.loss_history_) == 1
    assert budget._network.steps_taken == 1000


def test_optimizer_none_picks_by_data_and_widths():
    A = random_matrix((8, 8), np.float64, seed=43)
    assert lc.Bottleneck(2, data="exact", seed=0).fit(A).optimizer_ == "gauss_newton"
    # A hidden layer narrower than n before the choke point: Gauss-Newton could not
    # reach the optimum, so the default is Adam (and asking for it is an error).
    narrow = lc.Bottleneck(2, layers=(4, 2), data="exact", seed=0).fit(A)
    assert narrow.optimizer_ == "adam" and narrow.tol_ == 0
    with pytest.raises(ValueError, match="gauss_newton.*every hidden width"):
        lc.Bottleneck(2, layers=(4, 2), data="exact", optimizer="gauss_newton").fit(A)
    sampled = lc.Bottleneck(2, epochs=1, samples=32, seed=0).fit(A)
    assert sampled.optimizer_ == "adam"


@pytest.mark.parametrize("kwargs, error, message", [
    (dict(tol=-1.0), ValueError, "tol must be None or a finite number >= 0"),
    (dict(tol=float("nan")), ValueError, "tol must be None or a finite number >= 0"),
    (dict(tol="small"), TypeError, "tol must be None or a real number"),
    (dict(max_epochs=0), ValueError, "max_epochs must be >= 1"),
])
def test_bad_stopping_options(kwargs, error, message):
    with pytest.raises(error, match=message):
        lc.Bottleneck(2, **kwargs)
    with pytest.raises(error, match=message):
        reference.Bottleneck(2, **kwargs)


def test_stopping_options_that_do_not_apply_are_errors():
    A = random_matrix((6, 5), np.float64, seed=44)
    with pytest.raises(ValueError, match="tol applies to data='exact' only"):
        lc.Bottleneck(2, tol=1e-6).fit(A)
    with pytest.raises(ValueError, match="'gauss_newton' needs data='exact'"):
        lc.Bottleneck(2, optimizer="gauss_newton").fit(A)


def test_a_network_with_a_stopping_rule_pickles():
    import pickle

    A = random_matrix((6, 5), np.float64, seed=45)
    net = lc.Bottleneck(2, data="exact", seed=0).fit(A)
    copy = pickle.loads(pickle.dumps(net))
    assert copy.converged_ and copy.optimizer_ == "gauss_newton"
    assert np.array_equal(copy.matrix(), net.matrix())
    assert copy._network.widths == net._network.widths


# --- fit_samples: reduced-rank regression ---------------------------------------------


def rrr_problem(samples, n=8, m=6, seed=50, noise=0.3):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((samples, n)) + rng.standard_normal(n)
    B = rng.standard_normal((m, n))
    Y = X @ B.T + 0.5 + noise * rng.standard_normal((samples, m))
    return X, Y


@pytest.mark.parametrize("bias", [True, False])
def test_fit_samples_is_reduced_rank_regression(bias):
    X, Y = rrr_problem(300)
    net = lc.Bottleneck(3, bias=bias, data="exact", dtype="float64", seed=0).fit_samples(X, Y)
    W, c = ref_bottleneck.reduced_rank_regression(X, Y, 3, intercept=bias)
    assert net.converged_
    assert_close(net.matrix(), W, np.float64, scale=float(np.abs(W).max()), factor=1e6)
    assert_close(net.intercept_, c, np.float64, scale=float(np.abs(Y).max()), factor=1e6)
    # The reported loss is the pairs' mean squared error.
    fitted = X @ net.matrix().T + net.intercept_
    assert net.loss_history_[-1] == pytest.approx(np.mean((fitted - Y) ** 2), rel=1e-9)
    assert net.n_features_in_ == 8 and net.rank_ == 3


def test_fit_samples_with_fewer_samples_than_inputs():
    # N < n: the minimiser is not unique, its fitted values are.
    X, Y = rrr_problem(5)
    net = lc.Bottleneck(2, data="exact", dtype="float64", seed=0).fit_samples(X, Y)
    W, c = ref_bottleneck.reduced_rank_regression(X, Y, 2)
    assert_close(net.predict(X), X @ W.T + c, np.float64, scale=float(np.abs(Y).max()),
                 factor=1e6)


def test_fit_samples_from_gaussian_inputs_approaches_the_truncated_svd():
    rng = np.random.default_rng(51)
    A = rng.standard_normal((10, 12))
    X = rng.standard_normal((4000, 12))
    net = lc.Bottleneck(4, data="exact", seed=0).fit_samples(X, X @ A.T)
    assert 0 <= spectral_excess(A, net.matrix(), 4) <= 0.1
    # The fixed-set mini-batch training of the paper learns from the same pairs.
    sampled = lc.Bottleneck(4, data="fixed", epochs=20, seed=0).fit_samples(X, X @ A.T)
    assert sampled.optimizer_ == "adam" and len(sampled.loss_history_) == 20
    assert sampled.loss_history_[-1] < 0.2 * sampled.loss_history_[0]
    assert spectral_excess(A, sampled.matrix(), 4) <= 0.5


def test_fit_samples_in_float32_and_inputs_unchanged():
    X, Y = rrr_problem(200)
    X32, Y32 = X.astype(np.float32), Y.astype(np.float32)
    keep = X32.copy(), Y32.copy()
    net = lc.Bottleneck(3, data="exact", seed=0).fit_samples(X32, Y32)
    assert np.array_equal(X32, keep[0]) and np.array_equal(Y32, keep[1])
    W, _ = ref_bottleneck.reduced_rank_regression(X, Y, 3)
    assert net.matrix().dtype == np.float32
    np.testing.assert_allclose(net.matrix(), W, atol=1e-4 * np.abs(W).max())


@pytest.mark.parametrize("change, error, message", [
    (lambda X, Y: (X, Y[:-1]), ValueError, "Y must have one row per sample of X"),
    (lambda X, Y: (np.where(X == X[0, 0], np.nan, X), Y), ValueError, "X contains NaN"),
    (lambda X, Y: (X, np.where(Y == Y[1, 1], np.inf, Y)), ValueError, "Y contains NaN or Inf"),
    (lambda X, Y: (X[:2], Y[:2]), ValueError, "X must hold at least rank = 3 samples"),
    (lambda X, Y: (X[:, 0], Y), ValueError, "X"),
    (lambda X, Y: (X, Y[:, :2]), ValueError, "rank"),
])
def test_fit_samples_bad_input_names_the_argument(change, error, message):
    X, Y = change(*rrr_problem(20))
    for data in ["exact", "fixed"]:
        with pytest.raises(error, match=message):
            lc.Bottleneck(3, data=data).fit_samples(X, Y)


def test_fit_samples_refuses_stream_data():
    X, Y = rrr_problem(20)
    with pytest.raises(ValueError, match="data='stream'.*fit_samples"):
        lc.Bottleneck(2, data="stream").fit_samples(X, Y)


def test_reduced_rank_regression_reference_against_a_direct_minimisation():
    # The closed form against an independent route: at rank = min(m, n) it is the
    # least-squares fit, and at lower rank no rank-k projection of the fit does better.
    X, Y = rrr_problem(100)
    W_full, c_full = ref_bottleneck.reduced_rank_regression(X, Y, 6)
    design = np.hstack([X, np.ones((100, 1))])
    coefficients = np.linalg.lstsq(design, Y, rcond=None)[0]
    np.testing.assert_allclose(W_full, coefficients[:-1].T, atol=1e-10)
    np.testing.assert_allclose(c_full, coefficients[-1], atol=1e-10)
    W, c = ref_bottleneck.reduced_rank_regression(X, Y, 2)
    assert np.linalg.matrix_rank(W) == 2
    best = np.sum((X @ W.T + c - Y) ** 2)
    rng = np.random.default_rng(0)
    for _ in range(20):
        V = np.linalg.qr(rng.standard_normal((6, 2)))[0]
        W_other = (coefficients[:-1] @ V @ V.T).T
        c_other = Y.mean(0) - W_other @ X.mean(0)
        assert best <= np.sum((X @ W_other.T + c_other - Y) ** 2) + 1e-9
