"""Result types shared by the compiled core and the reference."""

from __future__ import annotations

from typing import Any, NamedTuple

__all__ = ["SVDResult"]


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
