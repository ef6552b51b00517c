"""The attribute classifier, run in numpy: the evaluator's eyes, usable where torch is not.

A small CNN (five 3x3 convolutions, a 3x3 cell pooling, three dense layers) trained on generator
renders (``tools/zoo/train_classifier.py``; weights in ``weights/classifier.safetensors``). Its
128-d penultimate activations are the features the Frechet distance is computed on, as Inception's
pool features are for FID. Inference is numpy only so that bundles evaluated through a runtime need
no torch; ``classifier_torch.py`` holds the same network for training, and a test checks they agree.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edgediff.eval.labels import NUM_OUTPUTS, Detection, decode

# (in, out, stride) of each 3x3 convolution (padding 1, ReLU after each).
CONVS: tuple[tuple[int, int, int], ...] = ((3, 32, 1), (32, 64, 2), (64, 64, 1), (64, 128, 2), (128, 128, 1))
GRID = 3  # adaptive average pooling to the 3x3 grid of object positions
DENSE: tuple[tuple[int, int], ...] = ((CONVS[-1][1] * GRID * GRID, 256), (256, 128), (128, NUM_OUTPUTS))
FEATURE_DIM = DENSE[1][1]
WEIGHTS = Path(__file__).with_name("weights") / "classifier.safetensors"


def to_input(images: np.ndarray) -> np.ndarray:
    """uint8 (N, 64, 64, 3) -> float32 in [-1, 1], NHWC (the training normalisation)."""
    if images.dtype != np.uint8 or images.ndim != 4 or images.shape[-1] != 3:
        raise ValueError(f"expected uint8 images (N, H, W, 3), got {images.dtype} {images.shape}")
    return images.astype(np.float32) / 127.5 - 1.0


def _conv3x3(x: np.ndarray, weight: np.ndarray, bias: np.ndarray, stride: int) -> np.ndarray:
    """NHWC 3x3 convolution, padding 1, by im2col; ``weight`` in torch layout (out, in, 3, 3)."""
    n, _, _, c = x.shape
    padded = np.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
    windows = np.lib.stride_tricks.sliding_window_view(padded, (3, 3), axis=(1, 2))  # (N, H, W, C, 3, 3)
    windows = windows[:, ::stride, ::stride]
    ho, wo = windows.shape[1:3]
    cols = np.ascontiguousarray(windows).reshape(n * ho * wo, c * 9)  # patch order (C, kh, kw) as torch
    out = cols @ weight.reshape(weight.shape[0], -1).T + bias
    return out.reshape(n, ho, wo, -1)


def _pool_bounds(size: int, bins: int) -> list[tuple[int, int]]:
    """The bins of torch's AdaptiveAvgPool: [floor(i*size/bins), ceil((i+1)*size/bins))."""
    return [((i * size) // bins, -((-(i + 1) * size) // bins)) for i in range(bins)]


def _adaptive_avg_pool(x: np.ndarray, bins: int) -> np.ndarray:
    """NHWC -> (N, bins, bins, C)."""
    rows = _pool_bounds(x.shape[1], bins)
    cols = _pool_bounds(x.shape[2], bins)
    return np.stack(
        [np.stack([x[:, r0:r1, c0:c1].mean(axis=(1, 2)) for c0, c1 in cols], axis=1) for r0, r1 in rows], axis=1
    )


class AttributeClassifier:
    """Numpy inference of the shipped classifier: logits, features and decoded detections."""

    def __init__(self, weights: dict[str, np.ndarray]) -> None:
        self.w = {k: np.asarray(v, dtype=np.float32) for k, v in weights.items()}

    @classmethod
    def load(cls, path: str | Path | None = None) -> AttributeClassifier:
        from safetensors.numpy import load_file

        return cls(load_file(str(path or WEIGHTS)))

    def forward(self, images: np.ndarray, batch_size: int = 64) -> tuple[np.ndarray, np.ndarray]:
        """uint8 images (N, 64, 64, 3) -> logits (N, 156) and features (N, 128)."""
        logits, feats = [], []
        for start in range(0, len(images), batch_size):
            x = to_input(images[start : start + batch_size])
            for i, (_, _, stride) in enumerate(CONVS):
                x = np.maximum(_conv3x3(x, self.w[f"conv{i}.weight"], self.w[f"conv{i}.bias"], stride), 0.0)
            x = _adaptive_avg_pool(x, GRID)  # (B, 3, 3, C)
            x = x.transpose(0, 3, 1, 2).reshape(len(x), -1)  # flatten as torch does from (B, C, 3, 3)
            for i in range(len(DENSE)):
                x = x @ self.w[f"fc{i}.weight"].T + self.w[f"fc{i}.bias"]
                if i < len(DENSE) - 1:
                    x = np.maximum(x, 0.0)
                if i == len(DENSE) - 2:
                    feats.append(x)
            logits.append(x)
        if not logits:
            return np.zeros((0, NUM_OUTPUTS), np.float32), np.zeros((0, FEATURE_DIM), np.float32)
        return np.concatenate(logits), np.concatenate(feats)

    def predict(self, images: np.ndarray) -> list[Detection]:
        return decode(self.forward(images)[0])

    def features(self, images: np.ndarray) -> np.ndarray:
        return self.forward(images)[1]
