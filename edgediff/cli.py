"""``edgediff`` command line: a thin layer over the Python API.

User errors (``EdgeDiffError``) print one ``error: …`` line and exit 2; ``--debug`` shows the
traceback. Heavy packages (torch, engines) are imported inside commands, so ``edgediff targets``
and ``--help`` stay instant.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import warnings
from pathlib import Path
from typing import Any

import click

from edgediff.errors import EdgeDiffError


class _Group(click.Group):
    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except EdgeDiffError as exc:
            if ctx.obj and ctx.obj.get("debug"):
                raise
            click.echo(f"error: {exc}", err=True)
            sys.exit(exc.exit_code)


def _quiet() -> None:
    """Tracing prints dozens of framework warnings per export that a user cannot act on."""
    warnings.filterwarnings("ignore")
    # read by diffusers/transformers at import time; keeps their advice out of --json output
    os.environ.setdefault("DIFFUSERS_VERBOSITY", "error")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    for name in ("torch", "torch.utils._pytree", "torchao", "onnxscript", "transformers", "diffusers", "executorch", "nncf"):
        logging.getLogger(name).setLevel(logging.ERROR)


@click.group(cls=_Group)
@click.option("--debug", is_flag=True, help="Show tracebacks and framework warnings.")
@click.version_option(package_name="edgediff")
@click.pass_context
def main(ctx: click.Context, debug: bool) -> None:
    """Compile diffusion models into fast, checked bundles for edge runtimes."""
    ctx.obj = {"debug": debug}
    if not debug:
        _quiet()


def _progress(message: str) -> None:
    click.echo(f"  {message}", err=True)


@main.command()
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list instead of a table.")
def targets(as_json: bool) -> None:
    """List device profiles and whether each can be built and run on this host."""
    from edgediff.targets import list_targets

    entries = list_targets()
    if as_json:
        click.echo(json.dumps([t.to_json() for t in entries], indent=1))
        return
    header = f"{'target':<18} {'format':<11} {'runtime':<12} {'precisions':<26} {'default':<8} available"
    click.echo(header)
    click.echo("-" * len(header))
    for t in entries:
        state = "yes" if t.available else f"no ({t.availability_reason()})"
        click.echo(f"{t.name:<18} {t.format:<11} {t.runtime:<12} {','.join(t.precisions):<26} {t.default_precision:<8} {state}")


def _split(value: str | None) -> tuple[str, ...] | None:
    return tuple(v.strip() for v in value.split(",") if v.strip()) if value else None


@main.command()
@click.argument("model", required=False)
@click.option("--target", "target_name", required=True, help="Device profile (see 'edgediff targets').")
@click.option("-o", "--output", type=click.Path(path_type=Path), required=True, help="Bundle directory to write.")
@click.option("--precision", help="Precision (default: the target's default).")
@click.option("--height", type=int, help="Image height (default: the model's).")
@click.option("--width", type=int, help="Image width (default: the model's).")
@click.option("--steps", type=int, help="Sampling steps recorded in the bundle.")
@click.option("--guidance-scale", type=float, help="Classifier-free guidance scale (>1 exports the denoiser at batch 2).")
@click.option("--scheduler", help="Sampler: euler, ddim or lcm (default: the model's).")
@click.option("--components", help="Comma-separated subset, e.g. denoiser,vae_decoder.")
@click.option("--recipe", "recipe_file", type=click.Path(path_type=Path), help="TOML recipe; flags override it.")
@click.option("--allow-mismatch", is_flag=True, default=None, help="Keep a bundle whose parity check fails (flagged).")
@click.option("--force", is_flag=True, help="Replace an existing output directory.")
@click.option("--trust-pickle", is_flag=True, help="Allow loading pickled (.bin/.ckpt) weights.")
@click.option("--calibration-samples", type=int, help="Denoiser inputs (across all timesteps) static int8 calibrates on.")
@click.option("--max-quality-drop", type=float,
              help="Quantized: most zoo adherence lost vs fp32, as a fraction (0.01 = 1 point); keeps sensitive layers "
                   "in float until met, else fails naming them.")
@click.option("--min-psnr", type=float, help="Quantized: least PSNR (dB) of images vs the fp32 teacher; as above.")
@click.option("--quality-prompts", type=int, help="Prompts the quality target and report are measured on [32].")
@click.option("--keep-float", multiple=True, help="Quantized: torch module (e.g. model.conv_in) to keep in float; repeatable.")
@click.option("--no-quality-report", is_flag=True, help="Skip the quantized bundle's quality/size/speed report.")
@click.option("--cache-interval", type=click.IntRange(min=1),
              help="UNets and PixArt transformers: run the full denoiser every N steps and a shallow one reusing its "
                   "deep features in between (DeepCache; Δ-cache for transformers); 1 or unset: every step full.")
@click.option("--decoder", help="'tiny': the model's shipped distilled VAE decoder (zoo models ship one), or a folder "
                                "holding one (config.json + model.safetensors); measured against the source decoder.")
@click.option("--denoiser", help="'guided': the model's shipped guidance-distilled denoiser (zoo models ship one), or "
                                 "a folder holding one; one denoiser pass per step instead of two, measured against "
                                 "the source run with guidance.")
def export(model: str | None, target_name: str, output: Path, recipe_file: Path | None, components: str | None,
           force: bool, trust_pickle: bool, calibration_samples: int | None, max_quality_drop: float | None,
           min_psnr: float | None, quality_prompts: int | None, keep_float: tuple[str, ...], no_quality_report: bool,
           cache_interval: int | None, decoder: str | None, denoiser: str | None, **overrides: Any) -> None:
    """Export MODEL (diffusers folder, zoo:NAME or config:NAME; default: the shipped zoo model) for a target."""
    from edgediff.api import export_bundle

    options = {"calibration_samples": calibration_samples, "max_quality_drop": max_quality_drop, "min_psnr": min_psnr,
               "quality_prompts": quality_prompts, "keep_float": keep_float,
               "quality_report": False if no_quality_report else None, "cache_interval": cache_interval,
               "decoder": decoder, "denoiser": denoiser}
    bundle = export_bundle(model, target_name, output, recipe_file=recipe_file, components=_split(components),
                           force=force, trust_pickle=trust_pickle, progress=_progress, options=options, **overrides)
    for name, c in bundle.components.items():
        p = c["parity"]
        click.echo(f"{name:<16} {c['entry']:<28} max_abs_err={p['max_abs_err']:.2e} rel_l2={p['rel_l2_err']:.2e} "
                   f"{'ok' if p['passed'] else 'MISMATCH'}")
    quality = bundle.manifest.get("quality")
    if quality:
        click.echo(_describe_quality(quality))
    click.echo(f"wrote {output}")


@main.command()
@click.argument("bundle", type=click.Path(path_type=Path))
@click.option("--prompt", default="", help="Text prompt.")
@click.option("--negative-prompt", default="", help="Negative prompt (used with guidance > 1).")
@click.option("--class-label", type=int, help="Class label, for class-conditional models (DiT).")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--steps", type=int, help="Override the bundle's step count.")
@click.option("--guidance-scale", type=float, help="Override the bundle's guidance scale.")
@click.option("--cache-interval", type=click.IntRange(min=1),
              help="Cached bundles: override the plan's interval (1: every step on the full denoiser).")
@click.option("-o", "--output", type=click.Path(path_type=Path), default=Path("out.png"), show_default=True)
def run(bundle: Path, output: Path, **kwargs: Any) -> None:
    """Generate an image from a bundle, through its runtime (no torch)."""
    from edgediff.api import generate_png

    timings = generate_png(bundle, output, notify=lambda note: click.echo(f"note: {note}", err=True), **kwargs)
    click.echo(f"wrote {output} ({', '.join(f'{k} {v:.0f}' for k, v in timings.items())})")


@main.command()
@click.argument("bundle", type=click.Path(path_type=Path))
@click.option("--iters", type=int, default=20, show_default=True, help="Timed runs per component.")
@click.option("--warmup", type=int, default=3, show_default=True)
@click.option("--e2e-iters", type=int, help="Timed end-to-end runs (default: --iters).")
@click.option("--threads", type=int, help="Engine threads (default: all cores).")
@click.option("--prompt", default="a red circle", show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def profile(bundle: Path, iters: int, warmup: int, e2e_iters: int | None, threads: int | None, prompt: str,
            as_json: bool) -> None:
    """Time each component and the whole pipeline: p50/p90/p99, load time, peak RSS."""
    from edgediff.bundle import open_bundle
    from edgediff.profile import ProfileSettings, profile_bundle, to_markdown

    opened = open_bundle(bundle)
    settings = ProfileSettings(iters=iters, warmup=warmup, end_to_end_iters=e2e_iters, threads=threads, prompt=prompt)
    total = iters * len(opened.components) + (e2e_iters or iters)
    with click.progressbar(length=total, label="profiling", file=sys.stderr) as bar:
        result = profile_bundle(bundle, settings, tick=lambda: bar.update(1))
    click.echo(json.dumps(result, indent=1) if as_json else to_markdown(result))


@main.command()
@click.argument("bundle", type=click.Path(path_type=Path))
def validate(bundle: Path) -> None:
    """Re-check a bundle's file hashes and re-run its parity samples on the runtime."""
    from edgediff.bundle.validate import validate_bundle

    report = validate_bundle(bundle)
    for name, r in report["components"].items():
        click.echo(f"{name:<16} max_abs_err={r['max_abs_err']:.2e} rel_l2={r['rel_l2_err']:.2e} "
                   f"{'ok' if r['passed'] else 'MISMATCH (flagged at build)'}")
    click.echo(f"{bundle}: hashes ok, parity ok")


@main.command(name="eval")
@click.argument("model", required=False)
@click.option("--prompts", "n_prompts", type=int, help="Use the first N prompts of the set (default: all).")
@click.option("--prompt-set", default="v1", show_default=True, help="Versioned prompt set.")
@click.option("--teacher", help="Reference model or bundle: adds PSNR/SSIM of MODEL's images against its images.")
@click.option("--seed", type=int, default=0, show_default=True, help="Image i uses seed + i.")
@click.option("--steps", type=int, help="Override the sampling steps.")
@click.option("--guidance-scale", type=float, help="Override the guidance scale.")
@click.option("--trust-pickle", is_flag=True, help="Allow loading pickled weights.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def eval_command(model: str | None, n_prompts: int | None, prompt_set: str, teacher: str | None, seed: int,
                 steps: int | None, guidance_scale: float | None, trust_pickle: bool, as_json: bool) -> None:
    """Measure generation quality of MODEL (model reference or bundle; default: the shipped zoo model)."""
    from edgediff.api import evaluate_ref

    result = evaluate_ref(model, prompts=n_prompts, prompt_set=prompt_set, teacher=teacher, seed=seed, steps=steps,
                          guidance_scale=guidance_scale, trust_pickle=trust_pickle)
    if as_json:
        click.echo(json.dumps(result, indent=1))
        return
    click.echo(f"adherence {result['adherence']:.3f} (single {result['adherence_single']:.3f}, "
               f"two {result['adherence_two']:.3f}) on {result['prompts']} prompts")
    click.echo(f"FD {result['fd']:.2f} (real-vs-real floor {result['fd_floor']:.2f})")
    if teacher:
        click.echo(f"vs teacher: PSNR {result['psnr']:.2f} dB, SSIM {result['ssim']:.4f}")
    for name, value in result["adherence_by_attribute"].items():
        click.echo(f"  {name:<12} {value:.3f}")
    facts = result.get("bundle")
    if facts:
        click.echo(f"bundle: {facts['target']} {facts['precision']}, denoiser {facts['denoiser_bytes'] / 2**20:.1f} MiB, "
                   f"{facts['denoiser_step_ms']:.1f} ms/step, {facts['end_to_end_ms']:.0f} ms/image (median)")
        report = facts["build_report"]
        if report:
            click.echo("build report, " + _describe_quality(report))


def _describe_quality(report: dict[str, Any]) -> str:
    """One line from a manifest's ``quality`` report: a quantized bundle's (vs fp32), a cached, distilled-decoder
    or guidance-distilled one's (vs the source's graphs)."""
    images, speed = report["images"], report["speed"]
    adherence = f", adherence drop {images['adherence_drop'] * 100:+.1f} pts" if "adherence_drop" in images else ""
    smaller = f"; {report['size']['compression']:.1f}x smaller" if "size" in report else ""
    against = report.get("against_short", "every step full" if "cache" in report else "fp32")
    line = f"quality vs {against}: PSNR {images['psnr']:.1f} dB{adherence}{smaller}"
    if "speedup" in speed:
        line += f"; {speed['speedup']:.2f}x {speed.get('speedup_of', 'fp32 speed per step')}"
    if "decoder" in report:
        d = report["decoder"]
        line += f"; decoder {d['gflop']:.2f} GFLOP (source {d['teacher_gflop']:.2f}), {speed['decode_ms']:.1f} ms"
    if "guided" in report:
        line += f"; guidance {report['guided']['guidance_scale']:g} distilled in (one denoiser pass per step)"
    return line

if __name__ == "__main__":
    main()
