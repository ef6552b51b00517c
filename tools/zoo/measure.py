"""Measure the shipped zoo: teacher quality, VAE reconstruction, classifier accuracy, sizes -> JSON.

    PYTHONPATH=. python3 -m tools.zoo.measure --prompts 400 --out tools/zoo/logs/measure.json

Models are loaded from their shipped fp16 folders and run in fp32 on the CPU through the torch
reference sampler at their ``edgediff.json`` defaults; every number in docs/zoo.md comes from here.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from edgediff.eval import AttributeClassifier, evaluate, load_prompt_set
from edgediff.eval.adherence import score
from edgediff.eval.classifier import WEIGHTS
from edgediff.eval.metrics import psnr
from edgediff.zoo.dataset import render_range
from edgediff.zoo.paths import zoo_names, zoo_path

HELDOUT_SEED = 2  # the stream the classifier and VAE were validated on; training used stream 1


def folder_mb(folder: Path) -> float:
    return round(sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) / 1e6, 2)


def measure_classifier(count: int) -> dict[str, object]:
    images, scenes, _ = render_range(HELDOUT_SEED, 100_000, count)
    result = score(scenes, AttributeClassifier.load().predict(images))
    return {
        "heldout_renders": count,
        "all_attributes": result["adherence"],
        "per_attribute": result["adherence_by_attribute"],
        "weights_mb": round(WEIGHTS.stat().st_size / 1e6, 2),
    }


def measure_vae(count: int) -> dict[str, object]:
    import torch
    from diffusers import AutoencoderKL

    vae = AutoencoderKL.from_pretrained(zoo_path("shapes-unet") / "vae").float().eval()
    images, _, _ = render_range(HELDOUT_SEED, 200_000, count)
    recon = []
    with torch.no_grad():
        for i in range(0, count, 100):
            x = torch.from_numpy(images[i : i + 100]).permute(0, 3, 1, 2).float() / 127.5 - 1
            y = vae.decode(vae.encode(x).latent_dist.mode()).sample
            recon.append(((y / 2 + 0.5).clamp(0, 1) * 255).round().permute(0, 2, 3, 1).to(torch.uint8).numpy())
    p = psnr(np.concatenate(recon), images)
    return {
        "heldout_renders": count,
        "psnr_mean_db": float(p.mean()),
        "psnr_p05_db": float(np.percentile(p, 5)),
        "psnr_min_db": float(p.min()),
        "latent_shape": [4, 16, 16],
        "scaling_factor": float(vae.config.scaling_factor),
    }


def measure_model(name: str, prompts: int, seed: int) -> dict[str, object]:
    from edgediff.zoo.sampler import ZooSampler

    sampler = ZooSampler.from_folder(f"zoo:{name}")
    t0 = time.time()
    result = evaluate(lambda p, s: sampler.generate(p, s, batch_size=50), load_prompt_set("v1", prompts), seed)
    result["sampling"] = {k: sampler.defaults[k] for k in ("default_steps", "default_guidance_scale")}
    result["sampler"] = "DDIM (diffusers DDIMScheduler, eta 0), classifier-free guidance, fp32 on CPU"
    result["wall_s"] = round(time.time() - t0, 1)
    result["size_mb"] = folder_mb(zoo_path(name))
    return result


def measure_fidelity(prompts: int, seed: int, student_steps: int) -> dict[str, object]:
    """An example of teacher fidelity: shapes-unet at fewer DDIM steps against itself at its default."""
    from edgediff.eval import seeds_for
    from edgediff.zoo.sampler import ZooSampler

    sampler = ZooSampler.from_folder("zoo:shapes-unet")
    texts = load_prompt_set("v1", prompts)
    teacher = sampler.generate(texts, seeds_for(len(texts), seed), batch_size=50)
    result = evaluate(lambda p, s: sampler.generate(p, s, steps=student_steps, batch_size=50), texts, seed, teacher)
    result["teacher"] = f"zoo:shapes-unet, {sampler.defaults['default_steps']} DDIM steps"
    result["student"] = f"zoo:shapes-unet, {student_steps} DDIM steps"
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--prompts", type=int, default=400)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--models", default=",".join(zoo_names()))
    parser.add_argument("--out", type=Path, default=Path("tools/zoo/logs/measure.json"))
    parser.add_argument("--parts", default="classifier,vae,models", help="any of classifier, vae, models, fidelity")
    parser.add_argument("--student-steps", type=int, default=10, help="DDIM steps of the fidelity example")
    args = parser.parse_args()
    parts = set(args.parts.split(","))
    import torch

    torch.set_num_threads(2)
    command = f"python3 -m tools.zoo.measure --prompts {args.prompts} --seed {args.seed} --parts {args.parts}"
    out: dict[str, object] = {"command": command}
    if "classifier" in parts:
        out["classifier"] = measure_classifier(2000)
        print(json.dumps(out["classifier"]), flush=True)
    if "vae" in parts:
        out["vae"] = measure_vae(1000)
        print(json.dumps(out["vae"]), flush=True)
    if "models" in parts:
        for name in [m for m in args.models.split(",") if m]:
            out[name] = measure_model(name, args.prompts, args.seed)
            print(name, json.dumps(out[name]), flush=True)
    if "fidelity" in parts:
        out["fidelity_example"] = measure_fidelity(args.prompts, args.seed, args.student_steps)
        print(json.dumps(out["fidelity_example"]), flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main()
