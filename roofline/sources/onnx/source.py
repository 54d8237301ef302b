"""ONNX files as a model source: ``path/to/model.onnx`` (``:RES`` for a resolution).

Owns what the rest of roofline asks of an ONNX file: its label (the file name), its default
input (the file's own inputs, dynamic batch and image size bound from ``--batch`` and the
resolution), its fingerprint (the content's hash, so an edited file is read again) and its
graph (``roofline.sources.onnx.reader``). A file holds one fixed network: a width is a
UsageError. Nothing here imports onnx until a file is actually read.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from ...core.graph import InputSpec, LayerGraph
from ...errors import ModelLoadError, UsageError
from ..base import DEFAULT_RESOLUTION, ModelSource, files_fingerprint

__all__ = ["OnnxSource"]

#: The code a graph read from a file depends on (relative to the roofline package).
_READER_FILES = ("core/graph.py", "units.py", "sources/pytorch/ops.py",
                 *(f"sources/onnx/{m}.py" for m in ("ops", "nodes", "layout", "idioms", "qdq",
                                                     "shapes", "reader")))
_PACKAGE = Path(__file__).resolve().parents[2]


class OnnxSource(ModelSource):
    """A model stored as an ONNX file."""

    kind = "onnx"
    takes_width = False

    @classmethod
    def claims(cls, spec: str) -> bool:
        return spec.lower().endswith(".onnx")

    @property
    def path(self) -> Path:
        return Path(self.spec).expanduser()

    def check(self) -> None:
        if not self.path.is_file():
            raise ModelLoadError(f"ONNX file {self.spec!r} does not exist")

    def fingerprint(self) -> str:
        self.check()
        stat = self.path.resolve().stat()
        return _content_fingerprint(self.path.resolve(), stat.st_mtime_ns, stat.st_size)

    def frontend_fingerprint(self) -> str:
        return _reader_fingerprint()

    def graph(self, width: float | None, inputs: tuple[InputSpec, ...],
              name: str) -> LayerGraph:
        if width is not None:
            raise UsageError(f"{self.spec!r} is one fixed network: a width multiplier cannot "
                             f"apply to it (drop --width / @WIDTH)")
        from .reader import read_onnx

        return read_onnx(self.path, inputs, name=name or self.short_name)

    # -- metadata -------------------------------------------------------------------------------
    @property
    def short_name(self) -> str:
        return self.path.name

    def shows_width(self, width: float | None) -> bool:
        return False

    def _declared(self) -> list[tuple[str, list[int | str | None], str]]:
        self.check()
        stat = self.path.resolve().stat()
        return _declared_inputs(self.path.resolve(), stat.st_mtime_ns, stat.st_size)

    def default_resolution(self) -> int | None:
        """The image size of a 4-d image input: the file's when it fixes a square one, else
        roofline's default; None when the first input is not an image."""
        declared = self._declared()
        if not declared or len(declared[0][1]) != 4:
            return None
        height, width = declared[0][1][2:]
        if isinstance(height, int) and height == width:
            return height
        return DEFAULT_RESOLUTION

    def default_inputs(self, batch: int, resolution: int | None) -> tuple[InputSpec, ...]:
        """The file's inputs: a dynamic batch is ``batch``, a dynamic image size
        ``resolution``; any other dynamic dimension must be given (``--input``)."""
        from .reader import bind_inputs

        if resolution is None:
            resolution = self.default_resolution()
        return tuple(bind_inputs(self._declared(), batch=batch, resolution=resolution))


@lru_cache(maxsize=64)
def _content_fingerprint(path: Path, _mtime_ns: int, _size: int) -> str:
    from .reader import onnx_fingerprint

    return onnx_fingerprint(path)


@lru_cache(maxsize=64)
def _declared_inputs(path: Path, _mtime_ns: int,
                     _size: int) -> list[tuple[str, list[int | str | None], str]]:
    from .reader import onnx_input_specs

    return onnx_input_specs(path)


@lru_cache(maxsize=1)
def _reader_fingerprint() -> str:
    """The reader's source, roofline's version and onnx's version (from its metadata)."""
    from importlib.metadata import version

    from ... import __version__

    return files_fingerprint([_PACKAGE / f for f in _READER_FILES], __version__,
                             version("onnx"))
