"""Typed errors, each with the process exit code the CLI uses for it.

The library raises these and never prints or exits; ``cli.main`` maps them to
``error: ...`` on stderr and the exit code below.

| code | meaning |
|---|---|
| 2 | bad usage or option combination |
| 3 | a validation gate failed (parity, latency) |
| 4 | an optional backend is not installed |
| 5 | bad model name, model file, checkpoint, image or dataset |
| 6 | conversion or engine build failed |
| 7 | artifact does not match this environment |
"""

from __future__ import annotations


class RefineNetDeployError(Exception):
    """Base class: a failure the user can act on. ``hint`` is an optional second line."""

    exit_code: int = 1

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message


class UsageError(RefineNetDeployError):
    exit_code = 2


class ParityError(RefineNetDeployError):
    exit_code = 3


class LatencyBudgetError(RefineNetDeployError):
    exit_code = 3


class MissingDependencyError(RefineNetDeployError):
    exit_code = 4


class ModelNotFoundError(RefineNetDeployError):
    exit_code = 5


class CheckpointError(RefineNetDeployError):
    exit_code = 5


class DataError(RefineNetDeployError):
    """An image, label or dataset layout that cannot be read or is not supported."""

    exit_code = 5


class CalibrationError(RefineNetDeployError):
    exit_code = 5


class InvalidModelError(RefineNetDeployError):
    """A model file (ONNX) that cannot be read or is not an image model this tool can run."""

    exit_code = 5


class ExportError(RefineNetDeployError):
    exit_code = 6


class EngineBuildError(RefineNetDeployError):
    exit_code = 6


class IncompatibleArtifactError(RefineNetDeployError):
    exit_code = 7
