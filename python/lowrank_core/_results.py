"""Result types shared by the compiled core and the reference."""

from __future__ import annotations

from typing import Any, NamedTuple

__all__ = ["ErrorEstimate", "SVDResult", "ToleranceSVDResult"]


class SVDResult(NamedTuple):
    """A truncated SVD ``A ~= U @ diag(S) @ Vh``; unpacks as ``U, S, Vh``.

    Attributes
    ----------
    U : array, shape (m, k)
        Left singular vectors (orthonormal columns). The largest-magnitude entry
        of each column is positive.
    S : array, shape (k,)
        Singular values, descending.
    Vh : array, shape (k, n)
        Right singular vectors (orthonormal rows).
    """

    U: Any
    S: Any
    Vh: Any

    def to_dense(self):
        """The rank-k matrix ``U @ diag(S) @ Vh``, shape (m, n)."""
        return (self.U * self.S) @ self.Vh


class ToleranceSVDResult(SVDResult):
    """A truncated SVD found to a tolerance; unpacks as ``U, S, Vh`` like
    :class:`SVDResult`, with what the search found as attributes.

    Attributes
    ----------
    rank : int
        The rank reached, ``len(S)``.
    error : float
        ``||A - U diag(S) Vh||`` in the norm ``ord``: exact up to rounding for
        ``"fro"``; for ``2`` an estimate from below by power steps (see
        :func:`lowrank_core.estimate_error`).
    error_bound : float
        An upper bound on that norm: ``error`` itself for ``"fro"``; for ``2`` the
        bound of Halko–Martinsson–Tropp's Lemma 4.1, which fails with probability
        at most ``10**-probes``.
    norm : float
        ``||A||`` in ``ord`` as the search measured it: ``||A||_F`` for ``"fro"``;
        for ``2`` the largest singular value of the projected matrix, a lower bound
        on ``||A||_2``.
    tol, ord
        What was asked for.
    tol_reached : bool
        ``error <= tol * norm``; False only when the rank cap ``k`` (or a given
        sketch's columns) ran out first, or ``tol`` is below what the dtype resolves.
    basis_columns : int
        Columns of the range basis the SVD was taken from (at least ``rank``).
    """

    def __new__(cls, U, S, Vh, *, error=float("nan"), error_bound=float("nan"),
                norm=float("nan"), tol=float("nan"), ord="fro", tol_reached=False,
                basis_columns=0):
        # (The defaults let pickle rebuild it from (U, S, Vh), then its attributes.)
        self = super().__new__(cls, U, S, Vh)
        self.rank = int(S.shape[0])
        self.error = float(error)
        self.error_bound = float(error_bound)
        self.norm = float(norm)
        self.tol = float(tol)
        self.ord = ord
        self.tol_reached = bool(tol_reached)
        self.basis_columns = int(basis_columns)
        return self

    def __repr__(self):
        return (f"ToleranceSVDResult(rank={self.rank}, error={self.error:.3g}, "
                f"norm={self.norm:.3g}, tol={self.tol:g}, ord={self.ord!r}, "
                f"tol_reached={self.tol_reached})")


class ErrorEstimate(float):
    """The norm of a residual ``A - approximation`` (a float), with its bound.

    Attributes
    ----------
    bound : float
        An upper bound: the value itself for ``"fro"``; for ``2`` the value of
        Halko–Martinsson–Tropp's Lemma 4.1, above the true norm except with
        probability at most ``10**-probes``.
    ord : 2 or "fro"
    probes : int
    """

    def __new__(cls, value, *, bound=float("nan"), ord=2, probes=0):
        self = super().__new__(cls, value)
        self.bound = float(bound)
        self.ord = ord
        self.probes = int(probes)
        return self
