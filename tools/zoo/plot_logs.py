"""Draw the loss curves of every training log as a PNG beside it (pillow only, log-scale y).

PYTHONPATH=. python3 -m tools.zoo.plot_logs tools/zoo/logs
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

from PIL import Image, ImageDraw

COLORS = [(31, 119, 180), (214, 39, 40), (44, 160, 44), (148, 103, 189)]
W, H, PAD = 720, 360, 60


def plot(log_path: Path) -> Path | None:
    data = json.loads(log_path.read_text())
    curves = {k: v for k, v in data.get("curves", {}).items() if v["value"]}
    if not curves:
        return None
    xs = [s for c in curves.values() for s in c["step"]]
    ys = [math.log10(max(v, 1e-8)) for c in curves.values() for v in c["value"]]
    x0, x1 = min(xs), max(xs) or 1
    y0, y1 = math.floor(min(ys)), math.ceil(max(ys))
    y1 = y1 if y1 > y0 else y0 + 1
    img = Image.new("RGB", (W, H), "white")
    d = ImageDraw.Draw(img)
    d.rectangle([PAD, PAD // 2, W - PAD // 2, H - PAD], outline="black")

    def px(step: float, logv: float) -> tuple[float, float]:
        fx = (step - x0) / max(x1 - x0, 1)
        fy = (logv - y0) / (y1 - y0)
        return PAD + fx * (W - 1.5 * PAD), H - PAD - fy * (H - 1.5 * PAD)

    for e in range(y0, y1 + 1):
        _, y = px(x0, e)
        d.line([PAD - 4, y, PAD, y], fill="black")
        d.text((4, y - 6), f"1e{e}", fill="black")
    for frac in (0.0, 0.5, 1.0):
        x, _ = px(x0 + frac * (x1 - x0), y0)
        d.text((x - 10, H - PAD + 6), str(int(x0 + frac * (x1 - x0))), fill="black")
    d.text((W // 2 - 15, H - PAD + 22), "step", fill="black")
    for i, (name, c) in enumerate(curves.items()):
        color = COLORS[i % len(COLORS)]
        pts = [px(s, math.log10(max(v, 1e-8))) for s, v in zip(c["step"], c["value"], strict=True)]
        if len(pts) > 1:
            d.line(pts, fill=color, width=2)
        d.text((PAD + 10, PAD // 2 + 6 + 14 * i), name, fill=color)
    d.text((PAD, 8), f"{log_path.stem} ({data.get('stage', '')})", fill="black")
    out = log_path.with_suffix(".png")
    img.save(out)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("folder", type=Path)
    args = parser.parse_args()
    for log in sorted(args.folder.glob("*_log.json")):
        out = plot(log)
        if out:
            print(f"wrote {out}")


if __name__ == "__main__":
    main()
