"""``torch_pipeline(model)``: the same generation loop as a bundle's, over the unexported PyTorch modules."""

from __future__ import annotations

from typing import Any

from edgediff.models.pipeline_spec import pipeline_spec, sampling_settings
from edgediff.models.types import Model
from edgediff.recipe import Recipe
from edgediff.runtimes.pipeline import SessionPipeline
from edgediff.runtimes.tokenizer import PromptTokenizer
from edgediff.runtimes.torch_session import TorchSession


def torch_pipeline(model: Model, recipe: Recipe | None = None, sessions: dict[str, Any] | None = None,
                   device: str = "cpu") -> SessionPipeline:
    """Sessions over each component's export wrapper (fp32), sampling as a bundle built with ``recipe`` would.

    ``sessions`` supplies some components ready-made (an exported denoiser, say); those are not built.
    ``device`` is where the built ones run (a GPU target's build runs its references on that GPU).
    """
    settings = sampling_settings(model, recipe or Recipe())
    spec = pipeline_spec(model, settings)
    sessions = dict(sessions or {})
    for name in model.component_names:
        if name in sessions:
            continue
        module = model.build_component(name)
        specs = module.input_specs(settings["height"], settings["width"], 1)
        sessions[name] = TorchSession(module, tuple(s.name for s in specs), module.output_names, device)
    tokenizer = None
    if spec["tokenizer"] is not None and model.tokenizer_json is not None:
        tok = spec["tokenizer"]
        tokenizer = PromptTokenizer.from_json(model.tokenizer_json, tok["max_length"], tok["pad_id"])
    return SessionPipeline(spec, sessions, tokenizer)
