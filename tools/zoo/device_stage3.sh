#!/usr/bin/env bash
# Device run 3: continue the UNet alone (frozen text encoder) on a fresh slice of the stream.
# Needs .zoo_ckpt/carry/{text_encoder,vae,unet}.safetensors (from runs 1 and 2), carried.
set -euo pipefail
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
export PYTHONPATH=/tmp/site:. PYTHONUNBUFFERED=1
D=/tmp/zoo; W=$D/out; C=.zoo_ckpt/carry
python3 -m tools.zoo.train data --out $D/train --seed 1 --start 600000 --count 300000
python3 -m tools.zoo.train diffusion --data $D/train --vae $C/vae.safetensors --out $W/unet --init $C \
    --freeze-text-encoder --denoisers unet --batch 512 --lr 3e-4 --steps 100000 --max-minutes 8.2
cp $W/unet/unet.safetensors $OUT/
tar cf $OUT/logs.tar -C $W $(cd $W && ls */*.json */*.png)
