"""The schedulers run in torch-free runtimes, and the registry is filled without a prior make_scheduler."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]


def _run_fresh(code: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")]))}
    return subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, env=env, capture_output=True, text=True)


def test_schedulers_build_and_step_without_importing_torch() -> None:
    code = (
        "import sys\n"
        "import numpy as np\n"
        "import edgediff.schedulers as s\n"
        "for name in ('euler', 'ddim', 'lcm'):\n"
        "    sch = s.make_scheduler(name, {}, 4)\n"
        "    x = np.zeros((1, 4, 8, 8), np.float32)\n"
        "    sch.step(x, 0, sch.scale_model_input(x, 0), np.zeros_like(x))\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n"
        "assert 'diffusers' not in sys.modules, 'diffusers was imported'\n"
    )
    result = _run_fresh(code)
    assert result.returncode == 0, result.stderr


def test_scheduler_name_for_finds_builtins_in_a_fresh_process() -> None:
    code = (
        "from edgediff.schedulers import scheduler_name_for, scheduler_names\n"
        "assert scheduler_name_for('EulerDiscreteScheduler') == 'euler'\n"
        "assert scheduler_name_for('DDIMScheduler') == 'ddim'\n"
        "assert scheduler_name_for('LCMScheduler') == 'lcm'\n"
        "assert scheduler_name_for('PNDMScheduler') is None\n"
        "assert scheduler_names() == ['ddim', 'euler', 'lcm']\n"
    )
    result = _run_fresh(code)
    assert result.returncode == 0, result.stderr
