"""Content hashes for provenance: a model folder's files, or a config document."""

from __future__ import annotations

import hashlib
from pathlib import Path

_CHUNK = 1 << 20


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def sha256_tree(root: Path, exclude: tuple[str, ...] = ()) -> str:
    """Hash of every file's relative path and content, in sorted order (stable across machines).

    ``exclude`` names top-level folders left out (optional parts a build hashes in only when it uses them).
    """
    digest = hashlib.sha256()
    files = (p for p in root.rglob("*") if p.is_file() and p.relative_to(root).parts[0] not in exclude)
    for path in sorted(files):
        digest.update(path.relative_to(root).as_posix().encode())
        digest.update(sha256_file(path).encode())
    return digest.hexdigest()


def sha256_text(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()
