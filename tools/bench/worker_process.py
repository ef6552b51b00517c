"""An engine of the comparison as a child process: commands in on stdin, one JSON line back per command.

Every engine (PyTorch eager, an Optimum peer in its venv, an edgediff bundle) speaks the protocol
documented in ``peers/optimum_worker.py``; this is the orchestrator's side of it.
"""

from __future__ import annotations

import json
import queue
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]


@dataclass
class EngineSpec:
    """One engine to start: its name, kind (eager / peer / edgediff) and the worker command line."""

    name: str
    kind: str
    command: list[str] = field(default_factory=list)
    prepare: Any = None  # called before starting (venv, bundle build); returns extra facts or raises


class Worker:
    """A running engine: commands in on stdin, one JSON line back on stdout per command."""

    def __init__(self, spec: EngineSpec, log: Path, env: dict[str, str], append: bool = False) -> None:
        self.spec = spec
        log.parent.mkdir(parents=True, exist_ok=True)
        self._log = log.open("a" if append else "w")
        self.proc = subprocess.Popen(spec.command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._log,
                                     text=True, bufsize=1, cwd=REPO, env=env)
        self._lines: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self._lines.put(line)
        self._lines.put(None)

    def read(self, timeout: float) -> dict[str, Any]:
        try:
            line = self._lines.get(timeout=timeout)
        except queue.Empty:
            return {"error": f"no answer within {timeout:.0f} s"}
        if line is None:
            return {"error": f"worker exited (code {self.proc.wait()}); see {self._log.name}"}
        return json.loads(line)

    def ask(self, command: dict[str, Any], timeout: float) -> dict[str, Any]:
        assert self.proc.stdin is not None
        try:
            self.proc.stdin.write(json.dumps(command) + "\n")
            self.proc.stdin.flush()
        except BrokenPipeError:
            return {"error": "worker exited"}
        return self.read(timeout)

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                self.ask({"op": "quit"}, 0.0)
                self.proc.wait(timeout=30)
            except (subprocess.TimeoutExpired, OSError):
                self.proc.kill()
        self._log.close()


class EngineTurns:
    """Started engines, handed out one turn at a time.

    Resident (the default): every engine stays loaded between turns, so no reload is ever timed. Not
    resident: each turn starts the engine afresh and closes it after, so one model at a time is in
    memory; SD-scale engines hold 3-5 GB each and a dozen of them do not fit in 24 GiB. A worker warms
    up (a 1-step generation) before its ready line, so a restarted engine is still timed warm.
    """

    def __init__(self, resident: bool, logs: Path, env: dict[str, str], ready_timeout: float) -> None:
        self.resident = resident
        self._logs = logs
        self._env = env
        self._ready_timeout = ready_timeout
        self.specs: dict[str, EngineSpec] = {}
        self.ready: dict[str, dict[str, Any]] = {}
        self._running: dict[str, Worker] = {}

    def _launch(self, spec: EngineSpec, append: bool) -> tuple[Worker, dict[str, Any]]:
        """A started worker and its ready line; raises ``RuntimeError`` (worker closed) if it is not ready."""
        worker = Worker(spec, self._logs / f"{spec.name}.log", self._env, append=append)
        ready = worker.read(self._ready_timeout)
        if not ready.get("ready"):
            worker.close()
            raise RuntimeError(str(ready.get("error", "not ready")))
        return worker, ready

    def start(self, spec: EngineSpec, facts: dict[str, Any]) -> str | None:
        """Start ``spec`` and wait for its ready line; None when ready, else why not (the engine is dropped)."""
        try:
            worker, ready = self._launch(spec, append=False)
        except RuntimeError as exc:
            return str(exc)
        self.specs[spec.name] = spec
        self.ready[spec.name] = {**ready, **facts}
        if self.resident:
            self._running[spec.name] = worker
        else:
            worker.close()
        return None

    @contextmanager
    def turn(self, name: str) -> Iterator[Worker]:
        """The engine's worker for one turn; raises ``RuntimeError`` if a restarted engine is not ready."""
        if name in self._running:
            yield self._running[name]
            return
        try:
            worker, _ = self._launch(self.specs[name], append=True)
        except RuntimeError as exc:
            raise RuntimeError(f"restart: {exc}") from exc
        try:
            yield worker
        finally:
            worker.close()

    def close(self) -> None:
        for worker in self._running.values():
            worker.close()
        self._running.clear()
