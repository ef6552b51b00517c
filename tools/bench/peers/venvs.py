"""One virtual environment per peer engine, created from its pinned requirements file and reused.

The peers (Optimum-Intel, Optimum + ONNX Runtime) pin transformers, huggingface-hub and their
engines to versions that conflict with edgediff's own, so each runs in a venv of its own, made
from ``peers/NAME.txt``. A venv lives under ``ROOT/NAME-<hash of the file>``: editing the pins
makes a new one, and an unchanged file reuses the old one without asking the network.

torch is installed first, alone, as ``torch==TORCH_PIN``: this machine keeps that CPU build on
disk, while any other torch requirement (an unpinned one from a peer's metadata included) would
pull a multi-gigabyte CUDA build from PyPI. The requirements files are complete locks installed
with ``--no-deps`` for the same reason: optimum-intel's metadata asks for torchvision, and
resolving it replaces the CPU torch with a CUDA one.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
from pathlib import Path

PEERS_DIR = Path(__file__).resolve().parent
DEFAULT_ROOT = Path("~/.cache/edgediff-bench/venvs")
TORCH_PIN = "2.13.0"
DONE_MARK = ".edgediff-ready"  # written last: a venv without it was interrupted and is rebuilt


class PeerEnvError(RuntimeError):
    """A peer venv could not be created; the message is one line a user can act on."""


def requirements_path(name: str) -> Path:
    path = PEERS_DIR / f"{name}.txt"
    if not path.is_file():
        known = ", ".join(sorted(p.stem for p in PEERS_DIR.glob("*.txt")))
        raise PeerEnvError(f"unknown peer {name!r}; known: {known}")
    return path


def requirements_hash(path: Path) -> str:
    """Short hash of the pins and of the python that runs them (a venv is tied to its interpreter)."""
    digest = hashlib.sha256(path.read_bytes())
    digest.update(f"python{sys.version_info.major}.{sys.version_info.minor}".encode())
    return digest.hexdigest()[:12]


def venv_dir(name: str, root: Path = DEFAULT_ROOT) -> Path:
    return Path(root).expanduser() / f"{name}-{requirements_hash(requirements_path(name))}"


def venv_python(venv: Path) -> Path:
    return venv / "bin" / "python"


def _run(cmd: list[str], what: str, log: Path) -> None:
    with log.open("a") as sink:
        sink.write(f"$ {' '.join(cmd)}\n")
        sink.flush()
        done = subprocess.run(cmd, stdout=sink, stderr=subprocess.STDOUT, check=False)
    if done.returncode != 0:
        tail = [line for line in log.read_text().splitlines() if line.strip() and "is ignored" not in line][-1:]
        raise PeerEnvError(f"{what} failed (exit {done.returncode}): {tail[0] if tail else '?'}; full log: {log}")


def ensure_peer_env(name: str, root: Path = DEFAULT_ROOT) -> Path:
    """The python executable of peer ``name``'s venv, creating the venv the first time (minutes)."""
    reqs = requirements_path(name)
    venv = venv_dir(name, root)
    python = venv_python(venv)
    if (venv / DONE_MARK).is_file() and python.is_file():
        return python
    if venv.exists():
        shutil.rmtree(venv)
    venv.parent.mkdir(parents=True, exist_ok=True)
    log = venv.parent / f"{venv.name}.log"
    log.write_text("")
    print(f"creating the {name} venv in {venv} (log: {log})", file=sys.stderr, flush=True)
    _run([sys.executable, "-m", "venv", str(venv)], f"python -m venv {venv}", log)
    pip = [str(python), "-m", "pip", "install", "--disable-pip-version-check"]
    _run([*pip, f"torch=={TORCH_PIN}"], f"pip install torch=={TORCH_PIN} for {name}", log)
    _run([*pip, "--no-deps", "-r", str(reqs)], f"pip install --no-deps -r {reqs}", log)
    (venv / DONE_MARK).write_text(requirements_hash(reqs) + "\n")
    return python


def main() -> None:
    """``python -m tools.bench.peers.venvs NAME...``: create (or find) the venvs and print their pythons."""
    names = sys.argv[1:] or sorted(p.stem for p in PEERS_DIR.glob("*.txt"))
    for name in names:
        try:
            print(ensure_peer_env(name))
        except PeerEnvError as exc:
            print(f"error: {exc}", file=sys.stderr)
            sys.exit(2)


if __name__ == "__main__":
    main()
