"""The Python API behind the CLI: each function does what one command does, with the same checks."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from edgediff.bundle.manifest import Bundle
from edgediff.recipe import Recipe, load_recipe


def export_bundle(
    model: str | None,
    target: str,
    output: Path,
    *,
    recipe_file: Path | None = None,
    components: tuple[str, ...] | None = None,
    force: bool = False,
    trust_pickle: bool = False,
    progress: Any = None,
    options: dict[str, Any] | None = None,
    **overrides: Any,
) -> Bundle:
    """Load ``model``, build a bundle for ``target`` at ``output``. Cheap checks run before loading.

    ``options`` (quality target, calibration, layers kept in float) are merged over the recipe file's.
    """
    from edgediff.build import build
    from edgediff.bundle.atomic import check_output_free
    from edgediff.models import load_model
    from edgediff.targets import get_target

    target_obj = get_target(target)
    recipe = load_recipe(recipe_file) if recipe_file else Recipe()
    recipe = recipe.merged(components=components, **overrides)
    set_options = {k: v for k, v in (options or {}).items() if v is not None and v != ()}
    if set_options:
        recipe = recipe.merged(options={**recipe.options, **set_options})
    recipe.validate()
    if recipe.precision:
        target_obj.check_precision(recipe.precision)
    check_output_free(output, force)
    loaded = load_model(model, trust_pickle=trust_pickle)
    return build(loaded, target_obj, recipe, output, force=force, progress=progress or (lambda _: None))


def generate_png(
    bundle: Path,
    output: Path,
    *,
    prompt: str = "",
    negative_prompt: str = "",
    class_label: int | None = None,
    seed: int = 0,
    steps: int | None = None,
    guidance_scale: float | None = None,
    cache_interval: int | None = None,
    notify: Any = None,
) -> dict[str, float]:
    """Run a bundle once and write a PNG atomically; returns the stage timings in ms.

    ``notify(text)`` hears, before the run, why a cached bundle's quality report does not cover ``steps``.
    """
    import os
    import tempfile

    from PIL import Image

    from edgediff.cache.plan import unmeasured_steps_note
    from edgediff.runtimes.pipeline import BundlePipeline

    pipe = BundlePipeline(bundle)
    if notify is not None and cache_interval != 1 and (
            note := unmeasured_steps_note(pipe.bundle.manifest, steps)):
        notify(note)
    result = pipe(prompt, negative_prompt=negative_prompt, class_label=class_label, seed=seed, steps=steps,
                  guidance_scale=guidance_scale, cache_interval=cache_interval)
    output.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{output.name}.", suffix=".png", dir=output.parent)
    os.close(fd)
    try:
        Image.fromarray(result.to_uint8()).save(tmp, format="PNG")
        os.replace(tmp, output)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return result.timings_ms


def evaluate_ref(
    ref: str | None,
    *,
    prompts: int | None = None,
    prompt_set: str = "v1",
    teacher: str | None = None,
    seed: int = 0,
    steps: int | None = None,
    guidance_scale: float | None = None,
    trust_pickle: bool = False,
) -> dict[str, Any]:
    """``edgediff eval``: adherence/FD (and PSNR/SSIM vs ``teacher``) of a model or bundle on the prompt set."""
    from edgediff.eval import evaluate, load_prompt_set, seeds_for
    from edgediff.eval_runner import bundle_facts, generator_for, pipeline_for

    texts = load_prompt_set(prompt_set, prompts)
    pipe = pipeline_for(ref, trust_pickle=trust_pickle)
    timings: list[dict[str, float]] = []
    generate = generator_for(pipe, steps=steps, guidance_scale=guidance_scale, timings=timings)
    teacher_images = None
    if teacher is not None:
        teacher_generate = generator_for(pipeline_for(teacher, trust_pickle=trust_pickle), steps=steps,
                                         guidance_scale=guidance_scale)
        teacher_images = teacher_generate(texts, seeds_for(len(texts), seed))
    result = evaluate(generate, texts, seed, teacher_images)
    result |= {"model": ref, "teacher": teacher, "prompt_set": prompt_set}
    facts = bundle_facts(pipe, timings, steps)
    if facts is not None:
        result["bundle"] = facts
    return result
