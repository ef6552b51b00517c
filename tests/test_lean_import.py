"""Importing edgediff and listing targets must not pull in torch or any engine (fast CLI, lean apps)."""

from __future__ import annotations

import subprocess
import sys

HEAVY = ("torch", "openvino", "executorch", "onnxruntime", "diffusers", "transformers")


def test_import_and_targets_load_no_heavy_packages() -> None:
    code = (
        "import sys, json\n"
        "from click.testing import CliRunner\n"
        "from edgediff.cli import main\n"
        "result = CliRunner().invoke(main, ['targets', '--json'])\n"
        "assert result.exit_code == 0, result.output\n"
        f"print(json.dumps(sorted(m for m in {HEAVY!r} if m in sys.modules)))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "[]"
