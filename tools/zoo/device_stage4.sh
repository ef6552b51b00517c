#!/usr/bin/env bash
# Device run 4: continue the DiT alone (frozen text encoder) on a fresh slice of the stream.
# Needs .zoo_ckpt/carry/{text_encoder,vae,transformer}.safetensors (from runs 1 and 2), carried.
set -euo pipefail
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
export PYTHONPATH=/tmp/site:. PYTHONUNBUFFERED=1
D=/tmp/zoo; W=$D/out; C=.zoo_ckpt/carry
python3 -m tools.zoo.train data --out $D/train --seed 1 --start 900000 --count 300000
python3 -m tools.zoo.train diffusion --data $D/train --vae $C/vae.safetensors --out $W/dit --init $C \
    --freeze-text-encoder --denoisers dit --batch 512 --lr 3e-4 --steps 100000 --max-minutes 6.6
cp $W/dit/transformer.safetensors $OUT/
tar cf $OUT/logs.tar -C $W $(cd $W && ls */*.json */*.png)
