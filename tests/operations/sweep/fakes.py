"""Labelled fakes for the sweep's own logic (planning, keys, resume, merge, report): no model is built or timed.

``FakeBuilds`` replaces the build specs with ones that write a small file; ``FakeMeasure`` replaces the cell
measurement with scripted numbers (mIoU rises with the size, latency with the pixels; INT8 is faster and a little
less accurate) and can raise inside a chosen call to simulate a run killed mid-way."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from refinenet_deploy.operations.pipeline import capabilities as caps
from refinenet_deploy.operations.sweep import build as build_mod
from refinenet_deploy.operations.sweep import measure as measure_mod
from refinenet_deploy.results.sweep import CellMeasurement


class Killed(RuntimeError):
    """What the fake raises to simulate a run killed inside a step."""


def _fake_spec(argv: tuple[str, ...], outputs: list[Path], what: str) -> build_mod.BuildSpec:
    def run() -> None:
        for out in outputs:
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_text(f"fake {what}\n")

    return build_mod.BuildSpec(argv, run)


class FakeBuilds:
    def __init__(self, monkeypatch: Any) -> None:
        self.calls: list[str] = []
        for name in ("export_spec", "calibrate_spec", "openvino_spec", "static_ir_spec", "engine_spec"):
            monkeypatch.setattr(build_mod, name, self._make(name, getattr(build_mod, name)))

    def _make(self, name: str, real: Any) -> Any:
        def spec(*args: Any, **kwargs: Any) -> build_mod.BuildSpec:
            argv = real(*args, **kwargs).argv  # the real command, a fake action
            out = args[-1] if name != "export_spec" else args[1]
            out = Path(out)
            outputs = [
                out,
                out.with_name(out.stem + ".meta.json") if out.suffix == ".onnx" else Path(f"{out}.meta.json"),
            ]
            if out.suffix == ".xml":
                outputs.append(out.with_suffix(".bin"))
            if name == "calibrate_spec":
                from refinenet_deploy.operations.calibrate import calibration_manifest_path

                outputs.append(calibration_manifest_path(out))
            inner = _fake_spec(argv, outputs, name)

            def run() -> None:
                self.calls.append(f"{name}:{out.name}")
                inner.run()

            return build_mod.BuildSpec(argv, run)

        return spec


MIOU = {96: 0.70, 128: 0.80, 160: 0.82, 192: 0.86, None: 0.90}


class FakeMeasure:
    def __init__(self, monkeypatch: Any, kill_at: int | None = None) -> None:
        self.calls: list[str] = []
        self.kill_at = kill_at
        monkeypatch.setattr(measure_mod, "measure_cell", self)

    def __call__(self, artifact: Path, *, device: str, size: tuple[int, int] | None, **_: Any) -> CellMeasurement:
        self.calls.append(f"{artifact.name}@{size}")
        if self.kill_at is not None and len(self.calls) == self.kill_at:
            raise Killed(f"killed inside the measurement of {artifact.name} at {size}")
        h, w = size or (192, 256)
        int8 = "int8" in str(artifact)
        miou = MIOU.get(size[0] if size else None, 0.8) - (0.004 if int8 else 0.0)
        latency = h * w / 1000 * (0.4 if int8 else 1.0) * (0.5 if device == "gpu" else 1.0)
        return CellMeasurement.from_dict(  # checked as the real cell files are
            {
                "input_size": [h, w],
                "num_images": 2,
                "miou": miou,
                "pixel_accuracy": 0.95,
                "iou": [miou, miou],
                "class_names": ["a", "b"],
                "latency": {"p50_ms": latency, "p99_ms": latency * 1.2, "iterations": 5},
                "model_bytes": 1000,
                "peak_memory_mib": 100.0 if device == "gpu" else None,
                "peak_memory": "100 MiB on the device" if device == "gpu" else measure_mod.PEAK_MEMORY_NOT_MEASURED,
            },
            "fake measurement",
        )


class DeviceHere(caps.Capabilities):
    """A fake machine that can build and run every target (the GPU box a pending sweep is resumed on)."""

    def why_cannot_build(self, t: Any) -> str | None:
        return None

    def why_cannot_run(self, t: Any) -> str | None:
        return None


def cpu_only() -> caps.Capabilities:
    """A fake machine with no GPU: device targets stay pending."""
    return caps.Capabilities(
        gpus=(), jetson=False, tensorrt=False, tensorrt_rtx=False, cuda_python=False, openvino=True, torch=True
    )


def device_here() -> DeviceHere:
    return DeviceHere(
        gpus=({"name": "fake"},),
        jetson=False,
        tensorrt=True,
        tensorrt_rtx=False,
        cuda_python=True,
        openvino=True,
        torch=True,
    )


def cells_of(folder: Path) -> list[dict[str, Any]]:
    """The cells of sweep.json without what differs between runs (none of the fakes' numbers do)."""
    return json.loads((folder / "sweep.json").read_text())["cells"]
