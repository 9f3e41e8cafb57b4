"""refinenet-deploy: RefineNet checkpoints to ONNX, TensorRT and OpenVINO, with IoU parity and latency."""

__version__ = "0.1.0"
