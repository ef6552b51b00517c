"""``config:NAME``: published architectures with random weights, for export and latency work at real scale.

The configs live in ``configs/NAME.json`` (copied from the published checkpoints' config files). Weights
are drawn from a fixed seed per component, so two builds of the same config are identical.
"""

from __future__ import annotations

import importlib
import json
from importlib import resources
from typing import Any

from edgediff.errors import ModelLoadError
from edgediff.models.assemble import assemble
from edgediff.models.hashing import sha256_text
from edgediff.models.tokenizer_files import pad_token_id, placeholder_word_tokenizer
from edgediff.models.types import Model

WEIGHT_SEED = 0


def config_names() -> list[str]:
    root = resources.files("edgediff.models") / "configs"
    return sorted(p.name.removesuffix(".json") for p in root.iterdir() if p.name.endswith(".json"))


def read_config(name: str) -> dict[str, Any]:
    path = resources.files("edgediff.models") / "configs" / f"{name}.json"
    if not path.is_file():
        raise ModelLoadError(f"unknown architecture config:{name}; known: {', '.join(config_names())}")
    return json.loads(path.read_text())


def _random_module(spec: dict[str, Any], seed: int) -> Any:
    import torch

    module = importlib.import_module(spec["library"])
    cls = getattr(module, spec["class"])
    torch.manual_seed(seed)
    if spec["library"] == "transformers":
        config_cls = getattr(module, spec["class"].replace("TextModel", "TextConfig").replace("EncoderModel", "Config"))
        return cls(config_cls(**spec["config"])).float().eval()
    return cls.from_config(spec["config"]).float().eval()


def load_config_model(name: str) -> Model:
    doc = read_config(name)
    components = doc["components"]
    loaders = {
        key: (lambda spec=spec, seed=WEIGHT_SEED + i: _random_module(spec, seed))
        for i, (key, spec) in enumerate(components.items())
    }
    text = components.get("text_encoder")
    tokenizer_json = placeholder_word_tokenizer(int(text["config"]["vocab_size"])) if text else None
    return assemble(
        source=f"config:{name}",
        source_hash=sha256_text(json.dumps(doc, sort_keys=True) + f"seed={WEIGHT_SEED}"),
        denoiser_class=components["denoiser"]["class"],
        denoiser_config=components["denoiser"]["config"],
        vae_config=components["vae"]["config"],
        text_config=text["config"] if text else None,
        text_max_length=int(doc.get("text_max_length", 0)),
        scheduler_class=doc["scheduler"]["class"],
        scheduler_config=doc["scheduler"]["config"],
        tokenizer_json=tokenizer_json,
        pad_token_id=pad_token_id(tokenizer_json, None) if tokenizer_json else 0,
        loaders=loaders,
        defaults=doc.get("defaults"),
    )
