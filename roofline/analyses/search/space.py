"""Search spaces as data: the TOML schema, the loader, the shipped spaces and their op choices.

Owns what a space file may say (a strict pydantic schema: unknown keys, wrong types and
impossible choices fail naming the file and field), the registry of shipped spaces
(``spaces/*.toml``, listed by :func:`list_spaces`), and turning each stage's choices into the
list of block options a candidate picks from. Imports neither torch nor numpy; building blocks
is ``roofline.analyses.search.blocks``, candidates ``roofline.analyses.search.candidates``.

A space is a stack of stages, MnasNet's factorised hierarchical form (Tan et al. 2019, Sec. 4.1)::

    name = "my_space"
    resolution = [224]                  # input resolution choices (px)
    activation = "relu"                 # default for every stage
    share = "layer"                     # "layer": every block chooses its own op (TuNAS,
                                        # MobileNetV4); "stage": one op for all blocks of a
                                        # stage (MnasNet)
    [[stage]]                           # the stem: the first stage reads the 3-channel image
    name = "stem"
    blocks = ["conv"]
    kernel = [3]
    channels = [32]
    stride = 2
    [[stage]]
    name = "stage2"
    blocks = ["ib", "convnext", "extradw", "ffn"]   # any of BLOCK_TYPES
    kernel = [3, 5]                     # depthwise kernels (ExtraDW takes every pair)
    expand = [4]                        # expansion ratios: hidden = make_divisible(C_in * e, 8)
    channels = [64, 80, 96]             # output channel choices
    depth = [1, 2, 3]                   # block count choices
    stride = 2                          # of the stage's first block
    [head]
    conv = 960                          # 1x1 conv + BN + act before pooling (omit: none)
    hidden = 1280                       # pooled 1x1 conv (omit: none)
    hidden_norm = true                  # BN after it (MobileNetV4) or a bias (V3's "NBN")
    [sources]                           # where each choice comes from
    [choices]                           # what the space's author chose where the paper is open

A block that cannot carry a stride (FFN, Mobile MQA) is not offered at a strided position.
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from ...errors import UnknownNameError, UsageError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

__all__ = ["BLOCK_TYPES", "ACTIVATIONS", "BlockOp", "Stage", "Head", "SearchSpace", "list_spaces",
           "load_space", "space_from_dict"]

#: Block types a stage may offer (what each builds: ``roofline.analyses.search.blocks``).
BLOCK_TYPES: dict[str, str] = {
    "conv": "k x k conv + BN + act (stems, plain conv stages)",
    "fused_ib": "MobileNetV4 fused IB: k x k full conv expand + BN + act, 1x1 project + BN",
    "ib": "UIB as inverted bottleneck: 1x1 expand, k x k DW, 1x1 project (K1=0, K2=k)",
    "convnext": "UIB as ConvNext-like: k x k DW, 1x1 expand, 1x1 project (K1=k, K2=0)",
    "extradw": "UIB as ExtraDW: k1 x k1 DW, 1x1 expand, k2 x k2 DW, 1x1 project",
    "ffn": "UIB as FFN: 1x1 expand, 1x1 project (no depthwise; cannot be strided)",
    "ir": "MobileNetV2/V3 inverted residual: [1x1 expand], k x k DW, [SE], 1x1 project",
    "mqa": "MobileNetV4 Mobile MQA: BN, multi-query attention, layer scale, residual",
}

#: Block types that cannot downsample (no depthwise to carry the stride).
_NO_STRIDE = frozenset({"ffn", "mqa"})
#: Block types that take a kernel / an expansion ratio / SE.
_HAS_KERNEL = frozenset({"conv", "fused_ib", "ib", "convnext", "extradw", "ir"})
_HAS_EXPAND = frozenset({"fused_ib", "ib", "convnext", "extradw", "ffn", "ir"})

ACTIVATIONS = ("relu", "relu6", "hswish", "gelu")

_SHIPPED = "roofline.analyses.search.spaces"


@dataclass(frozen=True, order=True)
class BlockOp:
    """One block option of a stage: its type and the choices that define it (0 / 0.0 /
    False where the type has no such choice)."""

    type: str
    kernel: int = 0  # conv / fused_ib / ib / convnext / ir kernel; ExtraDW's first DW
    kernel2: int = 0  # ExtraDW's second (middle) DW
    expand: float = 0.0
    se: bool = False
    heads: int = 0  # Mobile MQA
    key_dim: int = 0
    kv_stride: int = 0

    @property
    def token(self) -> str:
        """The short name used in candidate encodings: ``ib5e4``, ``xd35e4``, ``ir7e6se``."""
        e = f"e{self.expand:g}"
        return {
            "conv": f"conv{self.kernel}",
            "fused_ib": f"fib{self.kernel}{e}",
            "ib": f"ib{self.kernel}{e}",
            "convnext": f"cn{self.kernel}{e}",
            "extradw": f"xd{self.kernel}{self.kernel2}{e}",
            "ffn": f"ffn{e}",
            "ir": f"ir{self.kernel}{e}" + ("se" if self.se else ""),
            "mqa": f"mqa{self.heads}x{self.key_dim}s{self.kv_stride}",
        }[self.type]

    @property
    def can_stride(self) -> bool:
        return self.type not in _NO_STRIDE

    @property
    def leading_norm(self) -> bool:
        """Its first op (a batch norm on the block input) runs inside the previous block's
        last kernel, so composed pricing keeps it together with the block before it."""
        return self.type == "mqa"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _positive_list(values: list[Any], what: str) -> list[Any]:
    if not values:
        raise ValueError(f"give at least one {what}")
    if any(v <= 0 for v in values):
        raise ValueError(f"every {what} must be > 0, got {values}")
    if len(set(values)) != len(values):
        raise ValueError(f"{what} choices repeat: {values}")
    return values


class Stage(_Strict):
    """One stage: which blocks, at which widths and depths; the first block has ``stride``."""

    name: str = Field(min_length=1)
    blocks: list[Literal["conv", "fused_ib", "ib", "convnext", "extradw", "ffn", "ir", "mqa"]]
    channels: list[int]
    depth: list[int] = [1]
    stride: Literal[1, 2] = 1
    kernel: list[int] = [3]
    expand: list[float] = [4.0]
    se: list[bool] = [False]
    activation: Literal["relu", "relu6", "hswish", "gelu"] | None = None
    heads: int = Field(4, gt=0)  # Mobile MQA query heads
    key_dim: int = Field(64, gt=0)  # Mobile MQA key/value width
    kv_stride: Literal[1, 2] = 1  # Mobile MQA key/value down-sampling

    @field_validator("blocks")
    @classmethod
    def _blocks(cls, v: list[str]) -> list[str]:
        if not v:
            raise ValueError("give at least one block type")
        if len(set(v)) != len(v):
            raise ValueError(f"block types repeat: {v}")
        return v

    @field_validator("channels")
    @classmethod
    def _channels(cls, v: list[int]) -> list[int]:
        return _positive_list(v, "channel count")

    @field_validator("depth")
    @classmethod
    def _depth(cls, v: list[int]) -> list[int]:
        _positive_list(v, "depth")
        if max(v) > 32:
            raise ValueError(f"at most 32 blocks per stage, got {max(v)}")
        return sorted(v)

    @field_validator("kernel")
    @classmethod
    def _kernel(cls, v: list[int]) -> list[int]:
        _positive_list(v, "kernel size")
        if any(k % 2 == 0 or k > 9 for k in v):
            raise ValueError(f"kernel sizes must be odd and at most 9, got {v}")
        return v

    @field_validator("expand")
    @classmethod
    def _expand(cls, v: list[float]) -> list[float]:
        if any(not math.isfinite(e) for e in v):
            raise ValueError(f"expansion ratios must be finite numbers, got {v}")
        _positive_list(v, "expansion ratio")
        if any(e > 16 for e in v):
            raise ValueError(f"expansion ratios must be at most 16, got {v}")
        return [float(e) for e in v]

    @field_validator("se")
    @classmethod
    def _se(cls, v: list[bool]) -> list[bool]:
        if not v or len(set(v)) != len(v):
            raise ValueError("se: give [false], [true] or [false, true]")
        return v

    def ops(self, strided: bool) -> tuple[BlockOp, ...]:
        """Every block option of this stage, in a fixed order; ``strided``: only those that
        can carry the stage's stride (the first block of a stage with stride 2)."""
        out: list[BlockOp] = []
        for kind in self.blocks:
            if strided and kind in _NO_STRIDE:
                continue
            kernels = self.kernel if kind in _HAS_KERNEL else [0]
            expands = self.expand if kind in _HAS_EXPAND else [0.0]
            ses = self.se if kind == "ir" else [False]
            for e in expands:
                for k in kernels:
                    seconds = self.kernel if kind == "extradw" else [0]
                    for k2 in seconds:
                        for se in ses:
                            if kind == "mqa":
                                out.append(BlockOp("mqa", heads=self.heads,
                                                   key_dim=self.key_dim,
                                                   kv_stride=self.kv_stride))
                            else:
                                out.append(BlockOp(kind, k, k2, e if kind != "conv" else 0.0,
                                                   se))
        return tuple(out)


class Head(_Strict):
    """After the last stage: [1x1 conv + BN + act] → pool → [1x1 conv (+ BN) + act] → linear."""

    conv: int | None = Field(None, gt=0)
    hidden: int | None = Field(None, gt=0)
    hidden_norm: bool = False
    classes: int = Field(1000, gt=0)
    activation: Literal["relu", "relu6", "hswish", "gelu"] | None = None


class SearchSpace(_Strict):
    """A block-level search space (see the module docstring for the file format)."""

    name: str = Field(min_length=1)
    description: str = ""
    resolution: list[int]
    activation: Literal["relu", "relu6", "hswish", "gelu"] = "relu"
    share: Literal["layer", "stage"] = "layer"
    batch: int = Field(1, gt=0)
    stage: list[Stage]
    head: Head = Head()
    sources: dict[str, str] = {}
    choices: dict[str, str] = {}
    path: str = ""

    @field_validator("resolution")
    @classmethod
    def _resolution(cls, v: list[int]) -> list[int]:
        _positive_list(v, "resolution")
        if any(not 32 <= r <= 2048 for r in v):
            raise ValueError(f"resolutions must be from 32 to 2048 px, got {v}")
        return v

    @model_validator(mode="after")
    def _stages(self) -> SearchSpace:
        if not self.stage:
            raise ValueError("a space needs at least one [[stage]]")
        names = [s.name for s in self.stage]
        if len(set(names)) != len(names):
            raise ValueError(f"stage names repeat: {names}")
        for i, s in enumerate(self.stage):
            if s.stride == 2 and not s.ops(strided=True):
                raise ValueError(f"stage {s.name!r}: stride 2 but none of {s.blocks} can "
                                 f"downsample (FFN and Mobile MQA cannot)")
            if i == 0 and any(b == "mqa" for b in s.blocks):
                raise ValueError(f"stage {s.name!r}: Mobile MQA cannot read the image")
            if self.share == "stage" and s.stride == 2 and len(s.ops(True)) != len(s.ops(False)):
                raise ValueError(f"stage {s.name!r}: with share = 'stage' every block type "
                                 f"must be able to carry the stride")
        return self

    # -- derived ---------------------------------------------------------------------------------
    def stage_activation(self, i: int) -> str:
        return self.stage[i].activation or self.activation

    @property
    def head_activation(self) -> str:
        return self.head.activation or self.stage_activation(len(self.stage) - 1)

    def stage_ops(self, i: int) -> tuple[tuple[BlockOp, ...], tuple[BlockOp, ...]]:
        """(options of the stage's first block, options of the others)."""
        s = self.stage[i]
        first = s.ops(strided=s.stride == 2)
        return first, (first if self.share == "stage" else s.ops(strided=False))

    @property
    def max_depth(self) -> int:
        return sum(max(s.depth) for s in self.stage)

    def size(self) -> float:
        """How many distinct candidates the space holds (a float: it can be astronomical)."""
        total = float(len(self.resolution))
        for i, s in enumerate(self.stage):
            first, rest = self.stage_ops(i)
            per_depth = 0.0
            for d in s.depth:
                per_depth += float(len(first)) if self.share == "stage" else \
                    float(len(first)) * float(len(rest)) ** (d - 1)
            total *= len(s.channels) * per_depth
        return total


def _format_error(path: str, exc: ValidationError) -> str:
    err = exc.errors()[0]
    where = ".".join(str(p) for p in err["loc"]) or "(top level)"
    message = err["msg"].removeprefix("Value error, ")
    return f"{path}: field {where!r}: {message}"


def space_from_dict(data: dict[str, Any], path: str = "<space>") -> SearchSpace:
    """Validate a space given as plain data (as read from TOML)."""
    if not isinstance(data, dict):
        raise UsageError(f"{path}: a space must be a table of fields")
    try:
        return SearchSpace.model_validate({**data, "path": str(path)})
    except ValidationError as exc:
        raise UsageError(_format_error(path, exc)) from None


def _shipped_dir() -> Any:
    return resources.files(_SHIPPED)


def list_spaces() -> list[str]:
    """Names of the shipped spaces."""
    return sorted(p.name.removesuffix(".toml") for p in _shipped_dir().iterdir()
                  if p.name.endswith(".toml"))


def _read(path: Path | Any, shown: str) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"cannot read space {shown!r}: {getattr(exc, 'strerror', None) or exc}"
                         ) from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"{shown}: not valid TOML: {exc}") from None


@cache
def _load_shipped(name: str) -> SearchSpace:
    entry = _shipped_dir().joinpath(f"{name}.toml")
    return space_from_dict(_read(entry, f"{name}.toml"), f"{name}.toml")


def load_space(name_or_path: str | SearchSpace) -> SearchSpace:
    """A shipped space by name (``mobilenet_v4``) or a user's TOML file by path. An unknown
    name is an UnknownNameError suggesting close names."""
    if isinstance(name_or_path, SearchSpace):
        return name_or_path
    text = str(name_or_path)
    if text.endswith(".toml") or "/" in text or Path(text).is_file():
        path = Path(text).expanduser()
        if not path.is_file():
            raise UsageError(f"space file {text!r} does not exist")
        return space_from_dict(_read(path, text), text)
    if text not in list_spaces():
        raise UnknownNameError("search space", text, list_spaces())
    return _load_shipped(text)
