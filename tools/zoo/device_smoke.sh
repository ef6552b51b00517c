#!/usr/bin/env bash
# Smoke run of every training stage with tiny step counts (catches errors before the real runs).
set -euo pipefail
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
export PYTHONPATH=/tmp/site:. PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
python3 -c "import torch, diffusers, transformers; print(torch.__version__, diffusers.__version__, transformers.__version__)"
D=/tmp/zoo; W=$D/out
python3 -m tools.zoo.train data --out $D/train --seed 1 --count 40000
python3 -m tools.zoo.train data --out $D/held --seed 2 --count 2000
python3 -m tools.zoo.train classifier --data $D/train --heldout $D/held --out $W --steps 400 &
python3 -m tools.zoo.train vae --data $D/train --heldout $D/held --out $W --steps 400
wait
python3 -m tools.zoo.train diffusion --data $D/train --vae $W/vae.safetensors --out $W --steps 400 --eval-prompts 64
tar cf $OUT/logs.tar -C $W $(cd $W && ls *.json *.png)
