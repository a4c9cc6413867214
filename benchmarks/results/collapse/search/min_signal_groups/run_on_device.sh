#!/bin/bash
# Entry 21 of the collapse search on the device machine: seeds 5-9 of `none` and of
# `min_signal_groups=2` at entry 20's setting, all ten runs at once, one process and one torch
# thread each, model on the GPU. Run from the repository root on a GPU machine whose Python has
# torch and transformers. Prepare here (the tracked tree is over the device's 64 MiB, so
# benchmarks/results travels out of the tree for the call and comes back after it):
#   mkdir -p runs/gpu21 && cp benchmarks/results/collapse/search/min_signal_groups/run_on_device.sh \
#     benchmarks/results/collapse/search/base_sft_lr2e-4/start_eval.json runs/gpu21/
# then run there: bash runs/gpu21/run_on_device.sh RUN_SECONDS
# Carried: .whl/ (Python 3.12 wheels of toolgym's other dependencies: gymnasium,
# farama-notifications, jsonschema, jsonschema-specifications, referencing, rpds-py,
# fastjsonschema, bm25s, docker), runs/lookup_sft_from_base_s0 (entry 20's start) and
# runs/gpu21/start_eval.json (entry 20's evaluation of that start, so it is not evaluated again).
# STEPS, DEVICE and SKIP_WHL exist for a dry run on the CPU.
set -u
export PYTHONUNBUFFERED=1 OMP_NUM_THREADS=1
RUN_SECONDS=${1:-480}; STEPS=${STEPS:-100}; DEVICE=${DEVICE:-cuda}
if [ -z "${SKIP_WHL:-}" ]; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
  export PYTHONPATH=/tmp/site:$PWD
  nvidia-smi -L; nproc
fi
python3 -c "import torch, transformers; print('torch', torch.__version__, 'transformers', transformers.__version__, 'cuda', torch.cuda.is_available())"
W=runs/g21
T0=$(date +%s)
for arm in none msg2; do
  mkdir -p $W/$arm/work; cp runs/gpu21/start_eval.json $W/$arm/work/
  extra=(); [ $arm = msg2 ] && extra=(--set min_signal_groups=2)
  for s in 5 6 7 8 9; do
    timeout -s INT $RUN_SECONDS python3 -m benchmarks.collapse run --configs none \
      --first-seed $s --seeds 1 --jobs 1 --threads 1 --steps $STEPS --lr 2e-4 \
      --sft runs/lookup_sft_from_base_s0/model --work-dir $W/$arm/work --out $W/$arm/out_s$s \
      --set keep_checkpoints=1 --set stop_on_collapse=true --set device=$DEVICE "${extra[@]}" \
      > $W/log_${arm}_s$s.txt 2>&1 &
  done
done
while [ -n "$(jobs -r)" ]; do
  sleep 30
  echo "t=$(( $(date +%s) - T0 ))s steps: $(for f in $W/*/work/runs/*/metrics.csv; do [ -f $f ] && echo -n "$(( $(wc -l < $f) - 1 )) "; done) $( [ -z "${SKIP_WHL:-}" ] && nvidia-smi --query-gpu=utilization.gpu,memory.used --format=csv,noheader)"
done
echo "runs ended after $(( $(date +%s) - T0 )) s"
tar czf ${OUT:-/tmp}/search21_gpu.tgz --exclude='*.safetensors' --exclude='*.pt' --exclude='*.bin' $W
ls -la ${OUT:-/tmp}
for f in $W/log_*.txt; do echo "== $f"; tail -c 300 $f; echo; done
