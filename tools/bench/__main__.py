"""``python -m tools.bench COMMAND``: the benchmark entry point.

    python -m tools.bench compare [--model zoo:shapes-unet] [--steps 1 4] [--rounds 5] ...
    python -m tools.bench docs        regenerate docs/benchmarks.md from docs/benchmarks/compare_*.json

Focused tools run as modules of their own: tools.bench.cache (DeepCache intervals), tools.bench.decoder
(a distilled VAE decoder's quality), tools.bench.quantize, tools.bench.denoiser_step, tools.bench.peak.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    commands = {"compare": "engines timed side by side, with quality (see tools/bench/compare.py)",
                "docs": "regenerate docs/benchmarks.md from the compare results"}
    if not argv or argv[0] not in commands:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    if argv[0] == "compare":
        from tools.bench.compare import main as compare

        return compare(argv[1:])
    parser = argparse.ArgumentParser(prog="python -m tools.bench docs", description=commands["docs"])
    parser.add_argument("--out", type=Path, default=Path("docs/benchmarks"), help="folder of compare_*.json")
    parser.add_argument("--docs", type=Path, default=Path("docs/benchmarks.md"))
    args = parser.parse_args(argv[1:])
    from tools.bench.compare_report import write_docs

    print(write_docs(args.out, args.docs))
    return 0


if __name__ == "__main__":
    sys.exit(main())
