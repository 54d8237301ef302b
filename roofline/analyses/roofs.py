"""The roofs of a device: the ceilings a roofline chart draws, and the one definition of its
ridge point.

Owns turning a profile's numbers into roofs (flat compute roofs, sloped memory roofs, the
on-chip levels that have a capacity but no bandwidth) and the ridge point used everywhere
roofline states one (``list hardware``, the reports, the ridge-sweep markers). No drawing, no
torch.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..core.hardware import HardwareProfile

__all__ = ["Roofs", "roofs", "ridge_point", "RIDGE_POINT_DEFINITION"]

#: The ridge point in words, as the tables and reports state it.
RIDGE_POINT_DEFINITION = ("ridge point = peak MACs/s ÷ DRAM bytes/s (MACs per byte): the "
                          "intensity at which the peak meets the DRAM slope, above which a "
                          "kernel running at peak and reading every byte from DRAM is "
                          "compute-bound")


def ridge_point(hw: HardwareProfile, precision: str | None = None) -> float:
    """Peak MACs/s at ``precision`` (default: the profile's own) over DRAM bytes/s, in MACs
    per byte: see :data:`RIDGE_POINT_DEFINITION`. The MobileNetV4 paper's RP is the same ratio
    (Qin et al. 2024, Section 3). Op kinds below peak (efficiency < 1) meet the DRAM slope at
    efficiency × this; the roofline chart draws those roofs."""
    return hw.ridge_point(precision)


@dataclass(frozen=True)
class Roofs:
    """The roofs of a device at one precision, for a roofline chart.

    ``compute``: (label, MACs/s) flat roofs — the peak, then peak × each distinct efficiency
    below 1 the profile gives an op kind. ``memory``: (label, bytes/s) slopes — DRAM, then
    every on-chip level with a bandwidth, fastest first (the engine charges every byte served
    by a level or a slower one at that level's bandwidth, so a level's roof bounds every
    kernel whose bytes pass through it), then DRAM × each memory efficiency below 1.
    ``capacity_only``: (name, capacity bytes) of the on-chip levels without a bandwidth: the
    engine uses them only to keep bytes off DRAM (those bytes cost no memory time), so they
    have no roof and a kernel they feed can sit above the DRAM slope. A kernel at intensity I
    (MACs per byte moved) attains at most min(compute roof, bandwidth × I) MACs/s on every
    level that has a bandwidth.
    """

    hardware: str
    precision: str
    peak_macs_per_s: float
    compute: tuple[tuple[str, float], ...]
    memory: tuple[tuple[str, float], ...]
    capacity_only: tuple[tuple[str, float], ...] = ()

    @property
    def dram_bytes_per_s(self) -> float:
        return self.memory[0][1]

    @property
    def ridge_point(self) -> float:
        """Peak over DRAM bandwidth (MACs/byte): :func:`ridge_point`."""
        return self.peak_macs_per_s / self.dram_bytes_per_s


def roofs(hw: HardwareProfile, precision: str | None = None) -> Roofs:
    """The roofs of ``hw`` at ``precision`` (default: its own), from the profile's numbers."""
    precision = precision or hw.default_precision
    peak = hw.peak(precision)
    compute: list[tuple[str, float]] = [(f"peak {precision}", peak)]
    for label, eff in _by_value(hw.efficiency):
        compute.append((f"{label} ({100 * eff:.0f}% of peak)", peak * eff))
    dram = hw.dram.bandwidth_bytes_per_s
    memory: list[tuple[str, float]] = [("DRAM", dram)]
    memory += sorted(((lv.name, lv.bandwidth_bytes_per_s) for lv in hw.memory
                      if lv.bandwidth_bytes_per_s), key=lambda x: -x[1])
    for label, eff in _by_value(hw.memory_efficiency):
        memory.append((f"DRAM, {label} ({100 * eff:.0f}%)", dram * eff))
    capacity_only = tuple((lv.name, lv.capacity_bytes) for lv in hw.memory
                          if not lv.bandwidth_bytes_per_s)
    return Roofs(hw.name, precision, peak, tuple(compute), tuple(memory), capacity_only)


def _by_value(efficiency: dict) -> list[tuple[str, float]]:
    """(op kinds sharing one efficiency below 1, that efficiency), highest first."""
    by_eff: dict[float, list[str]] = {}
    for kind, eff in efficiency.items():
        if eff < 1:
            by_eff.setdefault(eff, []).append(str(kind))
    return [(", ".join(k.replace("_", " ") for k in sorted(by_eff[eff])), eff)
            for eff in sorted(by_eff, reverse=True)]
