"""``manifest.json``: what a bundle holds, how to run it, and how it was checked. Torch-free.

Schema (version 1) -- the keys a device app may rely on:

- ``schema_version``, ``target`` (name, format, runtime, device), ``precision``
- ``components``: list of {``name``, ``format``, ``runtime``, ``entry``, ``files`` [{path, sha256, bytes}],
  ``inputs``/``outputs`` [{name, shape, dtype}], ``precision``, ``parity`` {max_abs_err, rel_l2_err, cosine,
  finite, passed, tolerance, samples}, ``quantization`` (null for float) {scheme, calibration_samples,
  ``kept_in_float`` [torch module names], ``fallback_search`` (null unless a quality target was set) {target,
  met, kept_in_float, candidates, trials [{kept_in_float, margin, psnr, ...}], most_sensitive}}}
- ``pipeline``: conditioning, family, ``scheduler`` (registry name), scheduler_class, scheduler_config,
  precomputed ``timesteps``/``sigmas``, ``steps``, ``guidance_scale``, ``height``, ``width``,
  ``latent_channels``, ``vae_scale_factor``, ``denoiser_batch``, ``tokenizer`` {file, max_length, pad_id}
- ``quality`` (quantized bundles only): ``images`` {prompts, seed, psnr, ssim, and for zoo models adherence,
  teacher_adherence, adherence_drop, fd, teacher_fd} against the fp32 teacher; ``size`` {denoiser_bytes,
  fp32_denoiser_bytes, compression}; ``speed`` {denoiser_step_ms, fp32_denoiser_step_ms, speedup}
- ``provenance``: source, source_hash, edgediff_version, recipe, created
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgediff.errors import BundleError

SCHEMA_VERSION = 1
MANIFEST = "manifest.json"


@dataclass(frozen=True)
class Bundle:
    """An opened bundle: its directory and parsed manifest (hashes already verified if asked)."""

    path: Path
    manifest: dict[str, Any]

    @property
    def components(self) -> dict[str, dict[str, Any]]:
        return {c["name"]: c for c in self.manifest["components"]}

    @property
    def pipeline(self) -> dict[str, Any]:
        return self.manifest["pipeline"]

    @property
    def runtime(self) -> str:
        return self.manifest["target"]["runtime"]

    @property
    def precision(self) -> str:
        return self.manifest["precision"]

    def entry(self, component: str) -> Path:
        return self.path / self.components[component]["entry"]


def sha256_file(path: Path) -> str:
    import hashlib

    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def file_records(root: Path, folder: Path) -> list[dict[str, Any]]:
    return [
        {"path": p.relative_to(root).as_posix(), "sha256": sha256_file(p), "bytes": p.stat().st_size}
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    ]


def verify_files(bundle: Bundle) -> list[str]:
    """Problems found re-hashing every component file (empty when all match)."""
    problems = []
    for component in bundle.manifest["components"]:
        for record in component["files"]:
            path = bundle.path / record["path"]
            if not path.is_file():
                problems.append(f"{record['path']} is missing")
            elif sha256_file(path) != record["sha256"]:
                problems.append(f"{record['path']} does not match its sha256 (modified or corrupted)")
    return problems


def open_bundle(path: str | Path, *, verify: bool = True) -> Bundle:
    root = Path(path)
    manifest_path = root / MANIFEST
    if not manifest_path.is_file():
        raise BundleError(f"{str(root)!r} is not an edgediff bundle (no {MANIFEST}); build one with 'edgediff export'")
    try:
        manifest = json.loads(manifest_path.read_text())
    except json.JSONDecodeError as exc:
        raise BundleError(f"{manifest_path} is not valid JSON ({exc}); re-export the bundle") from exc
    version = manifest.get("schema_version")
    if version != SCHEMA_VERSION:
        raise BundleError(
            f"{manifest_path} has schema_version {version!r}; this edgediff reads {SCHEMA_VERSION}: re-export the bundle"
        )
    bundle = Bundle(root, manifest)
    if verify:
        problems = verify_files(bundle)
        if problems:
            raise BundleError(f"bundle {str(root)!r} failed verification: {'; '.join(problems)}; re-export it")
    return bundle


def write_manifest(folder: Path, manifest: dict[str, Any]) -> None:
    (folder / MANIFEST).write_text(json.dumps(manifest, indent=1, sort_keys=False) + "\n")
