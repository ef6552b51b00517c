#!/usr/bin/env bash
# Device run 5: distil the shipped VAE decoder into two TinyDecoder sizes, one process each on the GPU.
# Needs diffusers' wheel in .whl/ (carried); reads the shipped zoo folders only.
set -euo pipefail
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
export PYTHONPATH=/tmp/site:. PYTHONUNBUFFERED=1
D=/tmp/zoo; W=$D/out
python3 -m tools.zoo.train data --out $D/train --seed 1 --start 1200000 --count 300000
python3 -m tools.zoo.train data --out $D/held --seed 2 --start 10000 --count 2000
common="--data $D/train --heldout $D/held --out $W --batch 512 --lr 2e-3 --steps 30000 --max-minutes 6.5"
python3 -m tools.zoo.train tiny-decoder $common --name tiny_s --channels 64 32 16 --blocks 2 2 1 > $OUT/tiny_s.log 2>&1 &
s=$!
python3 -m tools.zoo.train tiny-decoder $common --name tiny_m --channels 64 48 32 --blocks 2 2 1 > $OUT/tiny_m.log 2>&1 &
m=$!
status=0; wait $s || status=1; wait $m || status=1
tail -n 3 $OUT/tiny_s.log $OUT/tiny_m.log
for name in tiny_s tiny_m; do
  if [ -d $W/$name ]; then mkdir -p $OUT/$name; cp $W/$name/* $OUT/$name/; cp $W/${name}_log.json $OUT/; fi
done
exit $status
