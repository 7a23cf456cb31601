"""Writing output files safely: checked before anything is written, atomic, never through a symbolic link.

Every file archplan writes (diagrams, charts, generated code) goes through `write_file`: the bytes go to a
new temporary file in the target folder (created with O_EXCL, so a planted name cannot redirect it), which
then replaces the target with os.replace. A link at the target is replaced, never followed; a crash leaves
the old file intact.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from .errors import ArchplanError, Problem


class OutputError(ArchplanError):
    """An output path that cannot be written: a missing folder, a directory, a link, no permission."""

    def __init__(self, message: str):
        super().__init__(Problem(message))


def _describe(exc: OSError) -> str:
    return exc.strerror or type(exc).__name__


def check_target(path: str | Path, protected: tuple = (), replace_links: bool = False) -> Path:
    """Raise OutputError unless `path` can receive a file: its folder exists, it is not a folder, not one
    of the `protected` files (the net file being read), and not a link unless `replace_links` (then the
    link itself is replaced by the new file; its target is never touched)."""
    path = Path(path)
    folder = path.parent
    if not folder.is_dir():
        what = "is not a folder" if folder.exists() else "does not exist"
        raise OutputError(f"cannot write {path}: the folder {folder} {what}")
    if path.is_symlink():
        if replace_links:
            return path
        raise OutputError(f"cannot write {path}: it is a symbolic link (archplan does not write through links)")
    if path.is_dir():
        raise OutputError(f"cannot write {path}: it is a folder; give a file name")
    for other in protected:
        try:
            if path.exists() and Path(other).exists() and path.samefile(other):
                raise OutputError(f"cannot write {path}: it is the net file being read")
        except OSError:
            continue
    if not os.access(folder, os.W_OK | os.X_OK):
        raise OutputError(f"cannot write {path}: no permission to write in {folder}")
    return path


def write_file(path: str | Path, data: bytes | str, protected: tuple = (), replace_links: bool = False) -> Path:
    """Atomically write `data` to `path` (see the module docstring). Raises OutputError."""
    path = check_target(path, protected, replace_links)
    if isinstance(data, str):
        data = data.encode("utf-8")
    try:
        fd, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as exc:
        raise OutputError(f"cannot write {path}: {_describe(exc)}") from None
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.chmod(temp, 0o644 & ~_umask())
        os.replace(temp, path)
    except OSError as exc:
        Path(temp).unlink(missing_ok=True)
        raise OutputError(f"cannot write {path}: {_describe(exc)}") from None
    return path


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


MANIFEST = ".archplan-generated"  # the names written by the last `generate` into a folder


def write_folder(files: dict, outdir: str | Path, force: bool, known: tuple, protected: tuple = ()) -> list[Path]:
    """Write generated files into `outdir` (created when missing). Refuses a non-empty folder unless `force`.

    Every target is checked before anything is written; each file is written atomically and replaces a
    link planted in the folder instead of following it. Files a previous `generate` wrote (listed in the
    folder's manifest) that this one does not produce are removed, but only names from `known`, so an
    edited manifest cannot delete anything else.
    """
    out = Path(outdir)
    if out.is_symlink() and not out.exists():
        raise OutputError(f"cannot write into {out}: it is a symbolic link to nothing")
    if out.exists() and not out.is_dir():
        raise OutputError(f"cannot write into {out}: it exists and is not a folder")
    if out.is_dir() and any(out.iterdir()) and not force:
        raise OutputError(f"{out} is not empty; pass --force to overwrite the generated files in it")
    if not out.exists():
        try:
            out.mkdir(parents=True)
        except OSError as exc:
            raise OutputError(f"cannot create the folder {out}: {_describe(exc)}") from None
    for name in files:
        check_target(out / name, protected, replace_links=True)
    stale = [name for name in _manifest(out) if name in known and name not in files]
    written = [write_file(out / name, text, protected, replace_links=True) for name, text in files.items()]
    for name in stale:
        target = out / name
        if target.is_symlink() or target.is_file():
            target.unlink()
    write_file(out / MANIFEST, "".join(f"{name}\n" for name in files), protected, replace_links=True)
    return written


def _manifest(out: Path) -> list[str]:
    path = out / MANIFEST
    if path.is_symlink() or not path.is_file():
        return []
    try:
        return path.read_text(encoding="utf-8", errors="replace")[:10_000].split()
    except OSError:
        return []
