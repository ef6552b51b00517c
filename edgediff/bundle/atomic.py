"""Write a directory somewhere temporary and move it into place only when complete."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from edgediff.errors import BundleError


def check_output_free(out: Path, force: bool) -> None:
    """Fail before any work when ``out`` exists (unless ``force``), so a long build cannot be wasted."""
    if out.exists() and not force and (out.is_file() or any(out.iterdir())):
        raise BundleError(f"output {str(out)!r} already exists; choose another -o or pass --force to replace it")


@contextmanager
def atomic_directory(out: Path, *, force: bool = False) -> Iterator[Path]:
    """Yield a temporary directory beside ``out``; on success it replaces ``out``, on failure it vanishes.

    The temporary directory is a sibling so the final move is a rename on the same filesystem.
    """
    check_output_free(out, force)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.partial-", dir=out.parent))
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    old = None
    if out.exists():
        old = out.parent / f".{out.name}.old-{tmp.name.rsplit('-', 1)[-1]}"
        out.rename(old)
    tmp.rename(out)
    if old is not None:
        if old.is_dir():
            shutil.rmtree(old, ignore_errors=True)
        else:
            old.unlink(missing_ok=True)
