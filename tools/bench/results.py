"""How every bench writes its result: ``STEM.json`` beside ``STEM.md`` (and any other rendering).

One writer, so that every result is complete or absent -- each file is written beside its final
name and renamed into place, and a bench killed mid-write leaves the previous result whole -- and
so that the JSON (what tools read back) and the markdown (what docs show) never drift in form.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any


def write_result(stem: Path, result: Mapping[str, Any], markdown: str, *,
                 renderings: Mapping[str, str] | None = None, echo: bool = True) -> list[Path]:
    """Write ``STEM.json`` (``result``), ``STEM.md`` (``markdown``) and ``STEM<suffix>`` per rendering.

    ``stem`` is a path without suffix; dots in its name are kept (``gemm_v1.2`` -> ``gemm_v1.2.json``).
    ``echo`` prints the markdown, as a bench's last words on the terminal. Returns the paths written.
    """
    stem.parent.mkdir(parents=True, exist_ok=True)
    texts = {".json": json.dumps(result, indent=1) + "\n", ".md": markdown.rstrip("\n") + "\n", **(renderings or {})}
    written = []
    for suffix, text in texts.items():
        path = stem.parent / f"{stem.name}{suffix}"
        partial = path.with_name(f".{path.name}.partial")
        partial.write_text(text)
        os.replace(partial, path)
        written.append(path)
    if echo:
        print(markdown.rstrip("\n"), flush=True)
    return written


def host_line(host: Mapping[str, Any] | None) -> str:
    """``Host: CPU xN, ISA ...``: the words a result's table needs to be compared with another machine's."""
    if not host:
        return "Host: not recorded."
    isa = host.get("isa")
    words = f"Host: {host.get('cpu')} x{host.get('cpu_count')}"
    return words + (f", ISA {' '.join(isa)}." if isa else " (ISA not recorded).")
