"""The bench result document: its schema, the labels a row shows, the device-side statistics."""

from __future__ import annotations

from typing import Any

from ...validate.latency import latency_stats

BENCH_SCHEMA = "refinenet-deploy/bench"
# 2: artifact_precision/inference_precision, peak_probe object, input_size_source
# 3: the steady-state protocol (protocol.warmup), timing_stability, device_state, PyTorch's cuda_graph /
#    cudnn_benchmark / compile_mode in runtime_config, fraction_of_peak never over 1
BENCH_SCHEMA_VERSION = 3


def precision_label(result: dict[str, Any]) -> str:
    """What a result's row says about precision, without contradiction: ``int8 artifact, float parts fp32``,
    ``fp16 artifact, ran fp32``, ``fp16, channels-last, compiled`` (PyTorch), or just ``fp32``."""
    artifact, ran = result.get("artifact_precision"), result.get("inference_precision")
    config = result.get("runtime_config") or {}
    if result.get("runtime") == "torch":
        label = ran or "fp32"
        extras = [
            name
            for key, name in (
                ("channels_last", "channels-last"),
                ("cuda_graph", "CUDA graph"),
                ("compiled", "compiled"),
            )
            if config.get(key)
        ]
        if config.get("compile_mode") not in (None, "default"):
            extras.append(str(config["compile_mode"]))
        return ", ".join([label, *extras])
    fallback = result.get("precision_fallback")
    note = f" ({fallback['requested']} requested, not available)" if fallback else ""
    if artifact == "int8":
        return "int8 artifact" + (f", float parts {ran}" if ran else "") + note
    if ran and artifact and ran != artifact:
        return f"{artifact} artifact, ran {ran}{note}"
    return str(artifact or ran or "precision not recorded") + note


def device_stats(device_times_ms: list[float] | None, timed: int, batch: int) -> dict[str, Any] | None:
    """Latency statistics of the GPU-side times (CUDA events) of the last ``timed`` inferences.

    GPU runners record one time per ``infer``; the first ones belong to the warm-up and are dropped, so
    these are the same iterations as the host-side compute-only numbers."""
    if not device_times_ms or len(device_times_ms) < timed:
        return None
    ns = [int(t * 1e6) for t in device_times_ms[-timed:]]
    return {
        **latency_stats(ns, batch=batch).to_dict(),
        "clock": "CUDA events around the model/engine on its stream (excludes host copies)",
    }
