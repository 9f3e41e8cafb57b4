"""``rfdeploy pipeline``: config and targets, the bundle on disk, what this machine can do, and the run."""

from .config import DEMO_TARGETS, TARGETS, PipelineConfig, Target, load_config, make_config, parse_targets
from .run import Pipeline, PipelineResult, TargetOutcome, load_bundle_config

__all__ = [
    "DEMO_TARGETS",
    "TARGETS",
    "Pipeline",
    "PipelineConfig",
    "PipelineResult",
    "Target",
    "TargetOutcome",
    "load_bundle_config",
    "load_config",
    "make_config",
    "parse_targets",
]
