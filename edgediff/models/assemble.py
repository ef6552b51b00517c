"""Shared step of every loader: torch modules + configs -> a ``Model`` with lazy wrapper factories."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from edgediff.errors import ModelLoadError
from edgediff.models.types import Geometry, Model, SamplingDefaults

# diffusers denoiser class -> family (which wrapper and which conditioning apply)
DENOISER_FAMILIES: dict[str, str] = {
    "UNet2DConditionModel": "unet",
    "PixArtTransformer2DModel": "pixart",
    "DiTTransformer2DModel": "dit",
}

FAMILY_DEFAULTS: dict[str, tuple[int, float]] = {  # family -> (steps, guidance) when the source says nothing
    "unet": (25, 7.5),
    "pixart": (20, 4.5),
    "dit": (25, 4.0),
}


def family_of(denoiser_class: str, denoiser_config: dict[str, Any]) -> str:
    if denoiser_class == "Transformer2DModel":  # older checkpoints saved DiT and PixArt under one class
        return "pixart" if denoiser_config.get("caption_channels") else "dit"
    try:
        return DENOISER_FAMILIES[denoiser_class]
    except KeyError:
        raise ModelLoadError(
            f"denoiser class {denoiser_class!r} is not supported yet; supported: {', '.join(DENOISER_FAMILIES)}"
        ) from None


def geometry_from_configs(
    vae_config: dict[str, Any], text_config: dict[str, Any] | None, text_max_length: int, denoiser_config: dict[str, Any]
) -> Geometry:
    hidden = 0
    if text_config is not None:
        hidden = int(text_config.get("hidden_size") or text_config.get("d_model") or 0)
    return Geometry(
        latent_channels=int(vae_config.get("latent_channels", 4)),
        vae_scale_factor=2 ** (len(vae_config.get("block_out_channels", [1, 1, 1, 1])) - 1),
        text_max_length=text_max_length,
        text_hidden_size=hidden,
        vae_scaling_factor=float(vae_config.get("scaling_factor", 0.18215)),
        vae_shift_factor=float(vae_config.get("shift_factor") or 0.0),
    )


def dit_num_classes(denoiser_config: dict[str, Any]) -> int:
    """How many class labels a DiT was trained on: its label embedding is sized by ``num_embeds_ada_norm``,
    plus one row for the null (unconditional) class that guidance feeds."""
    return int(denoiser_config.get("num_embeds_ada_norm") or 1000)


def denoiser_wrapper(family: str, module: Any, geometry: Geometry, num_classes: int = 0) -> Any:
    """The export wrapper (in eval mode) of a family's diffusers denoiser module: the teacher's, or a
    distilled stand-in of the same architecture."""
    from edgediff.models import wrappers

    if family == "dit":
        return wrappers.DiTDenoiser(module, geometry, num_classes).eval()
    return wrappers.DENOISER_WRAPPERS[family](module, geometry).eval()


def assemble(
    *,
    source: str,
    source_hash: str,
    denoiser_class: str,
    denoiser_config: dict[str, Any],
    vae_config: dict[str, Any],
    text_config: dict[str, Any] | None,
    text_max_length: int,
    scheduler_class: str,
    scheduler_config: dict[str, Any],
    tokenizer_json: str | None,
    pad_token_id: int,
    loaders: dict[str, Callable[[], Any]],
    defaults: dict[str, Any] | None,
) -> Model:
    """Build a ``Model``; ``loaders`` maps "text_encoder"/"denoiser"/"vae" to functions returning torch modules."""
    from edgediff.models import wrappers  # torch is imported only when a model is actually loaded

    family = family_of(denoiser_class, denoiser_config)
    conditioning = "class" if family == "dit" else "text"
    geometry = geometry_from_configs(vae_config, text_config, text_max_length, denoiser_config)
    num_classes = dit_num_classes(denoiser_config) if family == "dit" else 0

    factories: dict[str, Callable[[], Any]] = {}
    if conditioning == "text":
        if "text_encoder" not in loaders:
            raise ModelLoadError(f"{source}: a text-conditioned model needs a text_encoder component")
        vocab = int(text_config.get("vocab_size", 49408)) if text_config else 49408
        factories["text_encoder"] = lambda: wrappers.TextEncoderWrapper(loaders["text_encoder"](), geometry, vocab).eval()

    factories["denoiser"] = lambda: denoiser_wrapper(family, loaders["denoiser"](), geometry, num_classes)
    factories["vae_decoder"] = lambda: wrappers.VaeDecoderWrapper(loaders["vae"](), geometry).eval()

    steps, guidance = FAMILY_DEFAULTS[family]
    sample_size = int(denoiser_config.get("sample_size", 64))
    size = sample_size * geometry.vae_scale_factor
    d = defaults or {}
    sampling = SamplingDefaults(
        steps=int(d.get("steps", d.get("default_steps", steps))),
        guidance_scale=float(d.get("guidance_scale", d.get("default_guidance_scale", guidance))),
        height=int(d.get("height", size)),
        width=int(d.get("width", size)),
    )
    return Model(
        source=source,
        source_hash=source_hash,
        family=family,
        conditioning=conditioning,
        geometry=geometry,
        defaults=sampling,
        scheduler_class=scheduler_class,
        scheduler_config=dict(scheduler_config),
        tokenizer_json=tokenizer_json,
        pad_token_id=pad_token_id,
        component_factories=factories,
        num_classes=num_classes,
    )
