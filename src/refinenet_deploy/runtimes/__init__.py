"""The ``Runner`` protocol and one runner per backend (PyTorch, ONNX Runtime, OpenVINO, TensorRT)."""
