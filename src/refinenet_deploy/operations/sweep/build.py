"""The artifacts a sweep measures, each declared once as a ``BuildSpec``: the library call it runs here and the
``rfdeploy`` command that makes the same file elsewhere (the recommendation prints it; a device runs it).

Reuse across sizes (measured, see README "Sweep"):

- ONNX: one export with dynamic H/W, verified against PyTorch at every swept size; ONNX Runtime runs it at any size.
- OpenVINO: one IR per precision converted from that export (NNCF calibrates the INT8 one once, at the export
  size), then reshaped to each size (``backends.openvino.reshape``): measured on the README's 2-core Xeon, one
  thread, interleaved rounds (``benchmarks/sweep_openvino_shapes.py``), the reshaped static IR ran 6-16 % faster
  than the dynamic IR at 96x128, 128x160 and 192x256, FP32 and INT8; a reshape costs no conversion and no
  calibration, so converting per size would buy nothing more.
- TensorRT: one engine per size (min = opt = max). Measured with TensorRT-RTX on a CPU
  (``benchmarks/sweep_trt_profiles.py``; demo, 96x128 / 128x160 / 192x256): three static engines 2.10 s and
  42.9 MB, one engine with a profile per size 1.97 s and 17.0 MB. Build time is a wash and the smaller file only
  pays when several sizes ship together; a cell must time the single-size engine that would ship, and a context
  binds one profile at a time. Latency per profile needs a GPU: the device's ``rfdeploy sweep --resume`` builds
  and times the per-size engines.
"""

from __future__ import annotations

import shlex
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

VERIFY_IMAGES = 2  # real images the export verifies against PyTorch (besides seeded inputs at each size)


@dataclass(frozen=True)
class BuildSpec:
    """One artifact: ``run()`` makes it here; ``argv`` is the command that makes the same file."""

    argv: tuple[str, ...]
    run: Callable[[], Any]

    @property
    def command(self) -> str:
        if self.argv[:1] == ("#",):  # a note, not a command: no rfdeploy command makes this file alone
            return " ".join(self.argv)
        return " ".join(shlex.quote(a) for a in self.argv)


def _size(hw: tuple[int, int]) -> str:
    return f"{hw[0]}x{hw[1]}"


def export_spec(
    checkpoint: Path,
    out: Path,
    *,
    export_size: tuple[int, int],
    verify_sizes: tuple[tuple[int, int], ...],
    data: Path,
    rel: Callable[[Path], str],
    command: str = "",
) -> BuildSpec:
    def run() -> Any:
        from ...backends.torch.exporter import ExportSpec
        from ..export import export_onnx

        spec = ExportSpec(
            input_size=export_size,
            dynamic=True,
            verify_sizes=verify_sizes,
            data=str(data),
            num_verify_images=VERIFY_IMAGES,
            trt_check=False,  # engines are built per size, on the device
        )
        return export_onnx(checkpoint, out, spec, command=command)

    argv = (
        "rfdeploy",
        "export",
        "onnx",
        rel(checkpoint),
        "--dynamic",
        "--input-size",
        _size(export_size),
        "--data",
        rel(data),
        "-o",
        rel(out),
    )
    return BuildSpec(argv, run)


def calibrate_spec(
    onnx: Path,
    calib: Path,
    out: Path,
    *,
    num_images: int,
    producer: str,
    rel: Callable[[Path], str],
    command: str = "",
) -> BuildSpec:
    def run() -> Any:
        from ..calibrate import calibrate_onnx

        return calibrate_onnx(onnx, calib, out, num_images=num_images, producer=producer, command=command)

    argv = (
        "rfdeploy",
        "calibrate",
        rel(onnx),
        "--data",
        rel(calib),
        "--num-images",
        str(num_images),
        "--producer",
        producer,
        "-o",
        rel(out),
    )
    return BuildSpec(argv, run)


def openvino_spec(
    onnx: Path,
    out: Path,
    *,
    precision: str,
    calib: Path | None,
    num_images: int,
    rel: Callable[[Path], str],
    threads: int | None = None,
    command: str = "",
) -> BuildSpec:
    def run() -> Any:
        from ..build_openvino import convert_openvino

        kwargs: dict[str, Any] = {"data": calib, "num_images": num_images} if precision == "int8" else {}
        return convert_openvino(onnx, out, precision=precision, threads=threads, command=command, **kwargs)

    argv = ["rfdeploy", "build", "openvino", rel(onnx), "-o", rel(out)]
    if precision != "fp32":
        argv.insert(4, f"--{precision}")
    if precision == "int8" and calib is not None:
        argv[5:5] = ["--data", rel(calib), "--num-images", str(num_images)]
    return BuildSpec(tuple(argv), run)


def static_ir_spec(
    ir: Path, out: Path, *, size: tuple[int, int], rel: Callable[[Path], str], command: str = ""
) -> BuildSpec:
    """The dynamic IR ``ir`` reshaped to ``size`` and saved as ``out`` (with its sidecar): no conversion or
    calibration again. No ``rfdeploy`` command does this alone; the printed line says what a deployment does
    (``Model.reshape`` at load) and where the sweep put the file."""

    def run() -> Any:
        from ...artifacts import read_metadata, sha256_file, sidecar, staged_artifact
        from ...backends.openvino import save_ir
        from ...backends.openvino.reshape import reshape_ir

        meta = read_metadata(ir)
        model = reshape_ir(ir, size, input_format=meta.get("input_format", "nchw-float"))
        with staged_artifact(out, "reshape") as stage:
            save_ir(model, stage.model)
            keep = ("weights", "quantization", "calibration", "source_model")  # not the dynamic IR's own checks
            info = sidecar(
                "openvino",
                meta.get("precision", "fp32"),
                source=meta,
                command=command,
                packages=("openvino",),
                static_size=[size[0], size[1]],
                reshaped_from={"file": rel(ir), "sha256": sha256_file(ir)},
                **{k: meta[k] for k in keep if meta.get(k) is not None},
            )
            return stage.commit(info)

    argv = ("#", f"{rel(out)}:", rel(ir), "reshaped", f"to {_size(size)}", "(openvino Model.reshape, at load)")
    return BuildSpec(argv, run)


def engine_spec(
    onnx: Path,
    out: Path,
    *,
    precision: str,
    size: tuple[int, int],
    library: str,
    dla: bool,
    rel: Callable[[Path], str],
    command: str = "",
) -> BuildSpec:
    def run() -> Any:
        from ..build_trt import build_engine

        return build_engine(
            onnx,
            out,
            precision=precision,
            input_size=size,
            library=library,
            dla_core=0 if dla else None,
            gpu_fallback=True,
            command=command,
        )

    argv = [
        "rfdeploy",
        "build",
        "trt",
        rel(onnx),
        f"--{precision}",
        "--input-size",
        _size(size),
        "--library",
        library,
        "-o",
        rel(out),
    ]
    if dla:
        argv[-2:-2] = ["--dla-core", "0", "--gpu-fallback"]
    return BuildSpec(tuple(argv), run)


__all__ = ["BuildSpec", "calibrate_spec", "engine_spec", "export_spec", "openvino_spec", "static_ir_spec"]
