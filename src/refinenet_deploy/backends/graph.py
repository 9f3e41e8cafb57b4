"""ONNX graph transforms shared by the builders (no runtime needed): FP16 conversion with FP32 inputs and outputs.

Used by the torch exporter (``export onnx --fp16``) and by ``build trt --fp16`` when it is given an FP32 ONNX:
TensorRT 11 and TensorRT-RTX take precision from the ONNX graph, so an FP16 engine needs an FP16 ONNX.
"""

from __future__ import annotations

import warnings
from typing import Any

from .._optional import require
from ..errors import ExportError


def _preprocessing_nodes(model: Any) -> list[str]:
    """Nodes between the graph input and the first Conv: the in-graph uint8 -> float normalisation."""
    inputs = {i.name for i in model.graph.input}
    reached, names = set(inputs), []
    for node in model.graph.node:  # graph nodes are topologically sorted
        if node.op_type == "Conv":
            break
        if any(i in reached for i in node.input):
            names.append(node.name)
            reached.update(node.output)
    return names


def _ensure_float32_outputs(model: Any) -> None:
    """Append Cast(to FLOAT) to any FP16 graph output (the converter leaves some behind, e.g. after Resize)."""
    import onnx
    from onnx import TensorProto, helper

    for out in model.graph.output:
        if out.type.tensor_type.elem_type != TensorProto.FLOAT16:
            continue
        inner = out.name + "_fp16"
        for node in model.graph.node:
            node.output[:] = [inner if o == out.name else o for o in node.output]
        model.graph.node.append(
            helper.make_node("Cast", [inner], [out.name], to=TensorProto.FLOAT, name=f"{out.name}_to_float32")
        )
        out.type.tensor_type.elem_type = TensorProto.FLOAT
    onnx.checker.check_model(model)


def to_fp16(model: Any) -> Any:
    """Float tensors to FP16 with FP32 inputs/outputs. Resize (and the converter's other unsafe ops) and the
    in-graph input normalisation stay FP32."""
    float16 = require("onnxconverter_common.float16", package="onnxconverter-common")
    try:
        with warnings.catch_warnings():  # "the float32 number ... will be truncated": expected, per constant
            warnings.simplefilter("ignore", UserWarning)
            converted = float16.convert_float_to_float16(
                model, keep_io_types=True, disable_shape_infer=False, node_block_list=_preprocessing_nodes(model)
            )
        _ensure_float32_outputs(converted)
        return converted
    except Exception as exc:
        raise ExportError(f"FP16 conversion failed: {str(exc).splitlines()[0][:200]}. Export FP32 instead") from exc
