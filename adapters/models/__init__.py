"""Client model names -> upstream models: the live catalog and the resolution rules."""

from adapters.models.catalog import BUILTIN, ModelCatalog
from adapters.models.resolve import BUILTIN_MODELS, BUILTIN_NAMES, Resolution, resolve_model

__all__ = [
    "BUILTIN",
    "BUILTIN_MODELS",
    "BUILTIN_NAMES",
    "ModelCatalog",
    "Resolution",
    "resolve_model",
]
