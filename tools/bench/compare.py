"""PyTorch eager, the Optimum peers and edgediff bundles timed side by side in one run, with quality.

    python -m tools.bench compare --model zoo:shapes-unet --steps 1 4 --rounds 5
    python -m tools.bench compare --model config:sd-turbo --size 256 --quality-prompts 0 --restart-engines

Every engine is a worker process speaking the JSON lines of ``peers/optimum_worker.py`` (the
peers in their own venvs, ``workers/eager_worker.py`` and ``workers/edgediff_worker.py`` in ours).
All are started first (exports are cached under ``--work``; with ``--restart-engines`` each is then closed
and restarted warm for every turn, so one model at a time is in memory), then the CPU's matmul peak is measured,
then ``--rounds`` rounds run: in each, every engine in turn (the order rotates by one per round)
runs ``step`` ``--warmup-steps`` times untimed and ``--step-repeats`` times timed, and ``generate`` once per
``--steps`` count. Reported per
engine: medians, and speedups as the median over rounds of the per-round ratio, so load that
drifts during the run hits both sides of a ratio alike. Quality (zoo models): each engine generates
``--quality-prompts`` images at the model's default steps (``--quality-steps``) after the timed rounds,
scored by the evaluator. Every engine starts each image from the same initial noise (``initial_latents``), so the
fp32 engines make the same images and a gap in adherence is the engine's. The scored prompts start
past the first ``--search-prompts``, which an edgediff bundle built with ``--max-quality-drop``
searched its float layers on: the score is held out from the search.

Workers get ``OMP_WAIT_POLICY=PASSIVE`` unless ``--omp-wait-policy`` says otherwise: on shared
cores OpenMP's spin-waiting makes 2-thread torch up to 40x slower (a shapes-unet step measured
3.3 s instead of 70 ms at load average 4 on 2 cores), which would time the scheduler, not the engine.

Writes ``compare_<model>_<H>x<W>.{json,md,svg}`` under ``--out`` and regenerates
``docs/benchmarks.md`` from every compare JSON there (``python -m tools.bench docs`` does only that).
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from tools.bench.quantize import builds_precision, quality_targets, split_precision
from tools.bench.worker_process import REPO, EngineSpec, EngineTurns

PEER_WORKER = REPO / "tools" / "bench" / "peers" / "optimum_worker.py"
BASELINE = "pytorch-eager-fp32"
# Peer venv name -> worker backend and the precisions it runs (see optimum_worker.py for what each means).
PEERS = {"optimum-intel": ("openvino", ("fp32", "bf16", "int8", "int8-hybrid")),
         "optimum-onnxruntime": ("onnxruntime", ("fp32", "int8"))}
TARGETS = ("x86-cpu", "intel-cpu", "arm64-cpu")
# int8 is static W8A8; int8w is weight-only, the like-for-like match for the peers' default "int8";
# int8-hybrid (ONNX and OpenVINO targets) matches optimum-intel's int8-hybrid: W8A8 convolutions,
# weight-only MatMuls; int8-conv (OpenVINO) is int8 with Linear layers as 1x1 convolutions;
# bf16 (intel-cpu only) meets optimum-intel's bf16, OpenVINO's own default on CPUs with bf16 units
EDGEDIFF_PRECISIONS = ("fp32", "bf16", "int8", "int8w", "int8-hybrid", "int8-conv")
FLOAT_VARIANT_PRECISIONS = ("fp32", "bf16")  # the precisions built again with DeepCache / the distilled decoder
TIMING_PROMPT = "a red circle above a blue square"  # zoo grammar; any text serves random-weight models


# --- statistics (pure; tested) -------------------------------------------------------------------------------


def median_ratio(base: list[float | None], other: list[float | None]) -> float | None:
    """Median over rounds of ``base[r] / other[r]`` (a speedup: above 1, ``other`` is faster); None if no round has both."""
    ratios = [b / o for b, o in zip(base, other, strict=True) if b and o]
    return statistics.median(ratios) if ratios else None


def rotated(names: list[str], round_index: int) -> list[str]:
    """Round ``r`` starts with engine ``r mod n``: each engine runs first, and after each other, equally often."""
    if not names:
        return []
    k = round_index % len(names)
    return names[k:] + names[:k]


PRECISION_FAMILIES = ("fp32", "fp16", "bf16", "int8", "int4")


def precision_family(engine: str) -> str | None:
    """The precision an engine computes at, from its name: ``edgediff-intel-cpu-int8-conv`` -> ``int8``.

    Variants of one precision (static, weight-only, hybrid, the linear-conv form) share a family: a user
    comparing tools at int8 takes each tool's own int8 recipe, not the same one.
    """
    for token in engine.split("-"):
        family = next((f for f in PRECISION_FAMILIES if token.startswith(f)), None)
        if family:
            return family
    return None


def summarize(rounds: dict[str, list[dict[str, Any]]], kinds: dict[str, str], step_counts: list[int],
              flops: dict[str, float], peak_gflops: float | None) -> tuple[dict[str, dict[str, Any]], dict[str, Any]]:
    """Per-engine medians and ratios from raw rounds.

    ``rounds[name][r]`` is ``{"step_ms": [k samples], "e2e_ms": {"1": ms, "4": ms}}`` or None for a
    round the engine missed. Returns the per-engine results and the fastest peer per metric
    (by p50; the ratios to it are still taken per round). Each engine also gets its ratio to the
    fastest peer of its own precision family (``speedup_vs_same_precision_peer``, with that peer's name).
    """
    def per_round(name: str, metric: str) -> list[float | None]:
        out: list[float | None] = []
        for r in rounds[name]:
            if r is None:
                out.append(None)
            elif metric == "step":
                out.append(statistics.median(r["step_ms"]) if r["step_ms"] else None)
            else:
                out.append(r["e2e_ms"].get(metric))
        return out

    metrics = ["step", *[str(n) for n in step_counts]]
    p50: dict[str, dict[str, float | None]] = {}
    for name in rounds:
        values: dict[str, float | None] = {}
        steps = [s for r in rounds[name] if r for s in r["step_ms"]]
        values["step"] = statistics.median(steps) if steps else None
        for m in metrics[1:]:
            got = [v for v in per_round(name, m) if v]
            values[m] = statistics.median(got) if got else None
        p50[name] = values
    def fastest_peer(m: str, family: str | None = None) -> str | None:
        peers = [(p50[n][m], n) for n in rounds
                 if kinds[n] == "peer" and p50[n][m] and (family is None or precision_family(n) == family)]
        return min(peers)[1] if peers else None

    fastest = {m: fastest_peer(m) for m in metrics}

    results: dict[str, dict[str, Any]] = {}
    for name in rounds:
        family = precision_family(name)
        res: dict[str, Any] = {
            "p50_step_ms": p50[name]["step"],
            "p50_e2e_ms": {m: p50[name][m] for m in metrics[1:]},
            "step_samples": sum(len(r["step_ms"]) for r in rounds[name] if r),
            "speedup_vs_eager": {}, "speedup_vs_fastest_peer": {}, "speedup_vs_same_precision_peer": {},
            "same_precision_peer": {},
        }
        for m in metrics:
            key = "step" if m == "step" else f"e2e_{m}"
            if BASELINE in rounds:
                res["speedup_vs_eager"][key] = median_ratio(per_round(BASELINE, m), per_round(name, m))
            if fastest[m]:
                res["speedup_vs_fastest_peer"][key] = median_ratio(per_round(fastest[m], m), per_round(name, m))
            same = fastest_peer(m, family) if family else None
            if same:
                res["same_precision_peer"][key] = same
                res["speedup_vs_same_precision_peer"][key] = median_ratio(per_round(same, m), per_round(name, m))
        if name in flops and res["p50_step_ms"]:
            res["gflop_per_step"] = flops[name] / 1e9
            res["gflops_per_s"] = flops[name] / 1e9 / (res["p50_step_ms"] / 1e3)
            res["share_of_measured_peak"] = res["gflops_per_s"] / peak_gflops if peak_gflops else None
        results[name] = res
    return results, {m if m == "step" else f"e2e_{m}": n for m, n in fastest.items()}


# --- engines -------------------------------------------------------------------------------------------------


def _slug(model: str) -> str:
    return model.replace(":", "_").replace("/", "_")


def model_folder(model: str, work: Path) -> Path:
    """The diffusers folder the peers and the eager baseline load: the zoo's, made loadable, or a random one."""
    from edgediff.models.random_pipeline import prepare_peer_folder, write_random_pipeline

    if model.startswith("zoo:"):
        from edgediff.zoo.paths import zoo_path

        return prepare_peer_folder(zoo_path(model), work / "pipelines" / _slug(model))
    if model.startswith("config:"):
        return write_random_pipeline(model, work / "pipelines" / _slug(model))  # written once, then reused
    return Path(model).expanduser()


def bundle_folder_name(model: str, target: str, precision: str, height: int, width: int,
                       options: dict[str, Any]) -> str:
    """One folder per cell and per option that changes the bundle (quality target, cache plan, decoder)."""
    drop, interval = options.get("max_quality_drop"), options.get("cache_interval")
    return (f"{_slug(model)}-{height}x{width}-{target}-{precision}" + ("" if drop is None else f"-drop{drop}")
            + ("" if interval is None else f"-cache{interval}") + ("-tinyvae" if options.get("decoder") == "tiny" else "")
            + ("-guided" if options.get("denoiser") == "guided" else ""))


def bundle_dir(model: str, target: str, precision: str, height: int, width: int, work: Path,
               options: dict[str, Any]) -> Path:
    """A bundle for this cell, exported on first use and reused while its manifest matches.

    ``precision`` may name a scheme variant (``int8-hybrid``), which names the folder too.
    ``options`` are the build's (calibration samples, quality target); a quality target names the
    folder, so a bundle searched for one target is never reused for another.
    """
    from edgediff.api import export_bundle

    out = work / "bundles" / bundle_folder_name(model, target, precision, height, width, options)
    if (out / "manifest.json").is_file():
        from edgediff.build import model_for_recipe
        from edgediff.models import load_model
        from edgediff.recipe import Recipe

        manifest = json.loads((out / "manifest.json").read_text())
        provenance = manifest["provenance"]
        found = (provenance["source"], provenance["source_hash"], manifest["pipeline"]["height"],
                 manifest["pipeline"]["width"])
        # the source hash covers a distilled decoder's weights too: a retrained one means a new bundle
        expected_hash = model_for_recipe(load_model(model), Recipe(options=options)).source_hash
        if found == (model, expected_hash, height, width):
            return out
    print(f"  exporting {out.name}", file=sys.stderr, flush=True)
    base, scheme = split_precision(precision)  # int8-hybrid: int8 with that scheme variant
    export_bundle(model, target, out, precision=base, height=height, width=width, force=True,
                  options={"quality_report": False, **options} | ({"scheme": scheme} if scheme else {}))
    return out


def plan_engines(args: argparse.Namespace, folder_fn: Any, geometry: dict[str, Any]) -> list[EngineSpec]:
    """Every engine the run can time, filtered by ``--engines`` patterns; commands are built lazily."""
    from edgediff.targets import get_target

    threads = str(args.threads)
    size = ["--height", str(geometry["height"]), "--width", str(geometry["width"])]
    guidance = ["--guidance-scale", str(geometry["guidance_scale"])]
    specs: list[EngineSpec] = []

    def eager() -> dict[str, Any]:
        spec_by_name[BASELINE].command = [sys.executable, "-m", "tools.bench.workers.eager_worker", "--model-dir",
                                          str(folder_fn()), *size, *guidance, "--threads", threads]
        return {}

    specs.append(EngineSpec(BASELINE, "eager", prepare=eager))
    for venv, (backend, precisions) in PEERS.items():
        for precision in precisions:
            name = f"optimum-{backend}-{precision}"

            def peer(name: str = name, venv: str = venv, backend: str = backend, precision: str = precision) -> dict:
                from tools.bench.peers.venvs import ensure_peer_env

                python = ensure_peer_env(venv)
                spec_by_name[name].command = [
                    str(python), str(PEER_WORKER), "--backend", backend, "--model-dir", str(folder_fn()),
                    "--cache-dir", str(args.work / "peer-exports"), "--precision", precision, *size, *guidance,
                    "--threads", threads]
                return {}

            specs.append(EngineSpec(name, "peer", prepare=peer))
    # fp32 bundles with their denoiser split for caching (edgediff.cache) and/or the model's distilled VAE
    # decoder (edgediff.distill): less work per image, same runtime
    float_variants = [{}] + [{"cache_interval": n} for n in args.cache_interval]
    # each float precision (bf16 only where the target builds it: intel-cpu) with each cache and decoder
    variants = [(p, {}) for p in EDGEDIFF_PRECISIONS] + [(p, v) for p in FLOAT_VARIANT_PRECISIONS
                                                        for v in float_variants[1:]]
    if args.tiny_decoder:
        variants += [(p, v | {"decoder": "tiny"}) for p in FLOAT_VARIANT_PRECISIONS for v in float_variants]
    if args.guided:  # the model's guidance-distilled denoiser: one pass per step, with each variant above
        variants += [(p, v | {"denoiser": "guided"}) for p, v in variants if p in FLOAT_VARIANT_PRECISIONS]
    for target in TARGETS:
        for precision, extra in variants:
            if not builds_precision(get_target(target), precision):
                continue
            name = (f"edgediff-{target}-{precision}" + (f"-cache{extra['cache_interval']}" if "cache_interval" in extra
                                                        else "") + ("-tinyvae" if "decoder" in extra else "")
                    + ("-guided" if "denoiser" in extra else ""))

            def edge(name: str = name, target: str = target, precision: str = precision,
                     extra: dict[str, Any] = extra) -> dict:
                start = time.perf_counter()
                options: dict[str, Any] = ({} if args.calibration_samples is None
                                           else {"calibration_samples": args.calibration_samples}) | extra
                if precision in args.max_quality_drop:
                    options |= {"max_quality_drop": args.max_quality_drop[precision],
                                "quality_prompts": args.search_prompts}
                out = bundle_dir(args.model, target, precision, geometry["height"], geometry["width"], args.work,
                                 options)
                spec_by_name[name].command = [sys.executable, "-m", "tools.bench.workers.edgediff_worker", "--bundle",
                                              str(out), "--threads", threads]
                return {"bundle_export_s": round(time.perf_counter() - start, 1)}

            specs.append(EngineSpec(name, "edgediff", prepare=edge))
    spec_by_name = {s.name: s for s in specs}
    patterns = args.engines or ["*"]
    return [s for s in specs if any(fnmatch.fnmatchcase(s.name, p) for p in patterns)]


def worker_env(policy: str) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    env.pop("OMP_WAIT_POLICY", None)
    if policy != "default":
        env["OMP_WAIT_POLICY"] = policy.upper()
    return env


def count_flops(model: str, height: int, width: int, batch: int) -> float:
    """FLOPs of one denoiser call at ``batch``, counted once by torch's flop counter (matmuls, convs, attention)."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from edgediff.models import load_model

    module = load_model(model).build_component("denoiser")
    inputs = module.example_inputs(height, width, batch)
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        module(*inputs)
    return float(counter.get_total_flops())


def _loadavg() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


# --- the run -------------------------------------------------------------------------------------------------


def _start(specs: list[EngineSpec], args: argparse.Namespace, env: dict[str, str],
           skipped: dict[str, str]) -> EngineTurns:
    """Prepare and start each engine in turn (one export at a time); keep those whose ready line says so."""
    engines = EngineTurns(not args.restart_engines, args.work / "logs", env, args.ready_timeout)
    for spec in specs:
        print(f"starting {spec.name}", file=sys.stderr, flush=True)
        try:
            facts = spec.prepare() if spec.prepare else {}
        except Exception as exc:  # no venv, a failed bundle export: recorded, the run goes on
            skipped[spec.name] = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"[:300]
            continue
        why_not = engines.start(spec, facts)
        if why_not:
            skipped[spec.name] = why_not[:300]
    return engines


def _turn_answers(engines: EngineTurns, name: str, commands: list[dict[str, Any]], timeout: float,
                  settle: float = 0.0) -> list[dict[str, Any]]:
    """``name``'s answers to ``commands`` in one turn; an engine that fails to restart gives one error answer."""
    try:
        with engines.turn(name) as worker:
            time.sleep(settle)  # the previous engine's threads go idle first
            return [worker.ask(command, timeout) for command in commands]
    except RuntimeError as exc:
        return [{"error": str(exc)}]


def turn_commands(args: argparse.Namespace, round_index: int) -> list[dict[str, Any]]:
    """One engine's turn: ``--warmup-steps`` untimed steps, the timed steps, then one generation per step count.

    The untimed steps are there because a turn's first denoiser calls run slow on every engine alike (a
    restarted ONNX Runtime session measured 1.9-2.3 s on its second and third sd-turbo steps, 1.4-1.5 s
    after), and with a few repeats per turn those calls would time the warm-up, not the engine.
    """
    steps = [{"op": "step"}] * (args.warmup_steps + args.step_repeats)
    return steps + [{"op": "generate", "prompt": TIMING_PROMPT, "steps": n, "seed": round_index, "save": None}
                    for n in args.steps]


def timed_turn(args: argparse.Namespace, answers: list[dict[str, Any]]) -> dict[str, Any]:
    """The timed part of a turn's answers (``turn_commands``' order), the warm-up steps left out."""
    timed = answers[args.warmup_steps:]
    return {"step_ms": [a["ms"] for a in timed[:args.step_repeats]],
            "e2e_ms": {str(n): a["ms"] for n, a in zip(args.steps, timed[args.step_repeats:], strict=True)}}


def _timed_rounds(engines: EngineTurns, args: argparse.Namespace,
                  errors: dict[str, str]) -> dict[str, list[dict[str, Any] | None]]:
    names = list(engines.ready)
    rounds: dict[str, list[dict[str, Any] | None]] = {name: [] for name in names}
    for r in range(args.rounds):
        for name in rotated(names, r):
            if name in errors:
                rounds[name].append(None)
                continue
            answers = _turn_answers(engines, name, turn_commands(args, r), args.timeout, args.settle)
            failed = next((a["error"] for a in answers if "error" in a), None)
            if failed:
                errors[name] = f"round {r + 1}: {failed}"[:300]
                rounds[name].append(None)
                continue
            rounds[name].append(timed_turn(args, answers))
        print(f"round {r + 1}/{args.rounds}: " + ", ".join(
            f"{n} {statistics.median(rounds[n][-1]['step_ms']):.1f}" for n in names if rounds[n][-1]) + " ms/step",
            file=sys.stderr, flush=True)
    return rounds


def _quality(engines: EngineTurns, args: argparse.Namespace, steps: int,
             errors: dict[str, str]) -> dict[str, dict[str, Any]]:
    """Each engine's ``--quality-prompts`` images at the model's default steps, scored by the evaluator."""
    import numpy as np
    from PIL import Image

    from edgediff.eval import evaluate_images, load_prompt_set
    from edgediff.eval.evaluate import seeds_for

    offset = args.search_prompts  # held out: a quality-targeted bundle was searched on the prompts before it
    prompts = load_prompt_set("v1", offset + args.quality_prompts)[offset:]
    seeds = seeds_for(len(prompts), offset)
    scores: dict[str, dict[str, Any]] = {}
    for name in engines.ready:
        if name in errors:
            continue
        folder = args.work / "quality" / _slug(args.model) / name
        commands = [{"op": "generate", "prompt": p, "steps": steps, "seed": s, "save": str(folder / f"{i:03d}.png")}
                    for i, (p, s) in enumerate(zip(prompts, seeds, strict=True))]
        answers = _turn_answers(engines, name, commands, args.timeout)
        failed = next((a["error"] for a in answers if "error" in a), None)
        if failed:
            scores[name] = {"error": failed[:300]}
            continue
        images = np.stack([np.asarray(Image.open(folder / f"{i:03d}.png").convert("RGB")) for i in range(len(prompts))])
        result = evaluate_images(images, prompts, offset)
        scores[name] = {k: result[k] for k in ("adherence", "fd", "fd_floor", "prompts")}
        print(f"quality {name}: adherence {result['adherence']:.3f}, FD {result['fd']:.1f}", file=sys.stderr, flush=True)
    return scores


def run(args: argparse.Namespace) -> dict[str, Any]:
    from edgediff.models import load_model
    from edgediff.profile.host import host_info
    from tools.bench.peak import measure_matmul_peak, theoretical_fp32_peak

    loadavg = {"start": _loadavg()}
    model = load_model(args.model)
    height = width = args.size or model.defaults.height
    if not args.size:
        width = model.defaults.width
    guidance = model.defaults.guidance_scale
    geometry = {"height": height, "width": width, "guidance_scale": guidance}
    batch = 2 if guidance > 1.0 else 1
    del model

    folder: list[Path] = []

    def folder_fn() -> Path:
        if not folder:
            folder.append(model_folder(args.model, args.work))
        return folder[0]

    specs = plan_engines(args, folder_fn, geometry)
    kinds = {s.name: s.kind for s in specs}
    flops_by_batch = {batch: count_flops(args.model, height, width, batch)}
    skipped: dict[str, str] = {}
    errors: dict[str, str] = {}
    env = worker_env(args.omp_wait_policy)
    engines = _start(specs, args, env, skipped)
    try:
        loadavg["before_peak"] = _loadavg()
        peak = measure_matmul_peak(args.threads)
        engine_flops: dict[str, float] = {}
        for name, ready in engines.ready.items():
            shapes = ready.get("step_inputs", {})
            first = next((v for v in shapes.values() if v), [batch])
            b = int(first[0])
            if b not in flops_by_batch:
                flops_by_batch[b] = count_flops(args.model, height, width, b)
            engine_flops[name] = flops_by_batch[b]
            ready["denoiser_batch"] = b
        loadavg["before_rounds"] = _loadavg()
        started = time.perf_counter()
        rounds = _timed_rounds(engines, args, errors)
        timed_s = time.perf_counter() - started
        loadavg["after_rounds"] = _loadavg()
        quality: dict[str, dict[str, Any]] = {}
        quality_steps = args.quality_steps or load_model(args.model).defaults.steps
        if args.quality_prompts and args.model.startswith("zoo:"):
            quality = _quality(engines, args, quality_steps, errors)
        loadavg["end"] = _loadavg()
    finally:
        engines.close()

    results, fastest = summarize(rounds, kinds, args.steps, engine_flops, peak["measured_peak_gflops"])
    per_engine: dict[str, Any] = {}
    for name, ready in engines.ready.items():
        keep = ("settings", "versions", "load_s", "export_s", "bundle_export_s", "step_inputs", "denoiser_batch")
        per_engine[name] = {"kind": kinds[name], **{k: ready[k] for k in keep if k in ready}, **results[name],
                            "rounds": rounds[name]}
        if name in errors:
            per_engine[name]["error"] = errors[name]
        if name in quality:
            per_engine[name]["quality"] = quality[name]
    return {
        "benchmark": "compare",
        "command": "python -m tools.bench compare " + " ".join(sys.argv[2:] if sys.argv[1:2] == ["compare"]
                                                               else sys.argv[1:]),
        "model": args.model, "height": height, "width": width, "guidance_scale": guidance, "denoiser_batch": batch,
        "steps": args.steps, "rounds": args.rounds, "step_repeats": args.step_repeats,
        "warmup_steps": args.warmup_steps, "threads": args.threads,
        "engines_resident": engines.resident, "omp_wait_policy": args.omp_wait_policy,
        "timing_prompt": TIMING_PROMPT, "timed_s": round(timed_s, 1),
        "quality": {"prompts": args.quality_prompts, "prompt_set": "v1", "first_prompt": args.search_prompts,
                    "steps": quality_steps, "seed": args.search_prompts,
                    "initial_noise": "numpy default_rng(seed), the same for every engine",
                    "edgediff_quality_targets": args.max_quality_drop} if quality else None,
        "baseline": BASELINE, "fastest_peer": fastest,
        "gflop_per_step_by_batch": {str(b): f / 1e9 for b, f in flops_by_batch.items()},
        "peak": peak, "theoretical_peak": theoretical_fp32_peak(args.threads),
        "loadavg": loadavg, "host": host_info(), "engines": per_engine, "skipped": skipped,
        **({"label": args.label} if args.label else {}), **({"note": args.note} if args.note else {}),
    }


def result_stem(model: str, height: int, width: int, label: str | None = None) -> str:
    """File stem of one run's results; a label keeps a focused rerun from overwriting the full table."""
    stem = f"compare_{_slug(model)}_{height}x{width}"
    return f"{stem}_{_slug(label)}" if label else stem


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m tools.bench compare", description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="zoo:shapes-unet", help="zoo:NAME, config:NAME or a diffusers folder")
    parser.add_argument("--size", type=int, help="height and width (default: the model's)")
    parser.add_argument("--steps", type=int, nargs="+", default=[1, 4], help="step counts timed end to end")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--step-repeats", type=int, default=5, help="denoiser steps per engine per round")
    parser.add_argument("--warmup-steps", type=int, default=2,
                        help="untimed denoiser steps at the start of every engine's turn")
    parser.add_argument("--threads", type=int, default=2, help="threads per engine")
    parser.add_argument("--engines", nargs="+", help="only engines matching these patterns (e.g. 'edgediff-*')")
    parser.add_argument("--quality-prompts", type=int, default=32, help="images per engine for quality; 0: none")
    parser.add_argument("--quality-steps", type=int,
                        help="steps of the quality images [the model's default]; a cached engine's quality holds "
                             "only at the step count it was measured at, so time that count too (--steps)")
    parser.add_argument("--calibration-samples", type=int,
                        help="edgediff int8 calibration samples (default: the scheme's, as a user's build)")
    parser.add_argument("--max-quality-drop", nargs="*", default=[], metavar="PRECISION=DROP",
                        help="build edgediff PRECISION with this adherence target (zoo models), e.g. int8=0.01: "
                             "the bundle keeps its most sensitive layers in float until it meets it")
    parser.add_argument("--tiny-decoder", action="store_true",
                        help="also time the float (and cached) bundles built with the model's distilled VAE decoder "
                             "(--decoder tiny): engines edgediff-TARGET-{fp32,bf16}[-cacheN]-tinyvae (bf16: intel-cpu)")
    parser.add_argument("--guided", action="store_true",
                        help="also time each float variant built with the model's guidance-distilled denoiser "
                             "(--denoiser guided; one denoiser pass per step instead of the guided pair): engines "
                             "edgediff-TARGET-{fp32,bf16}[-cacheN][-tinyvae]-guided")
    parser.add_argument("--cache-interval", type=int, nargs="*", default=[], metavar="N",
                        help="also time float edgediff bundles built with --cache-interval N (UNets, PixArt): "
                             "engines edgediff-TARGET-{fp32,bf16}-cacheN (bf16: intel-cpu)")
    parser.add_argument("--search-prompts", type=int, default=64,
                        help="prompts the quality search generates (past them, --quality-prompts scores)")
    parser.add_argument("--omp-wait-policy", default="passive", choices=("passive", "active", "default"))
    parser.add_argument("--restart-engines", action="store_true",
                        help="start each engine for its turn and close it after, so one model at a time is in "
                             "memory (SD-scale runs); turns still time warm engines")
    parser.add_argument("--settle", type=float, default=0.2, help="seconds of pause before each engine's turn")
    parser.add_argument("--timeout", type=float, default=600, help="seconds one command may take")
    parser.add_argument("--ready-timeout", type=float, default=3600, help="seconds an engine may take to start")
    parser.add_argument("--work", type=Path, default=Path("~/.cache/edgediff-bench"),
                        help="bundles, peer exports, model folders, logs and quality images")
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "benchmarks")
    parser.add_argument("--label", help="suffix of the result files (compare_MODEL_HxW_LABEL), so a focused run "
                                        "sits beside the full table instead of replacing it")
    parser.add_argument("--note", help="one line the docs page prints above this run's table (why it was run)")
    parser.add_argument("--docs", type=Path, default=REPO / "docs" / "benchmarks.md", help="the page regenerated")
    args = parser.parse_args(argv)
    args.work = args.work.expanduser()
    args.max_quality_drop = quality_targets(args.max_quality_drop)
    for name in ("rounds", "step_repeats", "threads"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    if args.warmup_steps < 0:
        parser.error("--warmup-steps must be 0 or more")
    if any(n < 2 for n in args.cache_interval):
        parser.error("--cache-interval values must be at least 2 (1 is the uncached fp32 engine)")
    return args


def main(argv: list[str] | None = None) -> int:
    from tools.bench import compare_report

    args = parse_args(argv)
    result = run(args)
    stem = args.out / result_stem(args.model, result["height"], result["width"], args.label)
    compare_report.write(result, stem)
    compare_report.write_docs(args.out, args.docs)
    print(compare_report.markdown(result))
    return 0
