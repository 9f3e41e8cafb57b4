"""Hand-written bench and parity documents for the report tests.

These are FAKE results, labelled as such: the numbers are chosen so that the expected speed-ups are exact
(100 ms / 50 ms = 2.00x), not measured. Real bench/parity JSON is produced in tests/operations/report/test_report.py."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

XEON = {  # a CPU name with brackets and spaces: it was cut mid-word ("Intel(R) Xeon(R) Processor (")
    "cpu": "Intel(R) Xeon(R) Processor (Icelake)",
    "cpu_count": 2,
    "cpu_affinity": 2,
    "isa": ["avx2", "fma", "avx512f"],
}
GPU_HOST = {
    "cpu": "AMD EPYC 7J13 64-Core Processor",
    "cpu_count": 16,
    "cpu_affinity": 16,
    "isa": ["avx2", "fma"],
    "cuda_gpus": 1,
    "gpus": ["NVIDIA H100 80GB HBM3 (sm_90, 79.1 GiB)"],
}
JETSON = {
    "cpu": "ARMv8 Processor rev 1 (v8l)",
    "cpu_count": 6,
    "isa": ["asimd"],
    "jetson": {"model": "NVIDIA Jetson Orin Nano Developer Kit", "release": {"jetpack": "6.2"}},
}


def stats(p50: float, batch: int = 1) -> dict[str, Any]:
    return {
        "iterations": 10,
        "batch": batch,
        "mean_ms": p50,
        "p50_ms": p50,
        "p99_ms": p50 * 1.1,
        "throughput_ips": 1000.0 * batch / p50,
    }


def bench_doc(
    arch: str = "rf_lw_mbv2",
    runtime: str = "onnxruntime",
    p50: float = 50.0,
    *,
    size: tuple[int, int] = (512, 512),
    batch: int = 1,
    device: str = "cpu",
    fp: dict[str, Any] | None = None,
    precision: str = "fp32",
    artifact: str | None = None,
    classes: int = 21,
    **extra: Any,
) -> dict[str, Any]:
    """A FAKE bench document shaped like ``operations.bench.benchmark`` output (schema version 1)."""
    suffix = {"torch": ".safetensors", "onnxruntime": ".onnx", "openvino": ".xml", "tensorrt": ".engine"}[runtime]
    doc: dict[str, Any] = {
        "schema": "refinenet-deploy/bench",
        "schema_version": 1,
        "created": "2026-03-01T10:00:00+00:00",
        "tool_version": "0.1.0",
        "artifact": artifact or f"/runs/{arch}_{size[0]}{suffix}",
        "runtime": runtime,
        "device": device,
        "precision": precision,
        "runtime_precision": None,
        "arch": arch,
        "num_classes": classes,
        "input_size": list(size),
        "batch": batch,
        "compute_only": stats(p50, batch),
        "fingerprint": dict(fp if fp is not None else XEON),
    }
    doc.update(extra)
    return doc


def parity_doc(artifact: str, *, passed: bool = True, runtime: str = "onnxruntime", **extra: Any) -> dict[str, Any]:
    """A FAKE parity document with the fields ``ParityReport.to_dict`` writes that the report reads."""
    doc: dict[str, Any] = {
        "schema": "refinenet-deploy/parity",
        "schema_version": 1,
        "passed": passed,
        "failed_gates": [] if passed else ["mIoU drop 1.400 pt > 1.0 pt"],
        "gates": {"max_miou_drop": 1.0, "min_agreement": 0.98},
        "precision": "fp32",
        "num_images": 50,
        "num_classes": 21,
        "miou_drop_points": 0.05 if passed else 1.4,
        "pixel_agreement": 0.9991,
        "policy": {"static_size": None},
        "created": "2026-03-02T09:00:00+00:00",
        "tool_version": "0.1.0",
        "checkpoint": "/ckpt/rf_lw_mbv2_voc.safetensors",
        "checkpoint_sha256": "ab" * 32,
        "arch": "rf_lw_mbv2",
        "artifact": artifact,
        "runtime": runtime,
        "device": "cpu",
        "runtime_precision": None,
        "data": "/data/voc",
        "split": "val",
    }
    doc.update(extra)
    return doc


def write_docs(root: Path, *docs: Any) -> list[Path]:
    """Write documents (dicts, or raw text) as JSON files ``00.json``, ``01.json``... in ``root``."""
    root.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, doc in enumerate(docs):
        path = root / f"{i:02d}.json"
        path.write_text(doc if isinstance(doc, str) else json.dumps(doc))
        paths.append(path)
    return paths
