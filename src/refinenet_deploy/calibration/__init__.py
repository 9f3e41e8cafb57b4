"""Calibration sets drawn from ``data/``, Q/DQ INT8 ONNX and backend calibrator adapters."""
