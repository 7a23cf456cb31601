"""archplan: plan a neural network before you train it.

    import archplan
    net = archplan.load("examples/resnet50.yaml")
    result = net.analyze({"N": 1})
    result.totals["params"]        # 25557032

Heavy modules (sympy, torch) load only when needed.
"""

from .errors import ArchplanError, Problem

__version__ = "0.1.0"
__all__ = ["ArchplanError", "Problem", "load", "loads", "Net", "__version__"]


def __getattr__(name):
    if name in ("load", "loads", "Net"):
        from . import api

        return getattr(api, name)
    raise AttributeError(f"module 'archplan' has no attribute {name!r}")
