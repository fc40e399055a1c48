"""The linear bottleneck network: a rank-k approximation learned from how A acts on vectors."""

from __future__ import annotations

import math
import numbers

import numpy as np

from . import _checks, _interop
from ._backend import backend_for
from ._progress import ProgressBar

__all__ = ["Bottleneck", "NotFittedError"]


class NotFittedError(ValueError, AttributeError):
    """A fitted attribute or method was used before ``fit`` (as scikit-learn's)."""


def _finite_parameters(network) -> bool:
    """Whether every weight and bias of a trained network is finite (either device)."""
    weights, biases = network.parameters()
    for value in (*weights, *biases):
        xp = _checks.array_module(value)
        if not bool(xp.isfinite(value).all()):
            return False
    return True


# The stopping rule of data="exact" with Gauss-Newton when tol is None: a relative
# gradient norm at which the defaults come well within 1e-4 of the SVD's relative
# spectral error on every measured case (benchmarks/results/bottleneck-convergence-*).
DEFAULT_TOL = 1e-7


def _check_stopping(tol, max_epochs):
    """``(tol, max_epochs)`` checked: tol None or a finite number >= 0, max_epochs >= 1."""
    if tol is not None:
        if isinstance(tol, (bool, np.bool_)) or not isinstance(tol, numbers.Real):
            raise TypeError(f"tol must be None or a real number >= 0, got {type(tol).__name__}")
        tol = float(tol)
        if not (math.isfinite(tol) and tol >= 0):
            raise ValueError(f"tol must be None or a finite number >= 0, got {tol}")
    max_epochs = _checks.check_int(max_epochs, "max_epochs", minimum=1,
                                   maximum=_checks.INDEX_MAX)
    return tol, max_epochs


def _gauss_newton_reaches_optimum(widths) -> bool:
    """Whether every hidden width before the choke point is >= n and every one after it
    >= m (the layers Gauss-Newton keeps fixed then keep full rank)."""
    hidden = widths[1:-1]
    choke = hidden.index(min(hidden))
    return (all(w >= widths[0] for w in hidden[:choke])
            and all(w >= widths[-1] for w in hidden[choke + 1:]))


def _resolve(o, widths, on_gpu):
    """The optimizer and the tol (0: a fixed budget) a fit runs with."""
    optimizer, tol, data = o["optimizer"], o["tol"], o["data"]
    if data != "exact":
        if optimizer == "gauss_newton":
            raise ValueError("optimizer 'gauss_newton' needs data='exact' (it solves the "
                             "full-batch least squares); use 'adam' for sampled data")
        if tol is not None:
            raise ValueError("tol applies to data='exact' only: the sampled modes run "
                             "`epochs` epochs, as in the paper; leave tol=None")
        return optimizer or "adam", 0.0
    if on_gpu:
        if optimizer == "gauss_newton" or tol is not None:
            what = "optimizer 'gauss_newton'" if optimizer == "gauss_newton" else "tol"
            raise ValueError(f"{what} is not implemented on the GPU: leave optimizer and tol "
                             "None there (adam, a fixed budget of `epochs`), or fit a NumPy "
                             "array")
        return optimizer or "adam", 0.0
    if optimizer is None:
        optimizer = "gauss_newton" if _gauss_newton_reaches_optimum(widths) else "adam"
    elif optimizer == "gauss_newton" and not _gauss_newton_reaches_optimum(widths):
        raise ValueError(
            "optimizer 'gauss_newton' solves only the two layers next to the choke point, so "
            "every hidden width before it must be >= n and every one after it >= m; got "
            f"widths {tuple(widths)}: use 'adam' (or optimizer=None)")
    if tol is None:  # the stopping rule by default for Gauss-Newton, whose sweeps are cheap
        tol = DEFAULT_TOL if optimizer == "gauss_newton" else 0.0
    return optimizer, tol


def _sample_design(X, Y, bias, dtype):
    """The pairs' full-batch loss as a design for the core (see ``fit_samples``).

    With Xc = X - mean (bias) or X, Xc = Q R (thin QR, p = min(N, n)):
    sum_i ||W x_i + c - y_i||^2 / N = ||R W^T / sqrt(N) - Q^T Yc / sqrt(N)||^2
    + ||W mean_x + c - mean_y||^2 + ||(I - Q Q^T) Yc||^2 / N. Returns the design rows
    (R / sqrt(N), then mean_x with the bias), their targets, the first row with the
    bias and the constant (divided by m, as the core's loss)."""
    X64, Y64 = np.asarray(X, dtype=np.float64), np.asarray(Y, dtype=np.float64)
    samples, m = Y64.shape
    if bias:
        x_mean, y_mean = X64.mean(axis=0), Y64.mean(axis=0)
        X64, Y64 = X64 - x_mean, Y64 - y_mean
    q, r = np.linalg.qr(X64)
    projected = q.T @ Y64
    offset = max(float(np.sum(Y64 * Y64) - np.sum(projected * projected)), 0.0) / (samples * m)
    root = math.sqrt(samples)
    design, targets = r / root, projected / root
    bias_from = design.shape[0]
    if bias:
        design = np.vstack([design, x_mean])
        targets = np.vstack([targets, y_mean])
    return (np.ascontiguousarray(design, dtype=dtype), np.ascontiguousarray(targets, dtype=dtype),
            bias_from, offset)


class Bottleneck:
    """A linear "bottleneck" neural network that learns a rank-k approximation of A.

    The network maps x (length n) through hidden layers to an output of length m,
    with linear activations; its narrowest hidden layer (the choke point, width
    ``rank``) caps the rank of the learned map. It is trained with the mean squared
    error on pairs (x, A x) for standard Gaussian x, as in Bleckel's paper. Because
    E[x x^T] = I, the expected loss is ``||W - A||_F^2 / m + ||c||^2 / m``, with W the
    product of the weight matrices and c the output for x = 0 (the biases carried
    through), so the best the network can learn is the truncated SVD of A
    (Eckart–Young), and a linear network of this shape has no spurious local minima.
    Forward and backward passes, the optimizer and the training loop run in the
    compiled core, with the GIL released. ``fit_samples(X, Y)`` learns the map from
    pairs instead of from A (reduced-rank regression).

    On the GPU. When ``A`` is a CuPy array (and this build has the CUDA core), the
    whole training runs on its GPU, on CuPy's current stream: cuBLAS GEMMs and fused
    kernels, the same initial weights, Philox training vectors, shuffles and schedule
    as on the CPU for a seed (so the same training, to rounding), one loss copied to
    the host per epoch. ``matrix()``, ``factors()``, ``predict(X)`` (X a CuPy array on
    that GPU), ``intercept_`` and ``singular_values_`` are then CuPy arrays;
    ``rank_`` is an int and ``loss_history_`` a NumPy array, as on the CPU. A NumPy
    ``X`` for a GPU-fitted network, or a CuPy ``X`` for a CPU-fitted one, is a
    ``TypeError``: nothing is copied between devices silently.

    Parameters
    ----------
    rank : int
        The width of the choke point, k: ``1 <= rank <= min(m, n)`` (checked by
        ``fit``).
    layers : sequence of int, optional
        The widths of the hidden layers, in order. Default ``(n, rank)``: the paper's
        n -> n -> k -> m. Any sequence whose smallest width equals ``rank`` (no width
        below it), e.g. widths halving down to ``rank`` and back up.
    bias : bool, default True
        Whether every layer has a bias (initialised to 0). The learned map is the
        product of the weights; the biases are reported apart (``intercept_``).
    init : {"he_normal", "glorot_uniform", "orthogonal"}, default "he_normal"
        Initial weights: N(0, 2 / fan_in) (He et al.; a plain, not truncated,
        normal), U(-l, l) with l = sqrt(6 / (fan_in + fan_out)) (Glorot & Bengio),
        or the Q of the QR factorisation of a Gaussian matrix with the signs of
        diag(R) (Saxe et al.).
    optimizer : {"sgd", "momentum", "adam", "gauss_newton"} or None, default None
        ``p -= lr g``; ``v = 0.9 v + g, p -= lr v``; Adam with Keras's constants
        (beta1 = 0.9, beta2 = 0.999, epsilon = 1e-7); or, for ``data="exact"`` only,
        Gauss-Newton sweeps (see Notes). ``None``: ``"gauss_newton"`` for
        ``data="exact"`` on the CPU where it can reach the optimum (every hidden width
        before the choke point >= n and every one after it >= m, as the default
        ``layers``), else ``"adam"``. The choice is ``optimizer_`` after ``fit``.
    lr : float, default 1e-3
        Step size, > 0 (the peak of a schedule for ``data="exact"``, see Notes).
    epochs : int, default 10
        Training epochs, >= 1.
    samples : int, default 10_000
        Vectors per epoch for ``data="fixed"`` and ``"stream"``, >= 1.
    batch_size : int, default 32
        Vectors per step for ``data="fixed"`` and ``"stream"``, >= 1 (at most
        ``samples`` are used).
    data : {"fixed", "stream", "exact"}, default "fixed"
        ``"fixed"``: ``samples`` Gaussian vectors drawn once and reused every epoch,
        shuffled, in mini-batches (the paper's setting). ``"stream"``: fresh vectors
        every step. ``"exact"``: full-batch gradient descent on the expected loss
        itself (no sampling; see Notes).
    dtype : {"float32", "float64"}, default "float32"
        The precision of the network and of its training; A is converted to it.
    tol : float >= 0 or None, default None
        ``data="exact"`` only: training stops once the norm of the gradient of the
        expected loss is at most ``tol`` times its norm at the initial weights (or after
        ``max_epochs``). ``0`` runs exactly ``epochs`` epochs. ``None``: ``1e-7`` with
        Gauss-Newton, ``0`` (the fixed budget) with the gradient optimizers. With a tol
        the gradient optimizers restart their cosine schedule every ``epochs`` epochs.
        Not implemented on the GPU (a ``ValueError`` there, as for the sampled modes).
    max_epochs : int, default 1000
        The cap on the epochs of a run with a tol (Gauss-Newton: sweeps).
    seed : int or None, default None
        Seed in ``[0, 2**64)`` of the counter-based generator (Philox4x32-10) that
        draws the initial weights, the training vectors and the shuffles, each from
        its own stream: one seed gives bit-identical loss histories on one machine
        (with the same number of BLAS threads: threaded products may round
        differently).
        ``None`` draws a fresh seed at each ``fit`` (recorded in ``seed_``).

    Attributes
    ----------
    rank_ : int
        Numerical rank of the learned map (NumPy's default tolerance), from the
        singular values of ``L @ R`` computed through the QR factors of L and R^T:
        never above ``rank``.
    loss_history_ : ndarray of float64, shape (epochs_run,)
        The mean training loss of each completed epoch, in the units of A (for
        ``"exact"``, the mean of the expected loss over the epoch's steps).
    intercept_ : ndarray, shape (m,)
        The output for x = 0: what the biases add to every output (zeros without
        biases).
    singular_values_ : ndarray, shape (rank,)
        The singular values of the learned map, descending.
    seed_ : int
        The seed of the last ``fit``.
    optimizer_ : str
        The optimizer the last fit used (``optimizer`` with None resolved).
    tol_ : float
        The tol the last fit used (0: none, a fixed budget of ``epochs``).
    converged_ : bool
        Whether the last fit stopped because the gradient reached ``tol_``.
    relative_gradient_ : float
        The last relative gradient norm the fit measured (NaN where none was: the
        sampled modes, a fixed budget with a gradient optimizer, the GPU).

    Notes
    -----
    Scale. Every mode trains on ``A / s`` with ``s = ||A||_F / ||W0||_F``, W0 the
    initial network's map (the seed fixes it), so that the targets ``A x / s`` are as
    large as the initial network's outputs (``E ||W x||^2 = ||W||_F^2``); the learned
    map, the intercept, the predictions and the losses are scaled back. So the
    defaults work whatever the scale of A, and the map learned from ``c * A`` is
    ``c`` times the one learned from A, to rounding. (Targets much smaller than the
    He-initialised network's outputs, as with A scaled to unit spectral norm, drive
    large matrices into the saddle point W = 0; for standard Gaussian A this scale
    is close to 1, the paper's unscaled setting.)

    Saving. A network fitted on the CPU pickles and deep-copies (so it works with
    joblib, multiprocessing and model saving): its configuration, parameters,
    optimizer state, scale and loss history, so that the copy gives the same map,
    bit for bit, and takes the same next optimizer steps. A network fitted on the GPU
    cannot be pickled yet (a ``TypeError``).

    ``data="exact"``. The expected loss equals the mean squared error over the
    ``n + 1`` vectors ``e_1, ..., e_n`` (without bias) and ``0`` (with it), so it and
    its gradient are computed exactly (no sampling; ``samples`` and ``batch_size`` are
    unused). By default it trains with Gauss-Newton until converged: each epoch is one
    sweep that solves the layer into the choke point and then the layer out of it,
    each (weights and bias) exactly by least squares with every other layer fixed --
    the Gauss-Newton step of that block, exact because the network is linear in it.
    The other layers keep their initial weights (full rank, so the optimum stays
    reachable). In effect this is subspace iteration, whose speed depends on the gaps
    near sigma_k but not on sigma_1 / sigma_k, which is what makes gradient descent
    slow on clustered spectra. The sweeps run in float64 whatever ``dtype`` (the
    weights are rounded to it after each), and stop at ``tol`` (default 1e-7, of the
    gradient with respect to the two solved layers). With the defaults (float32) the
    relative spectral error of the learned map comes within 1e-5 of the SVD's at
    every rank 1..100 of the 256 x 256 test image and at ranks 10 and 50 of the 400 x
    400 photograph (``benchmarks/results/bottleneck-convergence-2026-12-06.md``).
    With ``optimizer="sgd"``, ``"momentum"`` or ``"adam"`` each epoch is instead 1000
    full-batch gradient steps, the step size on a cosine from ``10 * lr`` down to
    ``0.01 * lr`` over ``epochs`` epochs (restarting after them when there is a
    tol): the former default, which at 10 epochs stops at 1.13 times the SVD's
    spectral error at rank 50 of the test image.

    References
    ----------
    B. Bleckel, "Machine Learning and Low-Rank Matrix Approximations" (the paper this
    network comes from; ``sources/000_951cac785bae6e6e.txt`` of the project).
    A. J. Izenman, "Reduced-rank regression for the multivariate linear model",
    J. Multivariate Analysis 5(2), 1975 (``fit_samples``).
    A. M. Saxe, J. L. McClelland, S. Ganguli, "Exact solutions to the nonlinear
    dynamics of learning in deep linear neural networks", ICLR 2014.
    P. Baldi, K. Hornik, "Neural networks and principal component analysis: learning
    from examples without local minima", Neural Networks 2(1), 1989.

    Examples
    --------
    >>> import numpy as np, lowrank_core as lc
    >>> A = np.diag([3.0, 2.0, 1.0])
    >>> net = lc.Bottleneck(2, data="exact", seed=0).fit(A)
    >>> net.rank_
    2
    >>> round(lc.relative_error(A, net.matrix()), 4)  # the optimum is 1/3
    0.3333
    >>> L, R = net.factors()
    >>> L.shape, R.shape
    ((3, 2), (2, 3))
    """

    def __init__(self, rank, *, layers=None, bias=True, init="he_normal", optimizer=None,
                 lr=1e-3, epochs=10, samples=10_000, batch_size=32, data="fixed",
                 dtype="float32", seed=None, tol=None, max_epochs=1000):
        options = _checks.check_bottleneck_options(rank, layers, bias, init, optimizer, lr,
                                                   epochs, samples, batch_size, data, dtype)
        if seed is not None:
            _checks.check_seed(seed)
        _check_stopping(tol, max_epochs)
        for name, value in options.items():
            setattr(self, name, value)
        self.seed = seed
        self.tol = tol
        self.max_epochs = max_epochs
        self._network = None
        self._on_gpu = False

    def __repr__(self):
        return (f"Bottleneck({self.rank}, layers={self.layers}, bias={self.bias}, "
                f"init={self.init!r}, optimizer={self.optimizer!r}, lr={self.lr}, "
                f"epochs={self.epochs}, samples={self.samples}, "
                f"batch_size={self.batch_size}, data={self.data!r}, dtype={self.dtype!r}, "
                f"seed={self.seed}, tol={self.tol}, max_epochs={self.max_epochs})")

    def _options(self):
        """The options as set now, checked with the constructor's messages (attributes
        may have been set after construction: scikit-learn's convention)."""
        o = _checks.check_bottleneck_options(
            self.rank, self.layers, self.bias, self.init, self.optimizer, self.lr, self.epochs,
            self.samples, self.batch_size, self.data, self.dtype)
        o["tol"], o["max_epochs"] = _check_stopping(self.tol, self.max_epochs)
        return o

    @_interop.dlpack_fit
    def fit(self, A, *, callback=None, progress=False):
        """Train the network on A from its initial weights.

        Parameters
        ----------
        A : array_like or cupy.ndarray, shape (m, n)
            Real, finite matrix; converted to ``dtype``; not modified. Any layout. A
            CuPy array trains on its GPU (see the class notes).
        callback : callable, optional
            ``callback(epoch, loss)`` after each epoch (``epoch`` from 1, ``loss`` as in
            ``loss_history_``); returning ``False`` stops training there.
        progress : bool, default False
            Show a progress bar on stderr: epoch, loss and the time left.

        Returns
        -------
        Bottleneck
            ``self``.

        Raises
        ------
        ValueError
            A not 2-D, empty or with NaN/Inf, or (float64 A for a float32 network) with
            values beyond float32's range or all below its normal range; ``rank``
            above min(m, n); an option set after construction that the constructor
            would refuse (with its message; a ``TypeError`` where it gives one). Or the
            training diverged (``lr`` too large for this A and optimizer: the
            weights became NaN or infinite); the network is then left unfitted.
        TypeError
            A is a CuPy array and this build has no CUDA core (or CuPy is missing).
        KeyboardInterrupt
            On Ctrl-C, checked about every 0.1 s between training steps; the network
            keeps its state at the end of the last completed epoch (the same holds
            when ``callback`` raises).
        """
        if callback is not None and not callable(callback):
            raise TypeError(f"callback must be callable, got {type(callback).__name__}")
        # One dispatch, on the type of A: NumPy (or any array_like) -> the CPU core, CuPy
        # -> the CUDA core (a TypeError in a build without it). The network remembers
        # which: matrix, factors, predict then work on that device only.
        o = self._options()
        seed = _checks.check_seed(self.seed)
        backend = backend_for(A)
        A = _checks.as_float_array(A, "A", ndim=2, dtype=o["dtype"])
        widths = _checks.bottleneck_widths(o["rank"], o["layers"], A.shape)
        _checks.check_bottleneck_size(widths, o["samples"], o["batch_size"], o["data"])
        _checks.check_finite(A, "A")
        on_gpu = _checks.is_cupy(A)
        optimizer, tol = _resolve(o, widths, on_gpu)
        arguments = (o["dtype"], widths, o["bias"], o["init"], optimizer, o["lr"], o["epochs"],
                     o["samples"], o["batch_size"], o["data"], seed)
        if on_gpu:  # the GPU core has no stopping rule (refused above when asked for)
            network = backend.bottleneck_network(*arguments)
        else:
            network = backend.bottleneck_network(*arguments, tol=tol,
                                                 max_epochs=o["max_epochs"])
        return self._train(network, lambda *hooks: network.fit(A, *hooks), o, optimizer, tol,
                           seed, A.shape[1], on_gpu, callback, progress)

    def fit_samples(self, X, Y, *, callback=None, progress=False):
        """Train the network on pairs (x_i, y_i) when A itself is not available.

        The network learns the rank-``rank`` linear map (and, with ``bias``, the
        intercept) that minimises the mean squared error ``sum_i ||W x_i + c - y_i||^2
        / (N m)`` over the N given pairs: reduced-rank regression (Izenman 1975), whose
        closed form is ``lowrank_core.reference.reduced_rank_regression``. With
        standard Gaussian rows x_i and y_i = A x_i it approaches A's truncated SVD as N
        grows. The same core, initial weights, scale rule and optimizers as :meth:`fit`:

        - ``data="exact"``: the full-batch loss over the pairs, computed exactly. The
          pairs are reduced once (in float64) to ``min(N, n)`` design vectors through
          the QR factorisation of the centred X (plus the mean pair with the bias),
          whose mean squared error differs from the pairs' by a constant, so each step
          costs as much as one of :meth:`fit`'s whatever N. ``tol``, ``max_epochs`` and
          the optimizers behave as in :meth:`fit` (``optimizer=None``: Gauss-Newton).
        - ``data="fixed"``: the pairs are the fixed training set, shuffled every epoch
          in mini-batches of ``batch_size`` (``samples`` is unused: N is the set).
        - ``data="stream"`` draws fresh x from A and does not apply (a ``ValueError``).

        Parameters
        ----------
        X : array_like, shape (N, n)
            One input per row; real, finite; converted to ``dtype``; not modified.
        Y : array_like, shape (N, m)
            The matching outputs, one per row.
        callback, progress
            As in :meth:`fit`.

        Returns
        -------
        Bottleneck
            ``self``; ``predict``, ``matrix``, ``factors``, ``intercept_`` and the other
            fitted attributes as after :meth:`fit` (``loss_history_`` is the pairs'
            mean squared error, in the units of Y).

        Raises
        ------
        ValueError
            X or Y not 2-D, empty or with NaN/Inf; X and Y with different numbers of
            rows (samples); fewer samples than ``rank``; ``rank`` above min(m, n);
            ``data="stream"``; the options' errors as in :meth:`fit`.
        TypeError
            X or Y is a CuPy array (pairs are learned on the CPU core).
        """
        if callback is not None and not callable(callback):
            raise TypeError(f"callback must be callable, got {type(callback).__name__}")
        o = self._options()
        seed = _checks.check_seed(self.seed)
        for value, name in ((X, "X"), (Y, "Y")):
            if _checks.is_cupy(value):
                raise TypeError(f"{name} is a CuPy array; fit_samples runs on the CPU core: "
                                "pass NumPy arrays")
        if o["data"] == "stream":
            raise ValueError("data='stream' draws fresh vectors x and their targets A x; "
                             "fit_samples has a fixed set of pairs: use data='fixed' or "
                             "data='exact'")
        X = _checks.as_float_array(X, "X", ndim=2, dtype=o["dtype"])
        Y = _checks.as_float_array(Y, "Y", ndim=2, dtype=o["dtype"])
        if X.shape[0] != Y.shape[0]:
            raise ValueError(f"Y must have one row per sample of X: X has {X.shape[0]} rows "
                             f"(samples), Y has {Y.shape[0]}")
        if X.size == 0 or Y.size == 0:
            raise ValueError(f"X and Y must not be empty, got shapes {X.shape} and {Y.shape}")
        _checks.check_finite(X, "X")
        _checks.check_finite(Y, "Y")
        samples, n = X.shape
        m = Y.shape[1]
        if samples < o["rank"]:
            raise ValueError(f"X must hold at least rank = {o['rank']} samples (rows) to "
                             f"determine a rank-{o['rank']} map, got {samples}")
        widths = _checks.bottleneck_widths(o["rank"], o["layers"], (m, n))
        _checks.check_bottleneck_size(widths, samples, o["batch_size"], o["data"])
        optimizer, tol = _resolve(o, widths, False)
        from . import _core

        network = _core.bottleneck_network(o["dtype"], widths, o["bias"], o["init"], optimizer,
                                           o["lr"], o["epochs"], o["samples"], o["batch_size"],
                                           o["data"], seed, tol=tol,
                                           max_epochs=o["max_epochs"])
        if o["data"] == "exact":
            design, targets, bias_from, offset = _sample_design(X, Y, o["bias"], o["dtype"])

            def run(*hooks):
                network.fit_design(design, targets, bias_from, offset, *hooks)
        else:
            X_c, Y_c = np.ascontiguousarray(X), np.ascontiguousarray(Y)

            def run(*hooks):
                network.fit_pairs(X_c, Y_c, *hooks)
        return self._train(network, run, o, optimizer, tol, seed, n, False, callback, progress)

    def _train(self, network, run, o, optimizer, tol, seed, n_features, on_gpu, callback,
               progress):
        """Runs ``run(on_epoch, on_poll)`` (the core's fit) with the callback, the
        progress bar, Ctrl-C and divergence handled; the network becomes this object's."""
        epochs = o["max_epochs"] if tol else o["epochs"]
        bar = ProgressBar(epochs, "fit", enabled=bool(progress))
        diverged = False

        def on_epoch(epoch, loss):
            nonlocal diverged
            bar.set(epoch, note=f"epoch {epoch}/{epochs}  loss {loss:.4e}")
            if math.isnan(loss):  # an overflowing loss is inf; NaN means the weights are
                diverged = True
                return False
            if callback is not None and callback(epoch, loss) is False:
                return False
            return True

        # The core polls with the fraction of the whole run done.
        on_poll = (lambda fraction: bar.set(fraction * epochs)) if progress else None
        # From here on the network is this object's, so that after Ctrl-C or an error
        # in the callback it stays usable in its last completed epoch's state.
        fitted = dict(_network=network, seed_=seed, n_features_in_=n_features, _on_gpu=on_gpu,
                      optimizer_=optimizer, tol_=tol)
        self.__dict__.update(fitted)
        try:
            run(on_epoch, on_poll)
        except BaseException:
            if self._on_gpu and network.device < 0:
                # The GPU fit failed before the parameters reached the device: there is
                # no state to keep.
                fitted["_network"] = None
            raise
        finally:
            bar.close()
            # A callback that fitted this object again has replaced the network: the
            # fit that returns last is the one kept.
            self.__dict__.update(fitted)
        if diverged or not _finite_parameters(network):
            self._network = None
            steps = "; data='exact' starts at 10 * lr" if o["data"] == "exact" else ""
            raise ValueError(
                f"training diverged: the weights became NaN or infinite (optimizer="
                f"{optimizer!r}, lr={o['lr']}{steps}); fit again with a smaller lr")
        self.converged_ = bool(getattr(network, "converged", False))
        self.relative_gradient_ = float(getattr(network, "relative_gradient", math.nan))
        return self

    def __getstate__(self):
        # A CPU network pickles itself (configuration, parameters, optimizer state, scale
        # and loss history: bindings/core/bottleneck.cpp); the GPU network cannot be
        # rebuilt from such a state yet.
        if self._network is not None and self._on_gpu:
            raise TypeError(
                "a Bottleneck fitted on the GPU cannot be pickled or copied (the CUDA core "
                "cannot restore a trained network's optimizer state); fit it on a NumPy "
                "array to get a network that pickles, or save its factors()")
        return self.__dict__.copy()

    def _fitted(self):
        if self._network is None:
            raise NotFittedError("this Bottleneck is not fitted yet: call fit(A) first")
        return self._network

    @_interop.dlpack_method
    def matrix(self):
        """The learned linear map W, shape (m, n): ``L @ R`` of :meth:`factors`."""
        return self._fitted().matrix()

    @_interop.dlpack_method
    def factors(self):
        """The learned map split at the choke point: ``(L, R)``.

        Returns
        -------
        L : ndarray, shape (m, rank)
            The product of the weights after the choke point (scaled back).
        R : ndarray, shape (rank, n)
            The product of the weights up to the choke point.
        """
        return self._fitted().factors()

    @_interop.dlpack_method
    def predict(self, X):
        """The network applied to a batch: ``X @ W.T + intercept_``.

        Parameters
        ----------
        X : array_like, shape (b, n)
            One input vector per row; converted to ``dtype``; not modified. On the
            device the network was fitted on: a CuPy array for a GPU-fitted network.

        Returns
        -------
        ndarray, shape (b, m)
            A CuPy array for a GPU-fitted network.

        Raises
        ------
        ValueError
            X not 2-D, with the wrong number of columns, or with NaN/Inf.
        """
        network = self._fitted()
        if _checks.is_cupy(X) != self._on_gpu:
            fitted, given = ("GPU (CuPy)", "NumPy") if self._on_gpu else ("CPU (NumPy)", "CuPy")
            raise TypeError(f"X is a {given} array but this Bottleneck was fitted on the "
                            f"{fitted}; arrays are on different devices (lowrank_core never "
                            "copies between devices silently)")
        X = _checks.as_float_array(X, "X", ndim=2, dtype=self.dtype)
        if X.shape[1] != self.n_features_in_:
            raise ValueError(f"X must have {self.n_features_in_} columns (n of the fitted A), "
                             f"got shape {X.shape}")
        _checks.check_finite(X, "X")
        xp = _checks.array_module(X)
        return network.predict(xp.ascontiguousarray(X))

    @property
    def rank_(self) -> int:
        return int(self._fitted().numerical_rank())

    @property
    def loss_history_(self):
        return self._fitted().loss_history

    @property
    @_interop.dlpack_method
    def intercept_(self):
        return self._fitted().intercept()

    @property
    @_interop.dlpack_method
    def singular_values_(self):
        return self._fitted().singular_values()
