"""The versioned evaluation prompt sets: fixed files, so numbers from different days compare."""

from __future__ import annotations

import json
from pathlib import Path

from edgediff.errors import EdgeDiffError

PROMPT_DIR = Path(__file__).parent
DEFAULT_PROMPT_SET = "v1"


def prompt_set_versions() -> list[str]:
    return sorted(p.stem.removeprefix("prompts_") for p in PROMPT_DIR.glob("prompts_v*.json"))


def load_prompt_set(version: str = DEFAULT_PROMPT_SET, n: int | None = None) -> list[str]:
    """The first ``n`` prompts (all if None) of set ``version``; one- and two-object prompts alternate."""
    path = PROMPT_DIR / f"prompts_{version}.json"
    if not path.is_file():
        raise EdgeDiffError(f"unknown prompt set {version!r}; known: {', '.join(prompt_set_versions()) or 'none'}")
    prompts = [row["text"] for row in json.loads(path.read_text())["prompts"]]
    if n is not None:
        if not 1 <= n <= len(prompts):
            raise EdgeDiffError(f"--prompts must be between 1 and {len(prompts)} for prompt set {version!r}, got {n}")
        prompts = prompts[:n]
    return prompts
