#!/usr/bin/env bash
# Device runs 9-10: guidance-distil shipped denoisers (one process each on the GPU), then score them.
# Usage: FAMILIES="unet dit" MINUTES=6 bash tools/zoo/device_stage6.sh
# Needs diffusers' wheel in .whl/ (carried); reads the shipped zoo folders only. Each student comes back
# as one tar (a device call returns few files).
set -euo pipefail
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
export PYTHONPATH=/tmp/site:. PYTHONUNBUFFERED=1
D=/tmp/zoo; W=$D/out; MINUTES=${MINUTES:-6}; FAMILIES=${FAMILIES:-unet dit}
python3 -m tools.zoo.train data --out $D/train --seed 1 --start 1500000 --count 300000
pids=()
for name in $FAMILIES; do
  python3 -m tools.zoo.train guidance --teacher edgediff/zoo/models/shapes-$name --data $D/train --out $W/$name \
      --batch 512 --lr 1e-4 --max-minutes $MINUTES > $OUT/guidance_$name.log 2>&1 &
  pids+=($!)
done
status=0; for pid in "${pids[@]}"; do wait $pid || status=1; done
for name in $FAMILIES; do
  grep -v "kept in float32" $OUT/guidance_$name.log | tail -n 8
  if [ -d $W/$name ]; then tar cf $OUT/guidance_$name.tar -C $W $name; fi
done
exit $status
