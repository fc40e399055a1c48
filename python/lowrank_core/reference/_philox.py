"""Philox4x32-10 and the Gaussian sketch, in plain NumPy.

The same rule as ``cpp/lowrank/common/philox.hpp`` (read that header for the layout), so a seed
gives the same sketch here, in the C++ core and in the CUDA core.
"""

from __future__ import annotations

import numpy as np

__all__ = ["gaussian_sketch", "gaussian_stream", "philox4x32_10", "uniform_stream"]

# The purposes that draw from one seed, each from its own counter stream
# (the counter's third word; the fourth is a substream), as in cpp/lowrank/common/philox.hpp.
SKETCH_STREAM, WEIGHTS_STREAM, DATA_STREAM, SHUFFLE_STREAM = 0, 1, 2, 3

_MASK = np.uint64(0xFFFFFFFF)
_M0, _M1 = np.uint64(0xD2511F53), np.uint64(0xCD9E8D57)
_W0, _W1 = np.uint64(0x9E3779B9), np.uint64(0xBB67AE85)


def philox4x32_10(counter, key):
    """Philox4x32 with 10 rounds (Salmon et al., SC 2011).

    Parameters
    ----------
    counter : array_like of uint32, shape (4, ...)
    key : pair of uint32

    Returns
    -------
    numpy.ndarray of uint32, shape (4, ...)
    """
    c0, c1, c2, c3 = (np.asarray(x, dtype=np.uint64) for x in np.asarray(counter, np.uint32))
    k0, k1 = np.uint64(key[0]), np.uint64(key[1])
    for round_ in range(10):
        if round_:
            k0, k1 = (k0 + _W0) & _MASK, (k1 + _W1) & _MASK
        p0, p1 = _M0 * c0, _M1 * c2  # exact: both factors are below 2**32
        c0, c1, c2, c3 = (p1 >> np.uint64(32)) ^ c1 ^ k0, p1 & _MASK, \
            (p0 >> np.uint64(32)) ^ c3 ^ k1, p0 & _MASK
    return np.stack([c0, c1, c2, c3]).astype(np.uint32)


def _blocks(seed, first, count, stream, substream):
    """The Philox outputs (4, blocks) covering entries [first, first + count)."""
    blocks = np.arange(first // 4, (first + count + 3) // 4, dtype=np.uint64)
    counter = np.stack([blocks & _MASK, blocks >> np.uint64(32),
                        np.full_like(blocks, stream), np.full_like(blocks, substream)])
    seed = int(seed)
    return philox4x32_10(counter, (seed & 0xFFFFFFFF, seed >> 32))


def gaussian_stream(seed, first, count, stream, substream=0):
    """Entries [first, first + count) of a stream's standard normal sequence, float64.

    Entry e is lane ``e % 4`` of the block at counter ``(e // 4, stream, substream)``;
    lanes (0, 1) and (2, 3) are Box–Muller pairs. Stream 0 is the sketch.
    """
    if count == 0:
        return np.zeros(0)
    bits = _blocks(seed, first, count, stream, substream).astype(np.float64)
    u = (bits + 0.5) / 2.0**32
    radius = np.sqrt(-2.0 * np.log(u[0::2]))  # lanes 0 and 2
    angle = 2.0 * np.pi * u[1::2]  # lanes 1 and 3
    z = np.empty_like(u)
    z[0::2] = radius * np.cos(angle)
    z[1::2] = radius * np.sin(angle)
    offset = first % 4
    return z.T.reshape(-1)[offset:offset + count]  # block-major, lane-minor


def uniform_stream(seed, first, count, stream, substream=0):
    """Entries [first, first + count) of a stream as uniforms ``(x + 0.5) / 2**32``."""
    if count == 0:
        return np.zeros(0)
    bits = _blocks(seed, first, count, stream, substream).astype(np.float64)
    offset = first % 4
    return ((bits + 0.5) / 2.0**32).T.reshape(-1)[offset:offset + count]


def gaussian_sketch(rows, cols, seed, dtype=np.float64):
    """The (rows, cols) standard Gaussian test matrix for ``seed``.

    Entry e (column-major linear index) is lane ``e % 4`` of the Philox block at
    counter ``e // 4``; lanes (0, 1) and (2, 3) are Box–Muller pairs, in float64,
    rounded to ``dtype`` at the end.
    """
    z = gaussian_stream(seed, 0, rows * cols, SKETCH_STREAM)  # column-major entry order
    return z.reshape(cols, rows).T.astype(dtype)
