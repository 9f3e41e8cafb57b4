"""Metrics, parity and latency statistics; receives runners, never imports a backend."""
