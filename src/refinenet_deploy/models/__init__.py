"""Model zoo: RefineNet and Light-Weight RefineNet, registry, checkpoint loading."""

from . import lw_refinenet, refinenet  # noqa: F401  (registers the entrypoints)
from ._factory import LoadedModel, create_model, infer_architecture, load_model, model_shapes
from ._registry import ModelCfg, get_model_cfg, list_models, register_model
from .checkpoint import read_checkpoint, sha256_file
from .deploy import DeployModule, label_dtype

__all__ = [
    "DeployModule",
    "LoadedModel",
    "ModelCfg",
    "create_model",
    "get_model_cfg",
    "infer_architecture",
    "label_dtype",
    "list_models",
    "load_model",
    "model_shapes",
    "read_checkpoint",
    "register_model",
    "sha256_file",
]
