"""The roofs of a device: the ceilings a roofline chart draws, and the one definition of its
ridge point.

Owns turning a profile's numbers into roofs (flat compute roofs, sloped memory roofs) and the
ridge point used everywhere roofline states one. No drawing, no torch.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..core.hardware import HardwareProfile

__all__ = ["Roofs", "roofs"]


@dataclass(frozen=True)
class Roofs:
    """The roofs of a device at one precision, for a roofline chart.

    ``compute``: (label, MACs/s) flat roofs — the peak, then peak × each distinct efficiency
    below 1 the profile gives an op kind. ``memory``: (label, bytes/s) slopes — DRAM, then
    every on-chip level with a published bandwidth. A kernel at intensity I (MACs/byte) can
    attain at most min(compute roof, bandwidth × I) MACs/s.
    """

    hardware: str
    precision: str
    peak_macs_per_s: float
    compute: tuple[tuple[str, float], ...]
    memory: tuple[tuple[str, float], ...]

    @property
    def ridge_point(self) -> float:
        """Peak over DRAM bandwidth (MACs/byte)."""
        return self.peak_macs_per_s / self.memory[0][1]


def roofs(hw: HardwareProfile, precision: str | None = None) -> Roofs:
    """The roofs of ``hw`` at ``precision`` (default: its own), from the profile's numbers."""
    precision = precision or hw.default_precision
    peak = hw.peak(precision)
    compute: list[tuple[str, float]] = [(f"peak {precision}", peak)]
    by_eff: dict[float, list[str]] = {}
    for kind, eff in hw.efficiency.items():
        if eff < 1:
            by_eff.setdefault(eff, []).append(str(kind))
    for eff in sorted(by_eff, reverse=True):
        kinds = ", ".join(k.replace("_", " ") for k in sorted(by_eff[eff]))
        compute.append((f"{kinds} ({100 * eff:.0f}% of peak)", peak * eff))
    memory: list[tuple[str, float]] = [("DRAM", hw.dram.bandwidth_bytes_per_s)]
    memory += [(lv.name, lv.bandwidth_bytes_per_s) for lv in hw.memory
               if lv.bandwidth_bytes_per_s]
    return Roofs(hw.name, precision, peak, tuple(compute), tuple(memory))
