#!/usr/bin/env bash
# Device run 2 of 2, three processes sharing the GPU: VAE decoder fine-tune, UNet continued and
# DiT from scratch, both denoisers conditioned on the frozen text encoder of run 1.
# Needs run 1's checkpoints in .zoo_ckpt/run1 (carried) and the classifier in edgediff/eval/weights.
set -euo pipefail
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
export PYTHONPATH=/tmp/site:. PYTHONUNBUFFERED=1
D=/tmp/zoo; W=$D/out; C=.zoo_ckpt/run1
python3 -m tools.zoo.train data --out $D/train --seed 1 --start 300000 --count 300000
python3 -m tools.zoo.train data --out $D/held --seed 2 --count 2000
python3 -m tools.zoo.train vae --data $D/train --heldout $D/held --out $W/vae --init $C/vae.safetensors \
    --decoder-only --steps 4000 --batch 256 --lr 2e-4 --max-minutes 6 &
python3 -m tools.zoo.train diffusion --data $D/train --vae $C/vae.safetensors --out $W/unet --init $C \
    --freeze-text-encoder --denoisers unet --lr 3e-4 --steps 100000 --max-minutes 7 &
python3 -m tools.zoo.train diffusion --data $D/train --vae $C/vae.safetensors --out $W/dit --init $C \
    --freeze-text-encoder --denoisers dit --lr 3e-4 --steps 100000 --max-minutes 7 &
wait
for f in vae/vae.safetensors unet/unet.safetensors dit/transformer.safetensors; do cp $W/$f $OUT/ || true; done
tar cf $OUT/logs.tar -C $W $(cd $W && ls */*.json */*.png)
