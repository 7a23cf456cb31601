"""The only YAML-aware part of archplan: text -> validated NetSpec with positions."""

from .model import REQUIRED, Arg, BlockSpec, InputSpec, LayerSpec, NetSpec, Pos, SymbolSpec
from .parse import check_identifier, parse_text, suggest
from .train import DATASETS, TRAIN_FIELDS

__all__ = [
    "REQUIRED",
    "Arg",
    "BlockSpec",
    "InputSpec",
    "LayerSpec",
    "NetSpec",
    "Pos",
    "SymbolSpec",
    "parse_text",
    "suggest",
    "check_identifier",
    "DATASETS",
    "TRAIN_FIELDS",
]
