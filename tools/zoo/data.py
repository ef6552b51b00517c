"""Render a slice of the procedural stream to disk, in parallel: images, prompts and class targets.

Output folder: ``images.npy`` uint8 (N, 64, 64, 3) (a memmap each worker fills in place),
``prompts.json``, ``targets.npz`` (``edgediff.eval.labels.Targets`` fields). Item ``i`` of the folder
is item ``start + i`` of stream ``seed``, whatever the number of workers.
"""

from __future__ import annotations

import json
import multiprocessing as mp
import time
from pathlib import Path

import numpy as np

from edgediff.eval.labels import Targets, encode_targets
from edgediff.zoo.dataset import render_range

CHUNK = 2000


def _work(args: tuple[str, int, int, int]) -> tuple[int, list[str], dict[str, np.ndarray]]:
    path, seed, start, count = args
    images, scenes, prompts = render_range(seed, start, count)
    out = np.load(path, mmap_mode="r+")
    offset = start - _work_base[0]
    out[offset : offset + count] = images
    out.flush()
    t = encode_targets(scenes)
    return offset, prompts, {k: getattr(t, k) for k in ("background", "occupied", "shape", "color", "size")}


_work_base = [0]


def _init(base: int) -> None:
    _work_base[0] = base


def render_to(folder: Path, seed: int, count: int, start: int = 0, workers: int | None = None) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    path = folder / "images.npy"
    np.lib.format.open_memmap(path, mode="w+", dtype=np.uint8, shape=(count, 64, 64, 3)).flush()
    jobs = [(str(path), seed, start + s, min(CHUNK, count - s)) for s in range(0, count, CHUNK)]
    prompts: list[str] = [""] * count
    fields = {k: [None] * len(jobs) for k in ("background", "occupied", "shape", "color", "size")}
    with mp.get_context("fork").Pool(workers or mp.cpu_count(), initializer=_init, initargs=(start,)) as pool:
        for offset, chunk_prompts, t in pool.imap_unordered(_work, jobs):
            prompts[offset : offset + len(chunk_prompts)] = chunk_prompts
            for k, v in t.items():
                fields[k][offset // CHUNK] = v
    np.savez(folder / "targets.npz", **{k: np.concatenate(v) for k, v in fields.items()})
    (folder / "prompts.json").write_text(json.dumps({"seed": seed, "start": start, "prompts": prompts}))
    print(f"rendered {count} items of stream {seed} to {folder} in {time.time() - t0:.1f}s", flush=True)


def load(folder: Path) -> tuple[np.ndarray, list[str], Targets]:
    images = np.load(folder / "images.npy", mmap_mode="r")
    prompts = json.loads((folder / "prompts.json").read_text())["prompts"]
    t = np.load(folder / "targets.npz")
    return images, prompts, Targets(**{k: t[k] for k in t.files})
