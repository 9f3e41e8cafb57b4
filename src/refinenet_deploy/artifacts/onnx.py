"""Reading ONNX files with the core ``onnx`` package only (no backend): parsing, the graph checks an image model
must pass, external data files, copying a model with its data, and the precision a graph itself shows."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ..enums import Precision
from ..errors import InvalidModelError, printable, regular_file, write_failed
from .inputs import MAX_SIDE, MIN_SIDE


def load_onnx(path: str | Path) -> Any:
    """Parse an ONNX file (no external data) into a ModelProto; InvalidModelError (exit 5) naming the file if it
    is not one: truncated, random bytes, another format, or a protobuf that holds no graph."""
    import onnx

    path = Path(path)
    if not path.exists() and not path.is_symlink():
        raise InvalidModelError(f"model file not found: {printable(path)}. Check the path")
    regular_file(path, "model file")
    try:
        model = onnx.load(str(path), load_external_data=False)
    except PermissionError as exc:
        raise InvalidModelError(f"cannot read {printable(path)}: permission denied. Check its permissions") from exc
    except Exception as exc:  # DecodeError, RuntimeError, OSError ...: not an ONNX model
        raise InvalidModelError(
            f"cannot read {printable(path)} as an ONNX model ({type(exc).__name__}); the file is truncated, corrupt or "
            "another format. Pass a .onnx written by 'rfdeploy export onnx' or 'rfdeploy calibrate'"
        ) from exc
    if not model.HasField("graph") or not model.graph.node:
        raise InvalidModelError(
            f"{path} holds no ONNX graph (empty or not an ONNX model). Pass a .onnx written by 'rfdeploy export onnx'"
        )
    return model


def _dims(value_info: Any) -> list[int | str | None] | None:
    """The shape of a graph input/output: ints (static), strings (symbolic), None (unknown); None if no shape."""
    tensor = value_info.type.tensor_type
    if not value_info.type.HasField("tensor_type") or not tensor.HasField("shape"):
        return None
    out: list[int | str | None] = []
    for d in tensor.shape.dim:
        if d.HasField("dim_value"):
            out.append(int(d.dim_value))
        elif d.HasField("dim_param"):
            out.append(d.dim_param)
        else:
            out.append(None)
    return out


def check_onnx_graph(model: Any, path: str | Path) -> None:
    """Refuse (InvalidModelError, exit 5, with the reason) a graph this tool cannot run as an image model: no
    input, more than one, an input that is not a rank-4 float/uint8 image tensor with 3 colour channels, static
    sides outside ``MIN_SIDE..MAX_SIDE`` or a non-positive dimension, no output, or an output of rank other than 3-4.
    Symbolic (dynamic) dimensions are fine."""
    import onnx

    name = Path(path).name
    initializers = {t.name for t in model.graph.initializer}
    inputs = [i for i in model.graph.input if i.name not in initializers]
    if not inputs:
        raise InvalidModelError(f"{name} has no graph input. Pass an image model exported by 'rfdeploy export onnx'")
    if len(inputs) > 1:
        raise InvalidModelError(
            f"{name} has {len(inputs)} graph inputs ({', '.join(i.name for i in inputs[:4])}); an image model "
            "has one. Pass a model exported by 'rfdeploy export onnx'"
        )
    inp = inputs[0]
    elem = inp.type.tensor_type.elem_type if inp.type.HasField("tensor_type") else 0
    if elem not in (onnx.TensorProto.FLOAT, onnx.TensorProto.FLOAT16, onnx.TensorProto.UINT8):
        raise InvalidModelError(
            f"{name}: input {inp.name!r} is not a float or uint8 tensor. Pass an image model exported by "
            "'rfdeploy export onnx'"
        )
    dims = _dims(inp)
    if dims is None or len(dims) != 4:
        rank = "unknown" if dims is None else str(len(dims))
        raise InvalidModelError(
            f"{name}: input {inp.name!r} has rank {rank}; an image model takes a rank-4 tensor "
            "(N, 3, H, W) or (N, H, W, 3)"
        )
    bad = [d for d in dims if isinstance(d, int) and d <= 0]
    if bad:
        raise InvalidModelError(f"{name}: input {inp.name!r} has a non-positive dimension {dims}")
    if dims[1] == 3 or (dims[3] != 3 and not isinstance(dims[1], int)):
        hw = dims[2:4]
    elif dims[3] == 3:
        hw = dims[1:3]
    else:
        raise InvalidModelError(f"{name}: input {inp.name!r} {dims} has no 3-channel (RGB) axis")
    for d in hw:
        if isinstance(d, int) and not MIN_SIDE <= d <= MAX_SIDE:
            raise InvalidModelError(
                f"{name}: input {inp.name!r} {dims} has a side of {d} pixels; supported: {MIN_SIDE}..{MAX_SIDE}"
            )
    if not model.graph.output:
        raise InvalidModelError(f"{name} has no graph output. Pass a model exported by 'rfdeploy export onnx'")
    for o in model.graph.output:
        odims = _dims(o)
        if odims is not None and len(odims) not in (3, 4):
            raise InvalidModelError(
                f"{name}: output {o.name!r} has rank {len(odims)}; a segmentation model outputs rank 3 or 4"
            )


def _graph_tensors(graph: Any) -> Iterator[Any]:
    """Every tensor of a graph that may hold its data outside the file: initializers and tensor attributes, in
    subgraphs too."""
    yield from graph.initializer
    for node in graph.node:
        for attr in node.attribute:
            if attr.HasField("t"):
                yield attr.t
            yield from attr.tensors
            if attr.HasField("g"):
                yield from _graph_tensors(attr.g)
            for g in attr.graphs:
                yield from _graph_tensors(g)


def external_data_files(model: Any, path: str | Path) -> list[Path]:
    """The external data files an ONNX model (parsed without them) refers to, as paths beside ``path``, each once,
    in order. A location that is absolute or leaves the model's folder is refused (InvalidModelError, exit 5)."""
    import onnx

    folder = Path(path).parent
    seen: dict[str, Path] = {}
    for tensor in _graph_tensors(model.graph):
        if tensor.data_location != onnx.TensorProto.EXTERNAL:
            continue
        location = next((e.value for e in tensor.external_data if e.key == "location"), "")
        if location in seen:
            continue
        rel = Path(location)
        if not location or rel.is_absolute() or ".." in rel.parts:
            raise InvalidModelError(
                f"{printable(Path(path).name)}: tensor {printable(tensor.name)!r} keeps its data at "
                f"{printable(location)!r}, outside the model's folder. Re-export the model with its data beside it"
            )
        seen[location] = folder / rel
    return list(seen.values())


def check_external_data(model: Any, path: str | Path) -> list[Path]:
    """Refuse (InvalidModelError, exit 5, naming it) a model whose external data file (large exports keep their
    weights in ``model.onnx.data``) is missing or not a regular file; returns the files."""
    files = external_data_files(model, path)
    for data in files:
        if not data.exists() and not data.is_symlink():
            raise InvalidModelError(
                f"the external data file {printable(data)} of {printable(Path(path).name)} is missing. Keep it beside "
                "the model under the name the model records (copy or move the .onnx and its data together)"
            )
        regular_file(data, "external data file")
    return files


INLINE_LIMIT_BYTES = (2 << 30) - (64 << 20)  # a serialized ONNX protobuf holds at most 2 GiB


def copy_model_files(model: str | Path, dest: str | Path, proto: Any | None = None) -> Path:
    """Copy an ONNX model and the external data files it refers to (same relative names) to ``dest`` (a path in a
    staging folder), so a tool reading the copy finds its weights; a model with external data that fits in one
    protobuf is saved with its weights inline instead. A missing data file is exit 5; a copy the
    environment refuses is ``OutputWriteError`` (exit 2) naming the file."""
    import onnx

    model, dest = Path(model), Path(dest)
    files = check_external_data(proto if proto is not None else load_onnx(model), model)
    if files and model.stat().st_size + sum(f.stat().st_size for f in files) < INLINE_LIMIT_BYTES:
        # small enough for one protobuf: the copy holds its weights (ONNX Runtime's shape inference and its
        # quantization tools cannot read small external tensors such as a Resize's scales)
        try:
            full = onnx.load(str(model), load_external_data=True)
        except Exception as exc:
            raise InvalidModelError(
                f"cannot read {printable(model)} with its external data ({type(exc).__name__}: "
                f"{printable(str(exc))[:160]}). Check the model and its data files"
            ) from exc
        try:
            onnx.save(full, str(dest))
        except OSError as exc:
            raise write_failed(dest, exc) from exc
        return dest
    pairs = [(model, dest)] + [(f, dest.parent / f.relative_to(model.parent)) for f in files]
    for src, target in pairs:
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src, target)
        except OSError as exc:
            if exc.filename == str(src) and exc.filename2 is None:
                raise InvalidModelError(f"cannot read {printable(src)}: {exc.strerror}. Check the file") from exc
            raise write_failed(target, exc) from exc
    return dest


def onnx_precision(model: Any) -> Precision:
    """Precision from an ONNX graph itself: Q/DQ nodes -> int8, FP16 initializers -> fp16, else fp32."""
    import onnx

    if any(n.op_type in ("QuantizeLinear", "DequantizeLinear") for n in model.graph.node):
        return Precision.INT8
    if any(t.data_type == onnx.TensorProto.FLOAT16 for t in model.graph.initializer):
        return Precision.FP16
    return Precision.FP32
