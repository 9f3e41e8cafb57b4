#!/usr/bin/env bash
# The device check for an NVIDIA GPU machine (issue 21), sized to finish in about five minutes on a stock machine
# (python3 with PyTorch + CUDA, cuda-bindings, onnx, onnxruntime, nvidia-ml-py; nothing installed by this script).
#
#   bash benchmarks/gpu_check.sh [BUNDLE]
#
# 1. the gpu-marked tests (they skip with a reason what the machine lacks: TensorRT, onnxsim, ...);
# 2. the PyTorch bench matrix (fp32/tf32/fp16/bf16, eager and CUDA graph, fp16 torch.compile) for rf_lw50 and
#    rf_lw_mbv2 at 512x512, and the hand-written CUDA-graph loop as cross-check (benchmarks/gpu_matrix.py);
# 3. `rfdeploy pipeline --resume BUNDLE` of a bundle with gpu-torch targets made on a CPU host (if BUNDLE is given):
#    the gpu-torch-fp16 target and the same-GPU PyTorch baselines run here.
# Results go to $RESULTS (default benchmarks/results/): gpu_machine.txt, gpu_tests.log, gpu_matrix.json,
# gpu_matrix.log, gpu_bench_cli.json, gpu_pipeline.log and the bundle's report (gpu_pipeline_report.md). Each part runs even if an earlier one failed; the exit code is the
# first failure's.
set -uo pipefail
cd "$(dirname "$0")/.."
RESULTS=${RESULTS:-benchmarks/results}
PY=${PYTHON:-python3}
mkdir -p "$RESULTS"
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
status=0
note() { echo "== $* ($(date -u +%H:%M:%S))"; }

note "machine"
nvidia-smi --query-gpu=name,driver_version,compute_cap,clocks.sm,clocks.max.sm,temperature.gpu,power.draw \
  --format=csv 2>&1 | tee "$RESULTS/gpu_machine.txt"
$PY -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda, 'cudnn', torch.backends.cudnn.version())" \
  | tee -a "$RESULTS/gpu_machine.txt"

note "gpu-marked tests"
$PY -m pytest -m gpu -q -rs -p no:cacheprovider --continue-on-collection-errors tests 2>&1 \
  | tee "$RESULTS/gpu_tests.log"
rc=${PIPESTATUS[0]}; [ "$rc" -ne 0 ] && [ "$status" -eq 0 ] && status=$rc

note "bench matrix and the hand-written CUDA-graph cross-check"
CKPT_DIR=${CKPT_DIR:-/tmp/rfdeploy_gpu_matrix}
$PY benchmarks/gpu_matrix.py --out "$RESULTS/gpu_matrix.json" --ckpt-dir "$CKPT_DIR" ${MATRIX_ARGS:-} 2>&1 \
  | tee "$RESULTS/gpu_matrix.log"
rc=${PIPESTATUS[0]}; [ "$rc" -ne 0 ] && [ "$status" -eq 0 ] && status=$rc

note "the CLI line of the issue"
ckpt="$CKPT_DIR/rf_lw50.safetensors"
if [ -f "$ckpt" ]; then
  $PY -m refinenet_deploy bench "$ckpt" --device gpu --input-size 512x512 --precision fp16 --cuda-graph \
    --json "$RESULTS/gpu_bench_cli.json" 2>&1 | tee -a "$RESULTS/gpu_matrix.log"
  rc=${PIPESTATUS[0]}; [ "$rc" -ne 0 ] && [ "$status" -eq 0 ] && status=$rc
fi

if [ $# -ge 1 ]; then
  note "pipeline --resume $1"
  $PY -m refinenet_deploy pipeline --resume "$1" 2>&1 | tee "$RESULTS/gpu_pipeline.log"
  rc=${PIPESTATUS[0]}; [ "$rc" -ne 0 ] && [ "$status" -eq 0 ] && status=$rc
  cp "$1/report.md" "$RESULTS/gpu_pipeline_report.md" 2>/dev/null
fi
note "done: exit $status"
exit $status
