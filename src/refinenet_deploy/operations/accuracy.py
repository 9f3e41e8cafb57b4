"""Accuracy of a candidate INT8 model against its FP32 ONNX, for calibration's fallback search and NNCF's
accuracy control: the FP32 model runs once per image in ONNX Runtime (outputs remembered), the candidate is
compared through the parity engine (identical upsampling, then argmax)."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import numpy as np

from ..artifacts import InputPolicy, read_metadata
from ..backends.onnxruntime import OnnxRuntimeRunner
from ..backends.openvino.runner import CompiledModelRunner
from ..calibration.fallback import Score
from ..data.datasets import open_dataset
from ..data.preprocessing import resize_image
from ..errors import CalibrationError
from ..validate.parity_engine import ParityEngine


class MemoRunner:
    """Wraps a runner; remembers outputs per input (the FP32 reference is run once per image)."""

    def __init__(self, runner: Any, budget_bytes: int = 1 << 30) -> None:
        self.runner, self.budget = runner, budget_bytes
        self._cache: dict[tuple, dict[str, np.ndarray]] = {}
        self._bytes = 0

    def infer(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        key = tuple(
            (k, v.shape, hashlib.sha1(np.ascontiguousarray(v).tobytes()).hexdigest()) for k, v in sorted(inputs.items())
        )
        hit = self._cache.get(key)
        if hit is not None:
            return hit
        out = self.runner.infer(inputs)
        size = sum(v.nbytes for v in out.values())
        if self._bytes + size <= self.budget:
            self._cache[key] = out
            self._bytes += size
        return out


class OnnxReference:
    """The FP32 ONNX model as the reference of an accuracy check: run once per image in ONNX Runtime (outputs
    remembered), with the preprocessing and input policy of its metadata; ``engine(backend)`` is a parity
    engine comparing a candidate with it (identical upsampling, then argmax)."""

    def __init__(self, fp32_path: Any, meta: dict[str, Any] | None = None, threads: int | None = None) -> None:
        meta = meta if meta is not None else read_metadata(fp32_path)
        if not meta.get("num_classes"):
            raise CalibrationError(
                f"{fp32_path} has no num_classes in its metadata. Use the .onnx written by "
                "'rfdeploy export onnx', with its .meta.json"
            )
        self.num_classes = int(meta["num_classes"])
        self.runner = OnnxRuntimeRunner(
            Path(fp32_path) if not isinstance(fp32_path, bytes) else fp32_path, threads=threads
        )
        self.runner.activate()
        self.memo = MemoRunner(self.runner)
        spec = self.runner.input_specs[0]
        self.policy = InputPolicy.from_metadata(meta).for_input(spec.name, spec.shape)

    def engine(self, backend: Any) -> ParityEngine:
        return ParityEngine(
            self.memo,
            backend,
            num_classes=self.num_classes,
            class_names=[str(i) for i in range(self.num_classes)],
            policy=self.policy,
            precision="int8",
        )

    def model_input(self, image: np.ndarray) -> np.ndarray:
        """The input array for one image, as the engine builds it (static-size resize, preprocessing)."""
        size = self.policy.static_size
        return self.policy.to_input(resize_image(image, size) if size else image, batch=1)

    def close(self) -> None:
        self.runner.deactivate()


class MiouDropEvaluator:
    """``evaluate(model) -> Score``: a candidate Q/DQ model against the FP32 ONNX on validation images, both in
    ONNX Runtime (the FP32 outputs are computed once)."""

    def __init__(
        self,
        fp32_path: Any,
        data: Any,
        *,
        meta: dict[str, Any] | None = None,
        num_images: int = 100,
        split: str | None = None,
        threads: int | None = None,
    ) -> None:
        self.dataset = open_dataset(data, split=split)
        self.count = min(num_images, len(self.dataset))
        self.threads = threads
        self.reference = OnnxReference(fp32_path, meta, threads=threads)
        labelled = all(s.label_path is not None for s in self.dataset.samples[: self.count])
        self.metric = (
            "FP32 mIoU - INT8 mIoU vs ground truth (points)"
            if labelled
            else "100 x (1 - agreement mIoU of INT8 vs FP32)"
        )

    def __call__(self, model: Any) -> Score:
        with OnnxRuntimeRunner(model.SerializeToString(), threads=self.threads) as candidate:
            engine = self.reference.engine(candidate)
            for i in range(self.count):
                sample, image, label = self.dataset[i]
                engine.add(sample.name, image, label)
            report = engine.report()
        disagreement = float((1.0 - report.agreement.miou) * 100)
        drop = report.miou_drop_points
        return Score(float(drop) if drop is not None else disagreement, disagreement)

    def close(self) -> None:
        self.reference.close()


class MiouMetric:
    """``validation_fn`` for NNCF: mIoU (points) of a compiled model on (name, image, label) items."""

    def __init__(self, fp32_onnx: str | Path, meta: dict[str, Any], threads: int | None = None) -> None:
        self.reference = OnnxReference(Path(fp32_onnx), meta, threads=threads)
        self.labelled: bool | None = None

    @property
    def name(self) -> str:
        return (
            "mIoU vs ground truth (points)"
            if self.labelled
            else "agreement mIoU with the FP32 ONNX predictions (points)"
        )

    def __call__(self, compiled: Any, items: Any) -> float:
        engine = self.reference.engine(CompiledModelRunner(compiled))
        for name, image, label in items:
            engine.add(name, image, label)
        report = engine.report()
        self.labelled = report.has_labels
        value = report.backend_miou if report.has_labels else report.agreement.miou
        return float(value) * 100

    def model_input(self, item: tuple) -> np.ndarray:
        """NNCF's transform_fn for a validation item."""
        return self.reference.model_input(item[1])

    def close(self) -> None:
        self.reference.close()
