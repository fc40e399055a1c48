"""The linear bottleneck network in plain NumPy: the readable ground truth for the core.

Conventions (those of the core, read row-wise): a batch X is (b, n), one vector per
row; weight l is (widths[l+1], widths[l]) and maps h to ``h @ W.T + b``; the loss is
the mean of the squared errors over all entries. The random draws come from the
same Philox streams as in ``cpp/lowrank/common/philox.hpp``, so a seed gives the core's run.
"""

from __future__ import annotations

import numpy as np

from .. import _checks
from .._bottleneck import NotFittedError, _check_stopping, _resolve
from ._philox import (DATA_STREAM, SHUFFLE_STREAM, WEIGHTS_STREAM, gaussian_stream,
                      uniform_stream)

__all__ = ["Bottleneck", "exact_gradients", "forward", "gauss_newton_sweep",
           "initial_parameters", "mse_gradients", "optimizer_step", "reduced_rank_regression"]

MOMENTUM, BETA1, BETA2, EPSILON = 0.9, 0.9, 0.999, 1e-7
EXACT_STEPS_PER_EPOCH, EXACT_LR_PEAK, EXACT_LR_FLOOR = 1000, 10.0, 1e-2


def initial_parameters(widths, init, seed, dtype=np.float32):
    """(weights, biases) as drawn from ``seed``; weight l from stream 1, substream l."""
    weights, biases = [], []
    for layer, (fan_in, fan_out) in enumerate(zip(widths[:-1], widths[1:])):
        count = fan_in * fan_out
        if init == "glorot_uniform":
            u = uniform_stream(seed, 0, count, WEIGHTS_STREAM, layer)
            w = np.sqrt(6.0 / (fan_in + fan_out)) * (2.0 * u - 1.0)
        else:
            w = gaussian_stream(seed, 0, count, WEIGHTS_STREAM, layer)
            if init == "he_normal":
                w = w * np.sqrt(2.0 / fan_in)
        w = w.reshape(fan_in, fan_out).T  # column-major entry order
        if init == "orthogonal":
            tall = fan_out >= fan_in
            q, r = np.linalg.qr(w if tall else w.T)
            q = q * np.where(np.diag(r) < 0, -1.0, 1.0)
            w = q if tall else q.T
        weights.append(np.ascontiguousarray(w, dtype=dtype))
        biases.append(np.zeros(fan_out, dtype=dtype))
    return weights, biases


def _activations(weights, biases, X, bias_from=0):
    H = [X]
    for W, b in zip(weights, biases):
        Y = H[-1] @ W.T
        Y[bias_from:] += b
        H.append(Y)
    return H


def forward(weights, biases, X):
    """The network on a batch X (b, n): (b, m)."""
    return _activations(weights, biases, X)[-1]


def _backward(weights, H, G, bias_from=0):
    weight_gradients, bias_gradients = [None] * len(weights), [None] * len(weights)
    for layer in range(len(weights) - 1, -1, -1):
        weight_gradients[layer] = G.T @ H[layer]  # dL/dW = delta^T H
        bias_gradients[layer] = G[bias_from:].sum(axis=0)  # dL/db = column sums of delta
        G = G @ weights[layer]  # delta of the layer below
    return weight_gradients, bias_gradients


def mse_gradients(weights, biases, X, T):
    """The mean squared error of the batch against targets T (b, m), and its gradients.

    Returns ``(loss, weight_gradients, bias_gradients)``; ``loss = mean((Y - T)**2)``.
    """
    H = _activations(weights, biases, X)
    residual = H[-1] - T
    G = (2.0 / residual.size) * residual
    return float(np.sum(residual.astype(np.float64) ** 2) / residual.size), \
        *_backward(weights, H, G.astype(X.dtype))


def exact_gradients(weights, biases, A):
    """The expected loss ``||W - A||_F^2 / m + ||c||^2 / m`` and its exact gradients.

    E[x x^T] = I makes it the mean squared error over the design ``[I_n; 0]`` (rows)
    with the bias added to the last row only, divided by m (not by m (n + 1)).
    """
    m, n = A.shape
    dtype = weights[0].dtype
    X = np.vstack([np.eye(n, dtype=dtype), np.zeros((1, n), dtype)])
    T = np.vstack([A.T, np.zeros((1, m), A.dtype)]).astype(dtype)
    H = _activations(weights, biases, X, bias_from=n)
    residual = H[-1] - T
    G = ((2.0 / m) * residual).astype(dtype)
    loss = float(np.sum(residual.astype(np.float64) ** 2) / m)
    return (loss, *_backward(weights, H, G, bias_from=n))


def optimizer_step(parameters, gradients, state, optimizer, lr):
    """One step, in place. ``state`` is a dict the first call fills (moments, step)."""
    if not state:
        state["step"] = 0
        state["m"] = [np.zeros_like(p) for p in parameters]
        state["v"] = [np.zeros_like(p) for p in parameters]
    state["step"] += 1
    t = state["step"]
    dtype = parameters[0].dtype.type
    rate = dtype(lr)
    for p, g, m, v in zip(parameters, gradients, state["m"], state["v"]):
        if optimizer == "sgd":
            p -= rate * g
        elif optimizer == "momentum":
            m *= dtype(MOMENTUM)
            m += g
            p -= rate * m
        else:  # adam
            m[...] = dtype(BETA1) * m + dtype(1.0 - BETA1) * g
            v[...] = dtype(BETA2) * v + dtype(1.0 - BETA2) * (g * g)
            c1, c2 = dtype(1.0 / (1.0 - BETA1**t)), dtype(1.0 / (1.0 - BETA2**t))
            p -= rate * (m * c1) / (np.sqrt(v * c2) + dtype(EPSILON))


def reduced_rank_regression(X, Y, rank, *, intercept=True):
    """The closed-form reduced-rank regression (Izenman 1975, identity weight).

    The W (m, n) of rank <= ``rank`` and c (m,) that minimise ``sum_i ||W x_i + c -
    y_i||^2`` over the rows of X (N, n) and Y (N, m): with the centred Xc, Yc (or X, Y
    without intercept), B = Xc^+ Yc the least-squares fit, V the top ``rank`` right
    singular vectors of the fitted values Xc B, then W = (B V V^T)^T and c = mean(Y)
    - W mean(X). With N < n (or collinear X) W is the minimum-norm minimiser; the
    fitted values are unique either way. Returns (W, c), float64.
    """
    X = np.asarray(X, dtype=np.float64)
    Y = np.asarray(Y, dtype=np.float64)
    x_mean = X.mean(axis=0) if intercept else np.zeros(X.shape[1])
    y_mean = Y.mean(axis=0) if intercept else np.zeros(Y.shape[1])
    Xc, Yc = X - x_mean, Y - y_mean
    B = np.linalg.pinv(Xc) @ Yc
    _, _, vt = np.linalg.svd(Xc @ B, full_matrices=False)
    V = vt[:rank].T
    W = (B @ V @ V.T).T
    return W, y_mean - W @ x_mean


def gauss_newton_sweep(weights, biases, targets, bias, design=None, update=True):
    """One Gauss-Newton sweep of data="exact" (optimizer "gauss_newton"), in float64.

    Solves, by least squares with every other layer fixed, the layer into the choke
    point and then the layer out of it (weights and biases, in place, rounded to their
    dtype), for the mean squared error over the design rows (``None``: the rows e_1,
    ..., e_n without bias and 0 with it, data="exact" on A) against ``targets`` (rows,
    m); the last row carries the bias. The same formulas as the core, written out.
    ``update=False`` only measures. Returns (loss, gradient norm): the loss as
    ``exact_gradients`` (summed over rows, divided by m) and the norm of its gradient
    with respect to the two layers, after the sweep.
    """
    widths = [weights[0].shape[1]] + [w.shape[0] for w in weights]
    n, m = widths[0], widths[-1]
    choke = 1 + int(np.argmin(widths[1:-1]))  # into: layer choke-1; out of: layer choke
    f64 = [w.astype(np.float64) for w in weights]
    b64 = [b.astype(np.float64) if bias else np.zeros(b.shape) for b in biases]
    H = (np.vstack([np.eye(n), np.zeros((1, n))]) if design is None
         else np.asarray(design, dtype=np.float64))
    e = np.r_[np.zeros(len(H) - 1), 1.0 if bias else 0.0]
    T = np.asarray(targets, dtype=np.float64)

    def augmented(h):
        return np.hstack([h, e[:, None]]) if bias else h

    def parameters(layer):
        return np.hstack([f64[layer], b64[layer][:, None]]) if bias else f64[layer]

    for W, b in zip(f64[:choke - 1], b64[:choke - 1]):  # the fixed layers before
        H = H @ W.T + np.outer(e, b)
    G_a = augmented(H)
    U, u = np.eye(m), np.zeros(m)  # the fixed layers after: output = h U^T + e u^T
    if choke + 1 < len(f64):
        U, u = f64[choke + 1], b64[choke + 1]
        for W, b in zip(f64[choke + 2:], b64[choke + 2:]):
            U, u = W @ U, W @ u + b
    reduced = (T - np.outer(e, u)) @ np.linalg.pinv(U).T
    Z_a, Z_c = parameters(choke - 1), parameters(choke)
    k = widths[choke]
    if update:
        shifted = T - np.outer(e, u)  # T - u e^T, then less U b_c e^T
        rhs = shifted - np.outer(e, U @ Z_c[:, k]) if bias else shifted
        Z_a = np.linalg.pinv(U @ Z_c[:, :k]) @ (np.linalg.pinv(G_a) @ rhs).T
        Z_c = (np.linalg.pinv(augmented(G_a @ Z_a.T)) @ reduced).T
        for layer, Z in ((choke - 1, Z_a), (choke, Z_c)):
            cols = weights[layer].shape[1]
            weights[layer][...] = Z[:, :cols]
            if bias:
                biases[layer][...] = Z[:, cols]
    G_c = augmented(G_a @ Z_a.T)
    residual = (G_c @ Z_c.T) @ U.T + np.outer(e, u) - T
    back = residual @ U  # the residual carried back to the output of the choke's layer
    gradient_a = (back @ Z_c[:, :k]).T @ G_a
    gradient_c = back.T @ G_c
    norm = 2 / m * np.sqrt(np.sum(gradient_a**2) + np.sum(gradient_c**2))
    return float(np.sum(residual**2) / m), float(norm)


class Bottleneck:
    """The bottleneck network in NumPy; see :class:`lowrank_core.Bottleneck`."""

    def __init__(self, rank, *, layers=None, bias=True, init="he_normal", optimizer=None,
                 lr=1e-3, epochs=10, samples=10_000, batch_size=32, data="fixed",
                 dtype="float32", seed=None, tol=None, max_epochs=1000):
        options = _checks.check_bottleneck_options(rank, layers, bias, init, optimizer, lr,
                                                   epochs, samples, batch_size, data, dtype)
        if seed is not None:
            _checks.check_seed(seed)
        options["tol"], options["max_epochs"] = _check_stopping(tol, max_epochs)
        self.__dict__.update(options)
        self.seed = seed
        self.weights_ = None

    def fit(self, A, *, callback=None, progress=False):
        A = _checks.as_float_array(A, "A", ndim=2, dtype=self.dtype)
        m, n = A.shape
        widths = _checks.bottleneck_widths(self.rank, self.layers, A.shape)
        _checks.check_finite(A, "A")
        seed = self.seed_ = _checks.check_seed(self.seed)
        dtype = np.dtype(self.dtype)
        self.widths_ = widths
        self.weights_, self.biases_ = initial_parameters(widths, self.init, seed, dtype)
        parameters = self.weights_ + (self.biases_ if self.bias else [])
        state = {}
        # 1. Scale: train on A / s, s = ||A||_F / ||W0||_F: targets the size of the
        # initial network's outputs.
        self.scale_ = 1.0
        a_norm = float(np.linalg.norm(A.astype(np.float64)))
        initial_norm = float(np.linalg.norm(self.matrix().astype(np.float64)))
        s = a_norm / initial_norm if a_norm > 0 and initial_norm > 0 else 1.0
        self.scale_ = s = s if s > 0 and np.isfinite(s) else 1.0
        scaled = (A.astype(np.float64) / s).astype(dtype)
        # 2. The fixed data set X (samples, n) and its targets.
        samples, batch_size = self.samples, min(self.batch_size, self.samples)
        if self.data == "fixed":
            X_all = gaussian_stream(seed, 0, n * samples, DATA_STREAM).reshape(samples, n)
            X_all = X_all.astype(dtype)
            T_all = X_all @ scaled.T
        options = dict(optimizer=self.optimizer, tol=self.tol, data=self.data)
        optimizer, tol = self.optimizer_, self.tol_ = _resolve(options, widths, False)
        steps_per_epoch = (EXACT_STEPS_PER_EPOCH if self.data == "exact"
                           else -(-samples // batch_size))
        # With tol (data="exact"), up to max_epochs, the cosine schedule restarting
        # every `epochs` epochs; the run stops once the gradient's norm is <= tol times
        # its first value.
        total = steps_per_epoch * self.epochs
        self.loss_history_ = []
        self.converged_, self.relative_gradient_ = False, float("nan")
        initial_gradient = None
        if optimizer == "gauss_newton":
            targets = np.vstack([scaled.T.astype(np.float64), np.zeros((1, m))])
            _, initial_gradient = gauss_newton_sweep(self.weights_, self.biases_, targets,
                                                     self.bias, update=False)
        for epoch in range(self.max_epochs if tol else self.epochs):
            total_loss = 0.0
            if optimizer == "gauss_newton":  # 3a. one sweep of least-squares solves
                total_loss, gradient = gauss_newton_sweep(self.weights_, self.biases_, targets,
                                                          self.bias)
                self.relative_gradient_ = (gradient / initial_gradient if initial_gradient
                                           else 0.0)
                self.converged_ = bool(tol) and self.relative_gradient_ <= tol
            elif self.data == "exact":  # 3b. full batch, cosine schedule
                taken = 0
                for k in range(steps_per_epoch):
                    loss, gw, gb = exact_gradients(self.weights_, self.biases_, scaled)
                    total_loss += loss
                    taken += 1
                    if tol:
                        gradients = gw + (gb if self.bias else [])
                        norm = float(np.sqrt(sum(np.sum(g.astype(np.float64)**2)
                                                 for g in gradients)))
                        initial_gradient = norm if initial_gradient is None else initial_gradient
                        self.relative_gradient_ = (norm / initial_gradient if initial_gradient
                                                   else 0.0)
                        if self.relative_gradient_ <= tol:
                            self.converged_ = True
                            break
                    progress_ = ((epoch * steps_per_epoch + k) % total) / total
                    rate = self.lr * (EXACT_LR_FLOOR + (EXACT_LR_PEAK - EXACT_LR_FLOOR)
                                      * 0.5 * (1.0 + np.cos(np.pi * progress_)))
                    optimizer_step(parameters, gw + (gb if self.bias else []), state,
                                   optimizer, rate)
                total_loss /= taken
            else:  # 3c. mini-batches
                if self.data == "fixed":  # Fisher-Yates from the shuffle stream
                    u = uniform_stream(seed, 0, samples, SHUFFLE_STREAM, epoch)
                    order = np.arange(samples)
                    for i in range(samples - 1, 0, -1):
                        j = min(i, int(u[i] * (i + 1)))
                        order[i], order[j] = order[j], order[i]
                for start in range(0, samples, batch_size):
                    b = min(batch_size, samples - start)
                    if self.data == "fixed":
                        X, T = X_all[order[start:start + b]], T_all[order[start:start + b]]
                    else:
                        first = (epoch * samples + start) * n
                        X = gaussian_stream(seed, first, b * n, DATA_STREAM).reshape(b, n)
                        X = X.astype(dtype)
                        T = X @ scaled.T
                    loss, gw, gb = mse_gradients(self.weights_, self.biases_, X, T)
                    total_loss += loss * b
                    optimizer_step(parameters, gw + (gb if self.bias else []), state,
                                   optimizer, self.lr)
                total_loss /= samples
            self.loss_history_.append(total_loss * s * s)
            if callback is not None and callback(epoch + 1, total_loss * s * s) is False:
                break
            if self.converged_:
                break
        self.loss_history_ = np.array(self.loss_history_)
        return self

    def _fitted(self):
        if self.weights_ is None:
            raise NotFittedError("this Bottleneck is not fitted yet: call fit(A) first")

    def factors(self):
        """(L, R): L = s W_L ... W_{c+1} (m, rank), R = W_c ... W_1 (rank, n)."""
        self._fitted()
        hidden = self.widths_[1:-1]
        choke = 1 + int(np.argmin(hidden))  # index into widths of the first narrowest
        R = self.weights_[0]
        for W in self.weights_[1:choke]:
            R = W @ R
        L = self.weights_[choke]
        for W in self.weights_[choke + 1:]:
            L = W @ L
        return self._scaled_back(L), R

    def matrix(self):
        L, R = self.factors()
        return L @ R

    def predict(self, X):
        self._fitted()
        X = _checks.as_float_array(X, "X", ndim=2, dtype=self.dtype)
        return self._scaled_back(forward(self.weights_, self.biases_, X))

    def _scaled_back(self, values):
        """Trained units -> units of A: times s in float64, then back to the dtype."""
        return (values.astype(np.float64) * self.scale_).astype(values.dtype)

    @property
    def intercept_(self):
        self._fitted()
        n = self.widths_[0]
        return self.predict(np.zeros((1, n)))[0]

    @property
    def singular_values_(self):
        L, R = self.factors()
        core = np.linalg.qr(L, mode="r") @ np.linalg.qr(R.T, mode="r").T
        return np.linalg.svd(core, compute_uv=False)

    @property
    def rank_(self):
        s = self.singular_values_
        m, n = self.widths_[-1], self.widths_[0]
        return int(np.sum(s > s.max(initial=0) * max(m, n) * np.finfo(s.dtype).eps))
