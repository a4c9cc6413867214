#!/bin/bash
# Entry 17 of the collapse search on the device machine: seeds 0-4 in parallel, one process each,
# model on the GPU. Run from the repository root on a GPU machine whose Python has torch and
# transformers, as: bash run_on_device.sh RUN_SECONDS "SEEDS" (the second try: 450 "0 1").
# .whl/ holds Python 3.12 wheels of toolgym's other dependencies (gymnasium, farama-notifications,
# jsonschema, jsonschema-specifications, referencing, rpds-py, fastjsonschema, bm25s, docker),
# fetched elsewhere with `pip download --only-binary=:all: --python-version 3.12`; and
# runs/search17g/work/start_eval.json came from the first try (so the start is not evaluated again).
set -u
export PYTHONUNBUFFERED=1
RUN_SECONDS=${1:-480}; SEEDS=${2:-0 1 2 3 4}
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH=/tmp/site:$PWD
nvidia-smi -L; nproc
python3 -c "import torch, transformers; print('torch', torch.__version__, 'transformers', transformers.__version__, 'cuda', torch.cuda.is_available())"
mkdir -p runs
timeout 90 python3 -m pytest -q -p no:cacheprovider tests/train/test_devices.py > runs/device_tests.txt 2>&1; tail -2 runs/device_tests.txt
T0=$(date +%s)
for s in $SEEDS; do
  timeout -s INT $RUN_SECONDS python3 -m benchmarks.collapse run --env ToolGym/Calc-v0 --configs none \
    --first-seed $s --seeds 1 --jobs 1 --threads 6 --steps 60 --lr 1e-4 \
    --sft benchmarks/results/collapse/search/calc_start/model \
    --work-dir runs/search17g/work --out runs/search17g/out_none_s$s \
    --set keep_checkpoints=1 --set stop_on_collapse=true --set temperature=1.5 --set device=cuda \
    > runs/log_s$s.txt 2>&1 &
done
while [ -n "$(jobs -r)" ]; do
  sleep 30
  echo "t=$(( $(date +%s) - T0 ))s steps: $(for f in runs/search17g/work/runs/*/metrics.csv; do [ -f $f ] && echo -n "$(( $(wc -l < $f) - 1 )) "; done) $(nvidia-smi --query-gpu=utilization.gpu,memory.used --format=csv,noheader)"
done
echo "runs ended after $(( $(date +%s) - T0 )) s"
tail -3 runs/device_tests.txt
tar czf $OUT/search17_gpu.tgz --exclude='*.safetensors' --exclude='*.pt' --exclude='*.bin' runs/
ls -la $OUT
for s in 0 1 2 3 4; do echo "== s$s"; tail -c 600 runs/log_s$s.txt; done
