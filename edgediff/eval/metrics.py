"""Image-set metrics: Frechet distance between feature sets, PSNR and SSIM between paired images.

numpy only. The Frechet distance needs the trace of sqrt(S1 S2); for symmetric PSD S1, S2 that is
the trace of sqrt(A S2 A) with A = sqrt(S1), a symmetric PSD matrix whose eigenvalues ``eigh``
gives stably, so no general (scipy) matrix square root is needed.
"""

from __future__ import annotations

import numpy as np

PSNR_CAP_DB = 100.0  # identical images have infinite PSNR; JSON gets this cap instead


def _psd_sqrt(m: np.ndarray) -> np.ndarray:
    w, v = np.linalg.eigh(m)
    return (v * np.sqrt(np.clip(w, 0.0, None))) @ v.T


def frechet_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Frechet distance between Gaussians fitted to feature sets a (N, D) and b (M, D) (as FID, Heusel et al. 2017)."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1] or len(a) < 2 or len(b) < 2:
        raise ValueError(f"need two feature sets (N>=2, D) of one width, got {a.shape} and {b.shape}")
    mu_a, mu_b = a.mean(axis=0), b.mean(axis=0)
    cov_a, cov_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    root_a = _psd_sqrt(cov_a)
    cross = np.linalg.eigvalsh(root_a @ cov_b @ root_a)  # eigenvalues of sqrt(A) B sqrt(A)
    trace_sqrt = np.sqrt(np.clip(cross, 0.0, None)).sum()
    fd = float(((mu_a - mu_b) ** 2).sum() + np.trace(cov_a) + np.trace(cov_b) - 2.0 * trace_sqrt)
    return max(fd, 0.0)


def psnr(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Per-image PSNR in dB of uint8 image batches (N, H, W, C), capped at ``PSNR_CAP_DB``."""
    diff = a.astype(np.float64) - b.astype(np.float64)
    mse = (diff**2).reshape(len(diff), -1).mean(axis=1)
    with np.errstate(divide="ignore"):
        value = 10.0 * np.log10(255.0**2 / mse)
    return np.minimum(value, PSNR_CAP_DB)


def _gaussian_window(size: int = 11, sigma: float = 1.5) -> np.ndarray:
    x = np.arange(size, dtype=np.float64) - (size - 1) / 2
    g = np.exp(-(x**2) / (2 * sigma**2))
    return g / g.sum()


def _filter_valid(x: np.ndarray, g: np.ndarray) -> np.ndarray:
    """Separable 'valid' filtering over axes 1, 2 of (N, H, W, C)."""
    k = len(g)
    rows = sum(g[i] * x[:, i : x.shape[1] - k + 1 + i] for i in range(k))
    return sum(g[i] * rows[:, :, i : x.shape[2] - k + 1 + i] for i in range(k))


def ssim(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Per-image SSIM of uint8 batches (N, H, W, C): Wang et al. (2004), 11x11 Gaussian window (sigma 1.5),
    K1 = 0.01, K2 = 0.03, over the valid region, averaged over pixels and channels."""
    x, y = a.astype(np.float64), b.astype(np.float64)
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    g = _gaussian_window()
    mu_x, mu_y = _filter_valid(x, g), _filter_valid(y, g)
    sxx = _filter_valid(x * x, g) - mu_x**2
    syy = _filter_valid(y * y, g) - mu_y**2
    sxy = _filter_valid(x * y, g) - mu_x * mu_y
    num = (2 * mu_x * mu_y + c1) * (2 * sxy + c2)
    den = (mu_x**2 + mu_y**2 + c1) * (sxx + syy + c2)
    return (num / den).reshape(len(x), -1).mean(axis=1)
