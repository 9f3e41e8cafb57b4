"""Calibration sets drawn from ``data/``, Q/DQ INT8 ONNX, backend calibrator adapters, the accuracy-aware fallback
search, and the option groups every calibrating command takes (``options``: ``CalibrationOptions``,
``AccuracyControl``)."""
