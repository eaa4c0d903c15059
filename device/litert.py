"""The TFLite interpreter: LiteRT (`ai-edge-litert`) first, `tflite-runtime` as the fallback."""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

# What LiteRT's native code prints to stderr (fd 2) each time it makes an interpreter: news, not a problem.
CHATTER = (b"INFO: Created TensorFlow Lite XNNPACK delegate for CPU.",)


class ModelError(RuntimeError):
    """A model file that cannot be used; the message names the file, the cause and the fix."""


def runtime_name() -> str:
    return _interpreter_class()[1]


def _interpreter_class() -> tuple[Any, str]:
    try:
        from ai_edge_litert.interpreter import Interpreter

        return Interpreter, "ai-edge-litert"
    except ImportError:
        pass
    try:
        from tflite_runtime.interpreter import Interpreter

        return Interpreter, "tflite-runtime"
    except ImportError as exc:
        raise ModelError(
            "no TFLite runtime is installed: run ./setup.sh, or `pip install ai-edge-litert` "
            "(or `tflite-runtime` on Python 3.11 and older)"
        ) from exc


def load_interpreter(path: Path, threads: int = 2) -> Any:
    """An allocated interpreter for `path`, or ModelError saying what is wrong with the file."""
    if not path.is_file():
        raise ModelError(f"model file {path} does not exist: check the path in the config, or run ./setup.sh")
    data = path.read_bytes()
    if len(data) < 8 or data[4:8] != b"TFL3":
        raise ModelError(
            f"{path} is not a TFLite model (no TFL3 identifier): the file is corrupt or of "
            f"another format; restore it with `git checkout -- {path}` or re-run the conversion"
        )
    interpreter_class, name = _interpreter_class()
    try:
        with _without_chatter():
            interpreter = interpreter_class(model_content=data, num_threads=threads)
            interpreter.allocate_tensors()
    except (ValueError, RuntimeError) as exc:
        raise ModelError(f"{name} cannot load {path}: {exc}; the file is corrupt or needs a newer runtime") from exc
    return interpreter


@contextlib.contextmanager
def _without_chatter() -> Iterator[None]:
    """Run the block with fd 2 caught in a file, then write back everything but LiteRT's routine INFO line.

    The line comes from C++ straight to the file descriptor, so Python's sys.stderr cannot filter it. Whatever
    else is written meanwhile (a real error from the runtime, another thread's log line) reaches stderr after the
    block, in order."""
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):  # no fd 2 (a detached process): nothing to filter
        yield
        return
    with tempfile.TemporaryFile() as caught:
        os.dup2(caught.fileno(), 2)
        try:
            yield
        finally:
            with contextlib.suppress(OSError, ValueError):
                sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            caught.seek(0)
            kept = [line for line in caught.read().splitlines(keepends=True) if line.rstrip() not in CHATTER]
            rest = b"".join(kept)
            while rest:
                rest = rest[os.write(2, rest) :]
