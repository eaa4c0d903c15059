"""The TFLite interpreter: LiteRT (`ai-edge-litert`) first, `tflite-runtime` as the fallback."""

from __future__ import annotations

from pathlib import Path
from typing import Any


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
        interpreter = interpreter_class(model_content=data, num_threads=threads)
        interpreter.allocate_tensors()
    except (ValueError, RuntimeError) as exc:
        raise ModelError(f"{name} cannot load {path}: {exc}; the file is corrupt or needs a newer runtime") from exc
    return interpreter
