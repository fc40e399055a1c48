"""The linear bottleneck network: a rank-k approximation learned from how A acts on vectors."""

from __future__ import annotations

import math

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
    compiled core, with the GIL released.

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
    optimizer : {"sgd", "momentum", "adam"}, default "adam"
        ``p -= lr g``; ``v = 0.9 v + g, p -= lr v``; or Adam with Keras's constants
        (beta1 = 0.9, beta2 = 0.999, epsilon = 1e-7).
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
    ``n + 1`` vectors ``e_1, ..., e_n`` (without bias) and ``0`` (with it), so each
    step is one exact gradient of it (and the first layer's product is free). It
    differs from the sampled modes in two fixed ways, chosen so that the defaults
    reach the optimum: each epoch is 1000 full-batch steps (``samples`` and
    ``batch_size`` are unused), and the step size follows a cosine schedule over the
    whole run from ``10 * lr`` down to ``0.01 * lr`` (a noise-free gradient takes a
    larger step early and a much smaller one at the end). With every other argument
    at its default (10 epochs, 10,000 steps, Adam, float32), the relative spectral
    error of the learned map comes within 1e-4 of the SVD's on random 10 x 10
    matrices at every rank and on the paper's 50 x 50 identity and diag(1..50) at
    rank 20.

    References
    ----------
    B. Bleckel, "Machine Learning and Low-Rank Matrix Approximations" (the paper this
    network comes from; ``sources/000_951cac785bae6e6e.txt`` of the project).
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

    def __init__(self, rank, *, layers=None, bias=True, init="he_normal", optimizer="adam",
                 lr=1e-3, epochs=10, samples=10_000, batch_size=32, data="fixed",
                 dtype="float32", seed=None):
        options = _checks.check_bottleneck_options(rank, layers, bias, init, optimizer, lr,
                                                   epochs, samples, batch_size, data, dtype)
        if seed is not None:
            _checks.check_seed(seed)
        for name, value in options.items():
            setattr(self, name, value)
        self.seed = seed
        self._network = None
        self._on_gpu = False

    def __repr__(self):
        return (f"Bottleneck({self.rank}, layers={self.layers}, bias={self.bias}, "
                f"init={self.init!r}, optimizer={self.optimizer!r}, lr={self.lr}, "
                f"epochs={self.epochs}, samples={self.samples}, "
                f"batch_size={self.batch_size}, data={self.data!r}, dtype={self.dtype!r}, "
                f"seed={self.seed})")

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
        # The options are checked again here, as set now (scikit-learn's convention:
        # attributes may have been set after construction), with the constructor's
        # messages.
        o = _checks.check_bottleneck_options(
            self.rank, self.layers, self.bias, self.init, self.optimizer, self.lr, self.epochs,
            self.samples, self.batch_size, self.data, self.dtype)
        seed = _checks.check_seed(self.seed)
        backend = backend_for(A)
        A = _checks.as_float_array(A, "A", ndim=2, dtype=o["dtype"])
        widths = _checks.bottleneck_widths(o["rank"], o["layers"], A.shape)
        _checks.check_bottleneck_size(widths, o["samples"], o["batch_size"], o["data"])
        _checks.check_finite(A, "A")
        network = backend.bottleneck_network(
            o["dtype"], widths, o["bias"], o["init"], o["optimizer"], o["lr"], o["epochs"],
            o["samples"], o["batch_size"], o["data"], seed)

        epochs = o["epochs"]
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
        fitted = dict(_network=network, seed_=seed, n_features_in_=A.shape[1],
                      _on_gpu=_checks.is_cupy(A))
        self.__dict__.update(fitted)
        try:
            network.fit(A, on_epoch, on_poll)
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
                f"{o['optimizer']!r}, lr={o['lr']}{steps}); fit again with a smaller lr")
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
