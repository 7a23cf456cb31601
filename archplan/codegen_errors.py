"""Codegen's errors: located problems for the user, and the signal that a value needs fixed sizes."""

from __future__ import annotations

from .errors import ArchplanError, Problem


class CodegenError(ArchplanError):
    """A net that cannot become code as asked, located at the layer or block it is about."""

    def __init__(self, message: str, layer: str | None = None, line: int | None = None, column: int | None = None):
        super().__init__(Problem(message, layer=layer, line=line, column=column))

    def at(self, path: str) -> CodegenError:
        self.path = path
        self.args = ("\n".join(p.format(path) for p in self.problems),)
        return self


class SymbolicValue(Exception):
    """A printed value is still a formula in symbols model.py keeps free: codegen fixes them all at once
    (their defaults) and prints the model once more."""

    def __init__(self, symbols: set):
        super().__init__(", ".join(sorted(symbols)))
        self.symbols = set(symbols)
