"""Latency lookup tables: per device, per block (stage, input shape, choice), the latency a NAS
framework can sum instead of calling the engine, and how far that sum is from the engine.

Owns building the table from a search (each block's mean latency *inside* the candidates it
was priced in: its kernels' share of the whole-network pricing, so neighbours' caching is
included), its rows for CSV/JSON, and its error against whole-model prediction on candidates
it was not built from. No printing.

How to use it (the ``rule`` the JSON carries): for a candidate on a device, add up the
``weight_bytes`` of its blocks (the stem and head included); its weights live in the first
of the device's ``weight_levels`` whose capacity holds that sum (the engine's rule: weights
stay on chip when the whole model's fit); the latency is ``per_inference_ms`` plus the sum of
the blocks' ``latency_ms`` at that level. Splitting by that level matters on devices with
on-chip parameter memory (an EdgeTPU): a block streams its weights from DRAM, or not, by what
the whole network weighs. An entry no sampled candidate had at a level (``samples`` 0) holds
the mean over the levels that were seen.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from ...units import bytes_per_element
from .pricing import CHUNK
from .search import BlockTotals, SearchResult, weight_levels

__all__ = ["LookupTable", "build_lut", "LUT_FIELDS", "COVER"]

#: Random candidates each block is priced in when the search did not cover it.
COVER = 4

LUT_FIELDS = ("device", "precision", "stage", "position", "block", "c_in", "c_out", "stride",
              "activation", "input_h", "input_w", "weights_in", "latency_ms", "weight_bytes",
              "samples", "supported")


@dataclass
class LookupTable:
    """``latency_s[h, b, level]`` and ``weight_bytes[h, b]`` per device and block id (the
    genome's blocks, then its heads), with the error of its sum on held-out candidates."""

    result: SearchResult
    latency_s: np.ndarray
    samples: np.ndarray
    weight_bytes: np.ndarray
    supported: np.ndarray
    error_pct: dict[str, dict[str, float]]  # device -> median, p95, max |error| %, candidates

    def estimate_s(self, rows: np.ndarray) -> np.ndarray:
        """The table's latency (devices, candidates) for candidate ``rows`` (NaN where a
        block cannot run on the device)."""
        ids = self.result.genome.lut_ids(rows)
        used = ids >= 0
        safe = np.maximum(ids, 0)
        out = np.empty((len(self.result.hardware), len(rows)))
        for h, hw in enumerate(self.result.hardware):
            caps = np.array([cap for _, cap in weight_levels(hw)])
            weights = np.where(used, self.weight_bytes[h][safe], 0.0).sum(axis=1)
            level = np.argmax(weights[:, None] <= caps[None, :], axis=1)
            lat = np.where(used, self.latency_s[h][safe, level[:, None]], 0.0).sum(axis=1)
            ok = np.where(used, self.supported[h][safe], True).all(axis=1)
            out[h] = np.where(ok, lat + hw.overhead.per_inference_s, np.nan)
        return out

    def rows(self) -> list[dict[str, Any]]:
        genome = self.result.genome
        out = []
        for h, hw in enumerate(self.result.hardware):
            precision = self.result.prices.precisions[h]
            levels = weight_levels(hw)
            out.append({"device": hw.name, "precision": precision, "stage": "",
                        "position": "", "block": "(per inference)", "c_in": None,
                        "c_out": None, "stride": None, "activation": "", "input_h": None,
                        "input_w": None, "weights_in": "", "samples": None,
                        "latency_ms": hw.overhead.per_inference_s * 1e3, "weight_bytes": 0,
                        "supported": True})
            for b in range(self.latency_s.shape[1]):
                if not self.samples[h, b].sum():
                    continue  # a block no candidate used: nothing measured
                if b < len(genome.blocks):
                    key = genome.blocks[b]
                    stage, position = genome.block_place[b]
                    desc = (key.op.token, key.c_in, key.c_out, key.stride, key.activation,
                            key.height, key.width)
                else:
                    head = genome.head_keys[b - len(genome.blocks)]
                    stage, position = "head", "head"
                    desc = ("head", head.c_in, head.classes, 1, head.activation,
                            head.height, head.width)
                for lv, (name, _) in enumerate(levels):
                    ms = self.latency_s[h, b, lv] * 1e3
                    out.append({
                        "device": hw.name, "precision": precision, "stage": stage,
                        "position": position, "block": desc[0], "c_in": desc[1],
                        "c_out": desc[2], "stride": desc[3], "activation": desc[4],
                        "input_h": desc[5], "input_w": desc[6], "weights_in": name,
                        "latency_ms": None if math.isnan(ms) else float(ms),
                        "weight_bytes": float(self.weight_bytes[h, b]),
                        "samples": int(self.samples[h, b, lv]),
                        "supported": bool(self.supported[h, b]),
                    })
        return out

    def to_json(self) -> dict[str, Any]:
        return {
            "space": self.result.genome.space.name,
            "rule": "latency = per_inference_ms + sum of the blocks' latency_ms at the weight "
                    "level whose capacity first holds the sum of the blocks' weight_bytes",
            "devices": [{
                "name": hw.name, "precision": self.result.prices.precisions[h],
                "per_inference_ms": hw.overhead.per_inference_s * 1e3,
                "weight_levels": [{"name": n, "capacity_bytes": None if math.isinf(c) else c}
                                  for n, c in weight_levels(hw)],
            } for h, hw in enumerate(self.result.hardware)],
            "error": self.error_pct,
            "entries": self.rows(),
        }


def build_lut(result: SearchResult, check: int = 2000, seed: int | None = None,
              sample: int = 20_000) -> LookupTable:
    """The lookup table of ``result``'s space on its devices, its error measured on ``check``
    random candidates the table was not built from (priced whole for the comparison).

    Built from the blocks of a random search's own candidates; after an evolution, whose
    candidates crowd one corner of the space, from ``sample`` fresh random candidates."""
    if result.blocks is None:
        raise ValueError("this search kept no per-block latencies")
    genome = result.genome
    if result.config.strategy == "random":
        totals = BlockTotals(*(getattr(result.blocks, n).copy() for n in (
            "latency_s", "count", "unsupported", "weight_bytes", "clean")))
    else:
        rows = genome.sample(sample, np.random.default_rng(result.config.seed + 3))
        totals = _totals(result, rows)
    # Blocks of the space that no priced candidate held, or held only with the weights in one
    # place where the device keeps them in another for other candidates: priced now, each in
    # a few random candidates holding it, so that the table covers every block of the space
    # (a search that converged, an evolution, sees little of it).
    counts = totals.count
    reached = counts.sum(axis=1, keepdims=True) > 0  # (device, 1, level): some model had it
    missing = ((counts == 0) & reached).any(axis=(0, 2)) | (counts.sum(axis=(0, 2)) == 0)
    todo = np.flatnonzero(missing)
    if todo.size:
        totals.add(_cover(result, np.repeat(todo, COVER)))
    sums, counts, clean = totals.latency_s, totals.count, totals.clean
    weights = totals.weight_bytes
    supported = totals.unsupported == 0
    with np.errstate(invalid="ignore", divide="ignore"):
        lat = sums / counts
        weights = weights / clean
    # Levels nobody saw: the mean over the levels that were seen (see the module docstring).
    with np.errstate(invalid="ignore", divide="ignore"):
        pooled = np.nansum(lat * counts, axis=2) / counts.sum(axis=2)
    lat = np.where(counts > 0, lat, pooled[:, :, None])
    # Mobile MQA's input batch norm runs (as 2 constants per channel) in the kernel before
    # it, whose weights exclude it (see search._price_chunk): it belongs to the MQA block.
    for b, key in enumerate(genome.blocks):
        if key.op.leading_norm:
            for h in range(len(result.hardware)):
                element = bytes_per_element(result.prices.precisions[h])
                weights[h, b] += 2 * key.c_in * element
    weights = np.nan_to_num(weights)
    table = LookupTable(result, lat, counts, weights, supported, {})
    table.error_pct = _error(table, check, result.config.seed + 1 if seed is None else seed)
    return table


def _cover(result: SearchResult, lut_ids: np.ndarray) -> BlockTotals:
    genome = result.genome
    return _totals(result, genome.covering(lut_ids, np.random.default_rng(
        result.config.seed + 2)))


def _totals(result: SearchResult, rows: np.ndarray) -> BlockTotals:
    """Block totals of candidate ``rows`` (priced now, in this process)."""
    from .search import _price_chunk, unit_block_table

    genome = result.genome
    assert genome.bank is not None
    n_blocks = len(genome.blocks) + len(genome.head_keys)
    total = BlockTotals.zeros(len(result.hardware), n_blocks)
    for start in range(0, len(rows), CHUNK):
        units = genome.units(rows[start:start + CHUNK])
        genome.bank.fill(units)
        context = (genome.bank, result.hardware, result.config.precision, n_blocks)
        total.add(_price_chunk(context, (units, unit_block_table(genome)))[1])
    return total


def _error(table: LookupTable, check: int, seed: int) -> dict[str, dict[str, float]]:
    from .pricing import price_rows

    result = table.result
    genome = result.genome
    if check <= 0:
        return {}
    rng = np.random.default_rng(seed)
    rows = genome.sample(check, rng)
    whole = price_rows(genome, rows, result.hardware, result.config.precision)
    estimate = table.estimate_s(rows)
    out = {}
    for h, hw in enumerate(result.hardware):
        ok = np.isfinite(whole.latency_s[h]) & np.isfinite(estimate[h])
        err = np.abs(estimate[h][ok] / whole.latency_s[h][ok] - 1) * 100
        out[hw.name] = {
            "candidates": int(ok.sum()),
            "median_abs_pct": float(np.median(err)) if err.size else math.nan,
            "p95_abs_pct": float(np.percentile(err, 95)) if err.size else math.nan,
            "max_abs_pct": float(err.max()) if err.size else math.nan,
        }
    return out


