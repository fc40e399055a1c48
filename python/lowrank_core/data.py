"""Built-in matrices: generated on the spot, nothing downloaded.

Used by ``python -m lowrank_core demo`` and handy for trying the package.
"""

from __future__ import annotations

import numpy as np

__all__ = ["colour_wheel", "decaying_spectrum", "logo", "photograph", "test_image"]


def test_image(size: int = 256) -> np.ndarray:
    """A grayscale, photograph-like test image in [0, 1], shape (size, size), float64.

    A smooth sky gradient, a sun, hills, a house with windows and a fine texture:
    edges and smooth areas, so its singular values decay fast at first and then
    slowly, as a real photograph's do. Deterministic.

    Examples
    --------
    >>> from lowrank_core.data import test_image
    >>> test_image(64).shape
    (64, 64)
    """
    if not isinstance(size, (int, np.integer)) or isinstance(size, bool) or size < 8:
        raise ValueError(f"size must be an integer >= 8, got {size!r}")
    y, x = np.mgrid[0:size, 0:size] / (size - 1.0)
    image = 0.75 - 0.35 * y + 0.1 * x  # sky
    image = np.where((x - 0.75) ** 2 + (y - 0.22) ** 2 < 0.012, 1.0, image)  # sun
    hills = 0.62 + 0.08 * np.sin(6.0 * x) + 0.04 * np.cos(15.0 * x + 1.0)
    image = np.where(y > hills, 0.35 + 0.15 * np.sin(40.0 * x * y), image)  # textured hills
    house = (x > 0.18) & (x < 0.45) & (y > 0.48) & (y < 0.8)
    image = np.where(house, 0.85, image)
    roof = (y < 0.48) & (y > 0.3) & (np.abs(x - 0.315) < (y - 0.3) * 0.85)
    image = np.where(roof, 0.15, image)
    for left in (0.22, 0.35):  # two windows
        window = (x > left) & (x < left + 0.07) & (y > 0.55) & (y < 0.63)
        image = np.where(window, 0.05, image)
    door = (x > 0.285) & (x < 0.34) & (y > 0.66) & (y < 0.8)
    image = np.where(door, 0.25, image)
    return np.clip(image, 0.0, 1.0)


def decaying_spectrum(m: int, n: int, singular_values, *, seed: int = 0,
                      dtype=np.float64) -> np.ndarray:
    """A random (m, n) matrix with exactly the given singular values.

    ``U @ diag(s) @ V^T`` with Haar-random orthonormal ``U`` (m, p) and ``V``
    (n, p), ``p = len(singular_values) <= min(m, n)``.

    Examples
    --------
    >>> import numpy as np
    >>> from lowrank_core.data import decaying_spectrum
    >>> A = decaying_spectrum(30, 20, 1.0 / np.arange(1, 21))
    >>> bool(np.allclose(np.linalg.svd(A, compute_uv=False), 1.0 / np.arange(1, 21)))
    True
    """
    s = np.asarray(singular_values, dtype=np.float64)
    p = s.size
    if s.ndim != 1 or p > min(m, n):
        raise ValueError(f"singular_values must be 1-D with at most min(m, n) = {min(m, n)} entries")
    rng = np.random.default_rng(seed)
    U, _ = np.linalg.qr(rng.standard_normal((m, p)))
    V, _ = np.linalg.qr(rng.standard_normal((n, p)))
    return ((U * s) @ V.T).astype(dtype)


def logo(size: int = 256) -> np.ndarray:
    """A procedurally drawn fruit logo (a bitten apple with a leaf), in [0, 1].

    Shape (size, size), float64: a dark silhouette on white, like the 256 x 256
    logo of the reproduced paper (which cannot be shipped).

    Examples
    --------
    >>> from lowrank_core.data import logo
    >>> logo(32).shape
    (32, 32)
    """
    if not isinstance(size, (int, np.integer)) or isinstance(size, bool) or size < 8:
        raise ValueError(f"size must be an integer >= 8, got {size!r}")
    y, x = np.mgrid[0:size, 0:size] / (size - 1.0)
    body = (((x - 0.40) / 0.25) ** 2 + ((y - 0.58) / 0.30) ** 2 < 1) | \
        (((x - 0.60) / 0.25) ** 2 + ((y - 0.58) / 0.30) ** 2 < 1)
    notch = ((x - 0.5) / 0.08) ** 2 + ((y - 0.28) / 0.06) ** 2 < 1
    bite = (x - 0.86) ** 2 + (y - 0.52) ** 2 < 0.11**2
    leaf = (((x - 0.56) * 0.8 + (y - 0.16) * 0.6) / 0.12) ** 2 + \
        (((x - 0.56) * 0.6 - (y - 0.16) * 0.8) / 0.05) ** 2 < 1
    shape = (body & ~notch & ~bite) | leaf
    return np.where(shape, 0.1, 1.0)


def colour_wheel(size: int = 10) -> np.ndarray:
    """A colour wheel, (size, size, 3) RGB in [0, 1]: hue by angle, white at the centre,
    black outside the disc (the paper's 10 x 10 colour wheel, drawn anew).

    Examples
    --------
    >>> from lowrank_core.data import colour_wheel
    >>> colour_wheel().shape
    (10, 10, 3)
    """
    if not isinstance(size, (int, np.integer)) or isinstance(size, bool) or size < 2:
        raise ValueError(f"size must be an integer >= 2, got {size!r}")
    y, x = (np.mgrid[0:size, 0:size] + 0.5) / size * 2.0 - 1.0
    radius = np.hypot(x, y)
    hue = (np.arctan2(y, x) / (2 * np.pi)) % 1.0
    channels = [np.clip(np.abs((hue * 6.0 + shift) % 6.0 - 3.0) - 1.0, 0.0, 1.0)
                for shift in (0.0, 4.0, 2.0)]
    rgb = np.stack(channels, axis=-1)
    saturation = np.clip(radius, 0.0, 1.0)[..., None]
    rgb = 1.0 - saturation * (1.0 - rgb)  # white centre, full colour at the rim
    return np.where((radius <= 1.0)[..., None], rgb, 0.0)


def photograph(size: int = 400) -> tuple[np.ndarray, str]:
    """A grayscale photograph (size, size) in [0, 1] and where it came from.

    scikit-image's bundled ``data.camera()`` (512 x 512, shipped in its wheel),
    resampled to ``size``, when scikit-image is installed; otherwise the built-in
    :func:`test_image`. Nothing is downloaded.
    """
    try:
        from skimage import data as skimage_data
    except ImportError:
        return test_image(size), "lowrank_core.data.test_image (scikit-image not installed)"
    from scipy.ndimage import zoom

    camera = skimage_data.camera().astype(np.float64) / 255.0
    resampled = zoom(camera, size / camera.shape[0], order=1)[:size, :size]
    return np.clip(resampled, 0.0, 1.0), "scikit-image data.camera(), resampled"
