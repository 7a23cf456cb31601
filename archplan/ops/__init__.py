"""The op registry: importing this package registers every op family."""

from . import conv, dense, elementwise, pool, structure  # noqa: F401  (registration side effects)
from .base import AxisRF, Expression, Module, Needs, Op, all_ops, closest, format_shape, lookup

__all__ = ["AxisRF", "Expression", "Module", "Needs", "Op", "all_ops", "closest", "format_shape", "lookup"]
