"""Converters: torch -> ONNX, ONNX -> TensorRT engine, ONNX -> OpenVINO IR (one module per target)."""
