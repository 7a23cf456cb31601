"""Overlap a pure computation with a slow import on a second core.

`archplan verify` needs torch (an import of 1.5-2 s) and the generated model.py with the analysis at
concrete sizes (about 0.8 s: sympy, Jinja, two analyses). Neither needs the other, so the CLI computes the
second in a forked child while this process imports torch. A thread would not help: both are Python work
under one interpreter lock.

The fork happens only where it is safe: Linux, one thread, `module` not imported yet (nothing of torch is
in the child). Anything else, and a child that cannot hand its result back, makes the work run here.
"""

from __future__ import annotations

import importlib
import os
import pickle
import signal
import sys
import threading
from typing import Callable, TypeVar

from .errors import ArchplanError

T = TypeVar("T")


def while_importing(module: str, work: Callable[[], T]) -> T:
    """work()'s result (or its ArchplanError, raised here), with `module` imported (or found missing) on
    return; work runs in a forked child during the import where that is safe, else here after it."""
    if not _can_fork(module):
        _try_import(module)
        return work()
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: compute, hand back, leave without running the parent's exit handlers
        os.close(read)
        _child(work, write)
    os.close(write)
    try:
        _try_import(module)
        with os.fdopen(read, "rb") as pipe:
            data = pipe.read()
    except BaseException:
        os.kill(pid, signal.SIGKILL)
        raise
    finally:
        os.waitpid(pid, 0)
    if not data:  # the child failed outside ArchplanError (or was killed): run here, for the real traceback
        return work()
    ok, value = pickle.loads(data)
    if not ok:
        raise value
    return value


def _can_fork(module: str) -> bool:
    return (
        sys.platform == "linux" and hasattr(os, "fork") and module not in sys.modules and threading.active_count() == 1
    )


def _try_import(module: str) -> None:
    try:
        importlib.import_module(module)
    except ImportError:  # the caller says what is missing
        pass


def _child(work: Callable, write: int) -> None:
    code = 0
    try:
        try:
            data = pickle.dumps((True, work()))
        except ArchplanError as exc:
            data = pickle.dumps((False, exc))
    except BaseException:  # noqa: BLE001 - the parent repeats the work and shows what went wrong
        data, code = b"", 1
    try:
        with os.fdopen(write, "wb") as pipe:
            pipe.write(data)
    finally:
        os._exit(code)
