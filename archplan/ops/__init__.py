"""The op registry: importing this package imports every module in it, which registers its op classes.

Adding an op is one module (or one class in a family's module) plus its tests: nothing else lists ops.
"""

import importlib
import pkgutil

from .base import AxisRF, Expression, Module, Needs, Op, all_ops, closest, format_shape, lookup

for _module in pkgutil.iter_modules(__path__):
    if _module.name not in ("base", "params"):
        importlib.import_module(f"{__name__}.{_module.name}")

__all__ = ["AxisRF", "Expression", "Module", "Needs", "Op", "all_ops", "closest", "format_shape", "lookup"]
