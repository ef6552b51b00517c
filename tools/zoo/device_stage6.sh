#!/usr/bin/env bash
# Device run 9: guidance-distil both shipped denoisers (one process each on the GPU), then score them.
# Needs diffusers' wheel in .whl/ (carried); reads the shipped zoo folders only.
set -euo pipefail
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
export PYTHONPATH=/tmp/site:. PYTHONUNBUFFERED=1
D=/tmp/zoo; W=$D/out; MINUTES=${MINUTES:-6}
python3 -m tools.zoo.train data --out $D/train --seed 1 --start 1500000 --count 300000
pids=()
for name in unet dit; do
  python3 -m tools.zoo.train guidance --teacher edgediff/zoo/models/shapes-$name --data $D/train --out $W/$name \
      --batch 512 --lr 1e-4 --max-minutes $MINUTES > $OUT/guidance_$name.log 2>&1 &
  pids+=($!)
done
status=0; for pid in "${pids[@]}"; do wait $pid || status=1; done
for name in unet dit; do
  tail -n 8 $OUT/guidance_$name.log
  if [ -d $W/$name ]; then cp -r $W/$name $OUT/; fi
done
exit $status
