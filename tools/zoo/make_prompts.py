"""Write the versioned evaluation prompt set (edgediff/eval/prompts_v1.json).

    PYTHONPATH=. python3 -m tools.zoo.make_prompts

Prompts alternate one-object and two-object scenes, so the first N of the set are balanced for any
even N. Scenes come from a stream (seed 1000) that training never draws from. A new set gets a new
version; an existing file is never rewritten with different contents.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from edgediff.eval.prompts import PROMPT_DIR
from edgediff.zoo.dataset import sample_scene
from edgediff.zoo.grammar import prompt_for

SEED = 1000


def build(count: int) -> list[dict[str, object]]:
    rows = []
    for i in range(count):
        rng = np.random.default_rng([SEED, i])
        scene = sample_scene(rng, two_object_probability=float(i % 2))
        rows.append({"text": prompt_for(scene), "objects": len(scene.objects)})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--version", default="v1")
    parser.add_argument("--count", type=int, default=400)
    args = parser.parse_args()
    payload = {"version": args.version, "seed": SEED, "grammar": "edgediff.zoo.grammar", "prompts": build(args.count)}
    path = Path(PROMPT_DIR) / f"prompts_{args.version}.json"
    text = json.dumps(payload, indent=1) + "\n"
    if path.exists() and path.read_text() != text:
        raise SystemExit(f"{path} exists with other contents; a changed prompt set needs a new version")
    path.write_text(text)
    print(f"wrote {path} ({args.count} prompts)")


if __name__ == "__main__":
    main()
