"""Where a stand-in component comes from: the one a model ships beside its own, or a folder path.

``--decoder tiny|PATH`` and ``--denoiser guided|PATH`` name a distilled stand-in the same way: a
word for the one shipped in the model's diffusers folder, anything else a folder. One resolver keeps
their checks and their one-line errors alike.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from edgediff.errors import EdgeDiffError, ModelLoadError
from edgediff.models.types import Model


@dataclass(frozen=True)
class StandInOption:
    """How one CLI option names a stand-in, in the words its errors use."""

    flag: str  # "--decoder"
    shipped_word: str  # the value meaning "the model's shipped one": "tiny"
    what: str  # "tiny decoder (vae_decoder_tiny/)"
    holds: str  # what a folder passed instead must hold
    train_stage: str  # the `python3 -m tools.zoo.train` stage that distils one

    def resolve(self, model: Model, choice: str, shipped: Path | None) -> Path:
        """``choice`` as a folder: ``shipped`` for the shipped word, else the path, checked to exist."""
        if choice != self.shipped_word:
            folder = Path(choice)
            if not folder.is_dir():
                raise EdgeDiffError(f"{self.flag} {choice}: no such folder; pass '{self.shipped_word}' or a folder "
                                    f"holding {self.holds}")
            return folder
        if shipped is None or not shipped.is_dir():
            raise EdgeDiffError(f"{model.source} ships no {self.what}; distil one with 'python3 -m tools.zoo.train "
                                f"{self.train_stage}' and pass {self.flag} FOLDER, or drop {self.flag}")
        return shipped


def source_folder(model: Model) -> Path | None:
    """The diffusers folder a model was loaded from (None for ``config:`` architectures)."""
    if model.source.startswith("config:"):
        return None
    from edgediff.zoo.paths import resolve_model_dir

    try:
        return resolve_model_dir(model.source)
    except ModelLoadError:
        return None
