"""Precisions, element sizes and unit conversions, in one place.

Owns how many bytes an element takes at each precision and the MAC/FLOP conversion; knows
nothing about models or hardware.

MACs are multiply-accumulates everywhere in roofline. One MAC is two FLOPs (a multiply and an
add); the only conversion between the two lives here, in :func:`flops_from_macs`.
"""

from __future__ import annotations

from typing import Final

from .errors import UnknownNameError

__all__ = [
    "PRECISIONS",
    "bytes_per_element",
    "bias_bytes_per_element",
    "check_precision",
    "flops_from_macs",
    "macs_from_flops",
]

#: Bytes per element of weights and activations at each supported precision.
PRECISIONS: Final[dict[str, int]] = {"fp32": 4, "fp16": 2, "int8": 1}

# NB: integer-quantised inference keeps biases in the accumulator's type. The TensorFlow Lite
# 8-bit quantization specification stores conv/linear biases as int32 (4 bytes) while weights
# and activations are int8; float runtimes store biases like weights.
_BIAS_BYTES: Final[dict[str, int]] = {"fp32": 4, "fp16": 2, "int8": 4}


def check_precision(precision: str) -> str:
    """``precision`` if supported, else an UnknownNameError naming the valid ones."""
    if precision not in PRECISIONS:
        raise UnknownNameError("precision", str(precision), PRECISIONS)
    return precision


def bytes_per_element(precision: str) -> int:
    """Bytes one weight or activation element takes at ``precision``."""
    return PRECISIONS[check_precision(precision)]


def bias_bytes_per_element(precision: str) -> int:
    """Bytes one conv/linear bias element takes at ``precision`` (int32 under int8)."""
    return _BIAS_BYTES[check_precision(precision)]


def flops_from_macs(macs: float) -> float:
    """FLOPs of ``macs`` multiply-accumulates (1 MAC = 2 FLOPs)."""
    return 2 * macs


def macs_from_flops(flops: float) -> float:
    """Multiply-accumulates in ``flops`` floating-point operations (2 FLOPs = 1 MAC)."""
    return flops / 2
