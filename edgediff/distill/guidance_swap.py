"""``--denoiser guided|PATH``: a model whose denoiser is a guidance-distilled student.

Classifier-free guidance runs the denoiser on the prompt and on the empty prompt every step and mixes
the two predictions (``eps_u + w (eps_c - eps_u)``). A guidance-distilled student (Meng et al. 2023,
``tools/zoo/train_guidance.py``) predicts that mix from the prompt alone, so a bundle built from it
runs its denoiser on a batch of one, not two: half the work per step, with the guidance scale ``w``
the student was distilled at baked in. The bundle's pipeline therefore samples without guidance,
and records the scale it stands for (``pipeline.guidance_distilled``).

The student is checked against the model before any export: same denoiser class, and, when both
sides record it, distilled from this model's denoiser weights (a student of another teacher would
pass every parity check and draw something else). Its images are measured against the teacher run
with guidance (``build_report``), not assumed.
"""

from __future__ import annotations

import functools
import hashlib
import json
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from edgediff.distill.stand_ins import StandInOption, source_folder
from edgediff.errors import EdgeDiffError
from edgediff.models.diffusers_folder import DENOISER_KEYS, GUIDED_DENOISER_FOLDERS, class_loader
from edgediff.models.hashing import sha256_file, sha256_tree
from edgediff.models.types import Model

SHIPPED = "guided"
RECORD_FILE = "guidance.json"  # what the distillation wrote beside the student's config.json
WEIGHTS_FILE = "diffusion_pytorch_model.safetensors"


@dataclass(frozen=True)
class GuidedStudent:
    """A student folder's facts: the guidance it bakes in, its class, and the teacher it came from."""

    folder: Path
    guidance_scale: float
    class_name: str
    teacher_sha256: str | None

    def to_json(self) -> dict[str, Any]:
        return asdict(self) | {"folder": str(self.folder), "sha256": student_sha256(self.folder)}


def student_sha256(folder: Path) -> str:
    """The student folder's ``sha256_tree``, hashed once per build although both the model's source hash and
    the manifest's record name it; keyed on each file's size and mtime, so an edited folder hashes anew."""
    files = sorted(p for p in folder.rglob("*") if p.is_file())
    stamp = tuple((p.relative_to(folder).as_posix(), p.stat().st_size, p.stat().st_mtime_ns) for p in files)
    return _tree_hash(str(folder.resolve()), stamp)


@functools.lru_cache(maxsize=8)
def _tree_hash(folder: str, stamp: tuple[tuple[str, int, int], ...]) -> str:
    del stamp  # part of the cache key only
    return sha256_tree(Path(folder))


def read_student(folder: Path) -> GuidedStudent:
    """The student in ``folder`` (a diffusers denoiser folder plus ``guidance.json``)."""
    config_path, record_path = folder / "config.json", folder / RECORD_FILE
    if not config_path.is_file() or not (folder / WEIGHTS_FILE).is_file():
        raise EdgeDiffError(f"{folder} holds no denoiser (config.json + {WEIGHTS_FILE}); pass 'guided' or a folder "
                            "written by 'python3 -m tools.zoo.train guidance'")
    if not record_path.is_file():
        raise EdgeDiffError(f"{folder} has no {RECORD_FILE} saying which guidance scale it was distilled at; "
                            "distil it with 'python3 -m tools.zoo.train guidance'")
    try:
        config, record = json.loads(config_path.read_text()), json.loads(record_path.read_text())
        scale = float(record["guidance_scale"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise EdgeDiffError(f"cannot read the student in {folder}: {exc}; re-run its distillation") from exc
    if scale <= 1.0:
        raise EdgeDiffError(f"{folder}/{RECORD_FILE} records guidance {scale}, which is no guidance; distil at a scale "
                            "above 1")
    return GuidedStudent(folder, scale, str(config.get("_class_name", "")), record.get("teacher_sha256"))


def _teacher_folder(model: Model) -> Path | None:
    source = source_folder(model)
    if source is None:
        return None
    return next((source / key for key in DENOISER_KEYS if (source / key / "config.json").is_file()), None)


STUDENT_OPTION = StandInOption(
    flag="--denoiser", shipped_word=SHIPPED, what="guidance-distilled denoiser",
    holds="a guidance-distilled denoiser", train_stage="guidance")


def student_folder(model: Model, choice: str) -> Path:
    """``guided``: the student the model ships beside its denoiser; anything else: a folder path."""
    teacher = _teacher_folder(model)
    shipped = None if teacher is None else teacher.parent / GUIDED_DENOISER_FOLDERS[teacher.name]
    return STUDENT_OPTION.resolve(model, choice, shipped)


def check_student_fits(model: Model, student: GuidedStudent) -> None:
    """Refuse a student that is not this model's denoiser distilled."""
    teacher = _teacher_folder(model)
    if teacher is None:
        return  # config: architectures have no weights to compare against
    teacher_class = json.loads((teacher / "config.json").read_text()).get("_class_name", "")
    if student.class_name != teacher_class:
        raise EdgeDiffError(f"the student in {student.folder} is a {student.class_name or 'unknown class'}, but "
                            f"{model.source}'s denoiser is a {teacher_class}; distil one from this model")
    weights = teacher / WEIGHTS_FILE
    if not student.teacher_sha256 or not weights.is_file():
        return
    actual = sha256_file(weights)
    if actual != student.teacher_sha256:
        raise EdgeDiffError(f"the student in {student.folder} was distilled from other denoiser weights (sha256 "
                            f"{student.teacher_sha256[:12]}, this model's are {actual[:12]}); distil one from this model")


def with_guided_denoiser(model: Model, folder: Path) -> Model:
    """``model`` with ``denoiser`` built from the student in ``folder`` (checked first); sampling without
    guidance by default, since the student's prediction already carries it."""
    from edgediff.models.assemble import denoiser_wrapper

    student = read_student(folder)
    check_student_fits(model, student)
    load = class_loader("diffusers", student.class_name, folder, trust_pickle=False)

    def build() -> Any:
        return denoiser_wrapper(model.family, load(), model.geometry, model.num_classes)

    factories = dict(model.component_factories) | {"denoiser": build}
    source_hash = hashlib.sha256(f"{model.source_hash}:guided:{student_sha256(folder)}".encode()).hexdigest()
    return replace(model, component_factories=factories, source_hash=source_hash,
                   defaults=replace(model.defaults, guidance_scale=1.0))


def guided_settings(folder: Path, requested_scale: float | None) -> dict[str, Any]:
    """What a build with this student records (``pipeline.guidance_distilled``); refuses a ``--guidance-scale``
    other than the one distilled in, which the student cannot honour."""
    student = read_student(folder)
    if requested_scale is not None and requested_scale not in (1.0, student.guidance_scale):
        raise EdgeDiffError(f"the student in {folder} has guidance {student.guidance_scale:g} distilled in; drop "
                            f"--guidance-scale {requested_scale:g} or build from the teacher without --denoiser")
    return student.to_json()
