"""What ``tools.bench compare`` writes: its JSON, a markdown table, an SVG bar chart, and docs/benchmarks.md.

The SVG is written by hand (a few ``<rect>`` and ``<text>`` elements): the chart needs nothing more,
and the project adds no plotting dependency for it.
"""

from __future__ import annotations

import json
from html import escape
from pathlib import Path
from typing import Any

from tools.bench.results import host_line, write_result

KIND_COLOURS = {"eager": "#7f7f7f", "peer": "#1f77b4", "edgediff": "#d62728"}
KIND_WORDS = {"eager": "PyTorch eager (baseline)", "peer": "Optimum peer", "edgediff": "edgediff bundle"}


def _num(value: float | None, fmt: str = ".1f", suffix: str = "") -> str:
    return "–" if value is None else f"{value:{fmt}}{suffix}"


def _title(result: dict[str, Any]) -> str:
    return (f"`{result['model']}` {result['height']}x{result['width']}, guidance {result['guidance_scale']:g} "
            f"(denoiser batch {result['denoiser_batch']}), {result['threads']} threads per engine")


def _same_precision_ratios(result: dict[str, Any]) -> dict[str, dict[str, float | None]]:
    """Ratios to the fastest peer of each engine's precision, from the run's raw rounds.

    Runs written before ``summarize`` reported them still hold every round, so their tables get the
    column from the same data and the same per-round medians.
    """
    from tools.bench.compare import summarize

    engines = {n: e for n, e in result["engines"].items() if e.get("rounds")}
    if not engines or all("speedup_vs_same_precision_peer" in e for e in engines.values()):
        return {}
    rounds = {n: e["rounds"] for n, e in engines.items()}
    kinds = {n: e["kind"] for n, e in engines.items()}
    results, _ = summarize(rounds, kinds, result["steps"], {}, None)
    return {n: r["speedup_vs_same_precision_peer"] for n, r in results.items()}


def markdown(result: dict[str, Any]) -> str:
    """One table: per engine, medians, speedups (median of per-round ratios), GFLOP/s and quality."""
    counts = [str(n) for n in result["steps"]]
    last = counts[-1]
    has_quality = any("quality" in e for e in result["engines"].values())
    head = (["engine", "step p50 ms", *[f"e2e {n} step{'s' * (n != '1')} ms" for n in counts],
             "step vs eager", "step vs best peer", "step vs best peer, same precision", f"e2e {last} vs eager",
             f"e2e {last} vs best peer", f"e2e {last} vs best peer, same precision",
             "GFLOP/s", "% of matmul peak"] + (["adherence", "FD"] if has_quality else []))
    same_precision = _same_precision_ratios(result)
    lines = [f"{_title(result)}.", "",
             "| " + " | ".join(head) + " |", "|---|" + "---:|" * (len(head) - 1)]
    for name, e in result["engines"].items():
        vs_eager, vs_peer = e.get("speedup_vs_eager", {}), e.get("speedup_vs_fastest_peer", {})
        vs_same = e.get("speedup_vs_same_precision_peer") or same_precision.get(name, {})
        share = e.get("share_of_measured_peak")
        q = e.get("quality", {})
        cells = [name + (" (failed)" if "error" in e else ""), _num(e.get("p50_step_ms")),
                 *[_num(e.get("p50_e2e_ms", {}).get(n), ".0f") for n in counts],
                 _num(vs_eager.get("step"), ".2f", "x"), _num(vs_peer.get("step"), ".2f", "x"),
                 _num(vs_same.get("step"), ".2f", "x"), _num(vs_eager.get(f"e2e_{last}"), ".2f", "x"),
                 _num(vs_peer.get(f"e2e_{last}"), ".2f", "x"), _num(vs_same.get(f"e2e_{last}"), ".2f", "x"),
                 _num(e.get("gflops_per_s")), _num(None if share is None else share * 100, ".1f", "%")]
        if has_quality:
            cells += [_num(q.get("adherence"), ".3f"), _num(q.get("fd"), ".1f")]
        lines.append("| " + " | ".join(cells) + " |")
    fastest = result["fastest_peer"]
    peak = result["peak"]
    lines += [
        "",
        f"Speedups are medians over {result['rounds']} rounds of the per-round ratio (above 1: faster than the "
        f"reference); best peer = the peer with the lowest p50 for that column "
        f"(step: {fastest.get('step') or '–'}, e2e {last}: {fastest.get(f'e2e_{last}') or '–'}); "
        f"same precision = the fastest peer of the engine's precision family (fp32, bf16, int8 of any recipe). "
        f"Step = one denoiser call ({result['step_repeats']} per engine per round{_warmup_words(result)}); e2e = the whole pipeline call "
        f"(text encoder, steps, VAE). GFLOP/s = {_gflop_words(result)} / p50 step; peak = measured "
        f"{peak['library']} {peak['measured_peak_gflops']:.1f} GFLOP/s on {peak['threads']} threads.",
    ]
    if result.get("quality"):
        q = result["quality"]
        floor = next((e["quality"]["fd_floor"] for e in result["engines"].values() if "fd_floor" in e.get("quality", {})),
                     None)
        first = q.get("first_prompt", 0)
        words = (f"Quality: {q['prompts']} prompts of set {q['prompt_set']} (from prompt {first}), {q['steps']} steps, "
                 f"seeds {q['seed']}.., outside the timed rounds; FD floor (real vs real renders) {_num(floor)}.")
        if q.get("initial_noise"):
            words += f" Initial noise: {q['initial_noise']}."
        if q.get("edgediff_quality_targets"):
            targets = ", ".join(f"{p} ≤ {d:g}" for p, d in q["edgediff_quality_targets"].items())
            words += (f" edgediff bundles built with an adherence-drop target ({targets}), searched on prompts "
                      f"0-{first - 1}: held out from the scored ones.")
        lines.append(words)
    load = result["loadavg"]
    lines.append(host_line(result.get("host")))
    lines.append(f"Load average (1/5/15 min): {load.get('before_rounds')} before the rounds, "
                 f"{load.get('after_rounds')} after; OMP_WAIT_POLICY {result['omp_wait_policy']}.")
    for name, why in result.get("skipped", {}).items():
        lines.append(f"Skipped {name}: {why}")
    for name, e in result["engines"].items():
        if "error" in e:
            lines.append(f"{name} failed: {e['error']}")
    lines += ["", f"Command: `{result['command']}`"]
    return "\n".join(lines) + "\n"


def _warmup_words(result: dict[str, Any]) -> str:
    """Runs from before ``--warmup-steps`` existed timed every step of a turn: they say nothing."""
    warmup = result.get("warmup_steps")
    return f", after {warmup} untimed" if warmup else ""


def _gflop_words(result: dict[str, Any]) -> str:
    return ", ".join(f"{v:.2f} GFLOP at batch {b}" for b, v in result["gflop_per_step_by_batch"].items())


# --- SVG -----------------------------------------------------------------------------------------------------


class Svg:
    """The handful of SVG elements a bar chart needs, collected in order and serialised at the end."""

    def __init__(self, width: int, height: int) -> None:
        self.width, self.height = width, height
        self.parts: list[str] = []

    def rect(self, x: float, y: float, w: float, h: float, fill: str, title: str = "") -> None:
        tip = f"<title>{escape(title)}</title>" if title else ""
        self.parts.append(f'<rect x="{x:.1f}" y="{y:.1f}" width="{max(w, 0):.1f}" height="{h:.1f}" fill="{fill}">{tip}</rect>')

    def text(self, x: float, y: float, s: str, *, size: int = 12, anchor: str = "start", weight: str = "normal") -> None:
        self.parts.append(f'<text x="{x:.1f}" y="{y:.1f}" font-size="{size}" text-anchor="{anchor}" '
                          f'font-weight="{weight}">{escape(s)}</text>')

    def line(self, x1: float, y1: float, x2: float, y2: float, stroke: str = "#333") -> None:
        self.parts.append(f'<line x1="{x1:.1f}" y1="{y1:.1f}" x2="{x2:.1f}" y2="{y2:.1f}" stroke="{stroke}"/>')

    def render(self) -> str:
        return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{self.width}" height="{self.height}" '
                f'viewBox="0 0 {self.width} {self.height}" font-family="sans-serif">\n'
                f'<rect width="100%" height="100%" fill="white"/>\n' + "\n".join(self.parts) + "\n</svg>\n")


def svg(result: dict[str, Any]) -> str:
    """Horizontal bars, one panel per metric (p50 step, then e2e per step count), one bar per engine.

    Bars share no axis across panels (the metrics differ by orders of magnitude); each panel is
    scaled to its own slowest engine and every bar carries its value.
    """
    rows = [(n, e) for n, e in result["engines"].items() if e.get("p50_step_ms")]
    panels = [("denoiser step p50 (ms)", lambda e: e.get("p50_step_ms"))]
    for n in result["steps"]:
        panels.append((f"end to end, {n} step{'s' * (n != 1)} p50 (ms)",
                       lambda e, n=str(n): e.get("p50_e2e_ms", {}).get(n)))
    label_w, panel_w, bar_h, gap, top = 230, 260, 16, 6, 56
    width = label_w + len(panels) * (panel_w + 20) + 10
    height = top + len(rows) * (bar_h + gap) + 40
    doc = Svg(width, height)
    doc.text(10, 20, f"{result['model']} {result['height']}x{result['width']}, {result['threads']} threads "
                     f"(lower is faster)", size=14, weight="bold")
    x_legend = 10
    for kind, colour in KIND_COLOURS.items():
        doc.rect(x_legend, height - 22, 12, 12, colour)
        doc.text(x_legend + 16, height - 12, KIND_WORDS[kind], size=11)
        x_legend += 190
    for i, (name, _) in enumerate(rows):
        doc.text(label_w - 6, top + i * (bar_h + gap) + bar_h - 4, name, size=11, anchor="end")
    for p, (title, value) in enumerate(panels):
        x0 = label_w + p * (panel_w + 20)
        doc.text(x0, top - 12, title, size=12, weight="bold")
        values = [value(e) for _, e in rows]
        scale = (panel_w - 50) / max((v for v in values if v), default=1.0)
        doc.line(x0, top - 4, x0, top + len(rows) * (bar_h + gap))
        for i, ((name, e), v) in enumerate(zip(rows, values, strict=True)):
            if not v:
                continue
            y = top + i * (bar_h + gap)
            doc.rect(x0, y, v * scale, bar_h, KIND_COLOURS.get(e.get("kind", ""), "#999"), f"{name}: {v:.1f} ms")
            doc.text(x0 + v * scale + 4, y + bar_h - 4, f"{v:.1f}" if v < 100 else f"{v:.0f}", size=10)
    return doc.render()


# --- files ---------------------------------------------------------------------------------------------------


def write(result: dict[str, Any], stem: Path) -> None:
    write_result(stem, result, markdown(result), renderings={".svg": svg(result)}, echo=False)


def docs_page(results: list[tuple[Path, dict[str, Any]]], docs: Path, gpu_tables: list[Path] | None = None) -> str:
    """docs/benchmarks.md: every compare result (sorted by file name), its chart, table and command,
    then the H100 tables (``gpu_tables``: markdown files), which put the GPU step against its peak."""
    gpu_tables = gpu_tables or []
    lines = ["# Benchmarks: edgediff against PyTorch eager and the Optimum exporters", "",
             "Generated by `python -m tools.bench docs` (every `python -m tools.bench compare` run also regenerates it) "
             "from the `compare_*.json` files in this folder's `benchmarks/`; edit those runs, not this page.", "",
             "Each run times, side by side in alternating rounds on one machine: the stock diffusers pipeline in "
             "PyTorch eager fp32 (the baseline), Optimum-Intel's OpenVINO export (fp32, int8 weight-only, int8 hybrid) "
             "and Optimum's ONNX Runtime export (fp32, dynamic int8), each in its own pinned venv, and edgediff "
             "bundles for x86-cpu (ONNX Runtime), intel-cpu (OpenVINO) and arm64-cpu (ExecuTorch/XNNPACK, run on "
             "x86 here) at fp32 and int8; where a run names `--cache-interval N`, also float bundles whose denoiser "
             "is split for caching (`-cacheN`: DeepCache for a UNet, Δ-cache for a PixArt transformer; the full "
             "denoiser every N steps, a shallow one between; its `step` column times the full denoiser, so its "
             "saving shows end to end, and its quality holds only at the table's quality step count: at 4 steps "
             "of a 30-step zoo model caching loses 20-53 points, docs/benchmarks/cache_*_4steps.md); where it "
             "names `--tiny-decoder`, "
             "also fp32 bundles whose VAE decoder is the model's distilled tiny decoder (`-tinyvae`; it changes "
             "only the end-to-end columns); where it names `--guided`, also float bundles whose denoiser is the "
             "model's guidance-distilled student (`-guided`: one denoiser pass per step where the others run the "
             "guided pair as a batch of two, so its step column is a batch of one; its images are scored beside "
             "the guided teacher's like every engine's).", ""]
    for path, result in results:
        rel = path.parent.relative_to(docs.parent) if path.is_relative_to(docs.parent) else path.parent
        label = f" ({result['label']})" if result.get("label") else ""
        lines += [f"## {result['model']} at {result['height']}x{result['width']}{label}", "",
                  f"Data: [{path.name}]({rel / path.name}); the table's notes name its host.", "",
                  *([f"Note: {result['note']}", ""] if result.get("note") else []),
                  f"![{result['model']} latency]({rel / path.with_suffix('.svg').name})", "",
                  markdown(result)]
    if gpu_tables:
        lines += ["## H100: the denoiser step against the GPU's dense peak", "",
                  "From `tools/bench/gpu_quant_step.py` runs on the lent H100 (bf16, and fp8 / int8 linear "
                  "layers), each with the dense matmul peaks measured in the same run.", ""]
    for table in gpu_tables:
        lines += [f"### {table.stem}", "", table.read_text().rstrip(), ""]
    return "\n".join(lines)


def write_docs(folder: Path, docs: Path) -> Path:
    results = [(p, json.loads(p.read_text())) for p in sorted(folder.glob("compare_*.json"))]
    docs.parent.mkdir(parents=True, exist_ok=True)
    docs.write_text(docs_page(results, docs, sorted(folder.glob("gpu_quant_step*.md"))))
    return docs
