#!/usr/bin/env bash
# Device run 5: distil the shipped VAE decoder into two TinyDecoder sizes, one process each on the GPU.
# Usage: bash tools/zoo/device_stage5.sh "NAME CHANNELS BLOCKS LR [OPTIONS]" ... (e.g. "tiny_m 64,48,32 2,2,1 1e-3").
# Needs diffusers' wheel in .whl/ (carried); reads the shipped zoo folders only.
set -euo pipefail
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
export PYTHONPATH=/tmp/site:. PYTHONUNBUFFERED=1
D=/tmp/zoo; W=$D/out
python3 -m tools.zoo.train data --out $D/train --seed 1 --start 1200000 --count 300000
python3 -m tools.zoo.train data --out $D/held --seed 2 --start 10000 --count 2000
common="--data $D/train --heldout $D/held --out $W --batch 512 --steps 30000 --max-minutes 7"
pids=(); names=()
for spec in "$@"; do
  read -r name channels blocks lr extra <<<"$spec"
  python3 -m tools.zoo.train tiny-decoder $common --name $name --channels ${channels//,/ } --blocks ${blocks//,/ } \
      --lr $lr ${extra:-} > $OUT/$name.log 2>&1 &
  pids+=($!); names+=($name)
done
status=0; for pid in "${pids[@]}"; do wait $pid || status=1; done
for name in "${names[@]}"; do tail -n 2 $OUT/$name.log; done
for name in "${names[@]}"; do
  if [ -d $W/$name ]; then mkdir -p $OUT/$name; cp $W/$name/* $OUT/$name/; cp $W/${name}_log.json $OUT/; fi
done
exit $status
