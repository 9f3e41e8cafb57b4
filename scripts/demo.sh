#!/usr/bin/env bash
# The main job on the bundled demo model (run by `make demo`, which sets up .venv first).
# Each step is one rfdeploy command; outputs land in $DEMO_OUT (default: demo-out/).
set -euo pipefail
cd "$(dirname "$0")/.."
OUT="${DEMO_OUT:-demo-out}"
CKPT="demo/rf_lw_mbv2_synth.safetensors"
rm -rf "$OUT"
mkdir -p "$OUT"
step() { printf '\n\033[1m== %s\033[0m\n$ %s\n' "$1" "${*:2}"; "${@:2}"; }

step "1. The model zoo (Light-Weight RefineNet)" rfdeploy models 'rf_lw*'
step "2. The bundled demo checkpoint loads strictly" rfdeploy inspect "$CKPT"
step "3. A fresh synthetic validation split (seed 7: never seen in training)" \
  rfdeploy data synth "$OUT/val" --num 100 --size 128x128 --seed 7 --split val
step "4. PyTorch accuracy on it" rfdeploy evaluate "$CKPT" --data "$OUT/val"
step "5. ONNX with dynamic H/W, verified against PyTorch at 128x128, 375x500, 468x625 and on real images" \
  rfdeploy export onnx "$CKPT" --dynamic --input-size 128x128 --data "$OUT/val" -o "$OUT/rf_lw_mbv2_synth.onnx"
step "6. Camera-ready ONNX: RGB uint8 frames in, uint8 class map out" \
  rfdeploy export onnx "$CKPT" --input-format nhwc-uint8 --head argmax --input-size 128x128 \
  -o "$OUT/rf_lw_mbv2_synth_cam.onnx"
step "7. Parity: does the ONNX model still segment like PyTorch? (gates, per-class IoU, worst images)" \
  rfdeploy parity "$CKPT" "$OUT/rf_lw_mbv2_synth.onnx" --data "$OUT/val" --json "$OUT/parity-onnx.json" \
  --markdown "$OUT/parity-onnx.md" --save-worst 3 "$OUT/worst"
step "8. INT8 for TensorRT/ONNX Runtime: a Q/DQ ONNX calibrated on 100 synthetic images (seed 11, not the val split)" \
  rfdeploy data synth "$OUT/calib" --num 100 --size 128x128 --seed 11 --split train
step "" rfdeploy calibrate "$OUT/rf_lw_mbv2_synth.onnx" --data "$OUT/calib" --num-images 100 \
  -o "$OUT/rf_lw_mbv2_synth.int8.onnx"
step "9. OpenVINO IR: FP32, and INT8 quantized by NNCF on the same calibration images" \
  rfdeploy build openvino "$OUT/rf_lw_mbv2_synth.onnx" -o "$OUT/rf_lw_mbv2_synth.xml"
step "" rfdeploy build openvino "$OUT/rf_lw_mbv2_synth.onnx" --int8 --data "$OUT/calib" --num-images 100 \
  -o "$OUT/rf_lw_mbv2_synth.int8.xml"
step "10. INT8 parity against PyTorch (Q/DQ ONNX in ONNX Runtime; NNCF IR in OpenVINO)" \
  rfdeploy parity "$CKPT" "$OUT/rf_lw_mbv2_synth.int8.onnx" --data "$OUT/val" --json "$OUT/parity-int8-onnx.json"
step "" rfdeploy parity "$CKPT" "$OUT/rf_lw_mbv2_synth.int8.xml" --data "$OUT/val" --json "$OUT/parity-int8-ov.json"
step "11. TensorRT engines of the demo model, built without a GPU (TensorRT-RTX): FP16, and INT8 from the Q/DQ ONNX" \
  rfdeploy build trt "$OUT/rf_lw_mbv2_synth.onnx" --fp16 --layer-report "$OUT/layers-fp16.json" \
  -o "$OUT/rf_lw_mbv2_synth.rtx.fp16.engine"
step "" rfdeploy build trt "$OUT/rf_lw_mbv2_synth.int8.onnx" --int8 --layer-report "$OUT/layers-int8.json" \
  -o "$OUT/rf_lw_mbv2_synth.rtx.int8.engine"
step "    layer precisions of the INT8 engine (parsed network: no GPU here to inspect the engine)" \
  python -c "import json,sys; r=json.load(open(sys.argv[1])); print(r['source'], json.dumps(r['summary']))" \
  "$OUT/layers-int8.json"
step "12. Latency on this CPU at 256x256: PyTorch eager, ONNX Runtime, OpenVINO f32 and INT8 (compute-only)" \
  rfdeploy bench "$CKPT" --input-size 256x256 --warmup 3 --iterations 20 --json "$OUT/bench-torch.json"
step "" rfdeploy bench "$OUT/rf_lw_mbv2_synth.onnx" --input-size 256x256 --warmup 3 --iterations 20 --end-to-end \
  --json "$OUT/bench-onnx.json"
step "" rfdeploy bench "$OUT/rf_lw_mbv2_synth.xml" --input-size 256x256 --warmup 3 --iterations 20 \
  --json "$OUT/bench-ov-f32.json"
step "" rfdeploy bench "$OUT/rf_lw_mbv2_synth.int8.xml" --input-size 256x256 --warmup 3 --iterations 20 \
  --json "$OUT/bench-ov-int8.json"
step "13. One report across runs (add files from other devices to compare them)" \
  rfdeploy report "$OUT"/bench-*.json "$OUT"/parity-*.json -o "$OUT/report.html"
printf '\nDemo artifacts in %s/:\n' "$OUT"
ls -l "$OUT"
