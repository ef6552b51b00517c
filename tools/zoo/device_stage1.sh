#!/usr/bin/env bash
# Device run 1 of 2: data, classifier (in parallel), VAE, then text encoder + UNet.
# Run from the repository root on the GPU machine; checkpoints and logs go to $OUT.
set -euo pipefail
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
export PYTHONPATH=/tmp/site:. PYTHONUNBUFFERED=1
D=/tmp/zoo; W=$D/out
python3 -m tools.zoo.train data --out $D/train --seed 1 --count 300000
python3 -m tools.zoo.train data --out $D/held --seed 2 --count 5000
python3 -m tools.zoo.train classifier --data $D/train --heldout $D/held --out $W --steps 20000 --batch 256 &
CLS=$!
python3 -m tools.zoo.train vae --data $D/train --heldout $D/held --out $W --steps 3000 --batch 256
python3 -m tools.zoo.train diffusion --data $D/train --vae $W/vae.safetensors --out $W --denoisers unet \
    --steps 100000 --max-minutes 4.6 --eval-prompts 200
wait $CLS
cp $W/*.safetensors $OUT/
tar cf $OUT/logs.tar -C $W $(cd $W && ls *.json *.png)
