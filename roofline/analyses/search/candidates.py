"""Candidates of a search space as rows of small integers, and the units each is made of.

Owns the genome layout, random sampling, mutation, the readable encoding
(``224/32:conv3/48:fib3e4/80:xd35e4,ib3e4/...``: the resolution, then per stage its output
channels and the token of each block's op) and turning many candidates at once into the unit
ids that ``roofline.analyses.search.pricing`` composes. Numpy only: nothing is built per
candidate.

Genome of a space with stages s = 0..S-1 (``Genome.columns``)::

    [resolution index] + per stage [channel index, depth index, op index x max depth]

Op indices refer to ``SearchSpace.stage_ops(s)``: the first block's list (only ops that can
carry the stride in a strided stage), then the others'. Slots beyond the depth hold -1; with
``share = "stage"`` every used slot holds the first's op.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from ...errors import UsageError
from .blocks import BlockKey, HeadKey, UnitBank, UnitKey
from .space import BlockOp, SearchSpace

__all__ = ["Genome"]


def _down(size: int, stride: int) -> int:
    """Output size of a stride-``stride`` layer with padding k // 2 (odd k): ceil."""
    return -(-size // stride)


@dataclass
class _StageTables:
    first_ops: tuple[BlockOp, ...]
    rest_ops: tuple[BlockOp, ...]
    depths: np.ndarray
    channels: np.ndarray
    first_ids: np.ndarray  # block id [prev channel idx, channel idx, op, resolution idx]
    rest_ids: np.ndarray  # block id [channel idx, op, resolution idx]
    column: int  # genome column of the channel index


class Genome:
    """The integer encoding of ``space``'s candidates and its map to priced units."""

    def __init__(self, space: SearchSpace, bank: UnitBank | None = None):
        self.space = space
        self.bank = bank
        self.blocks: list[BlockKey] = []
        self._block_index: dict[BlockKey, int] = {}
        self.block_model_input: list[bool] = []
        self.block_place: list[tuple[str, str]] = []  # (stage name, "first" | "rest")
        # Where each block was first registered: (stage, first?, prev channel idx, channel idx,
        # op idx, resolution idx), to build a candidate that holds it (:meth:`covering`).
        self.block_where: list[tuple[int, bool, int, int, int, int]] = []
        self.stages: list[_StageTables] = []
        column = 1
        prev_channels = [3]
        sizes = list(space.resolution)  # input size of the current stage, per resolution
        for s, stage in enumerate(space.stage):
            first_ops, rest_ops = space.stage_ops(s)
            act = space.stage_activation(s)
            mid = [_down(r, stage.stride) for r in sizes]
            first = np.empty((len(prev_channels), len(stage.channels), len(first_ops),
                              len(sizes)), dtype=np.int64)
            rest = np.full((len(stage.channels), len(rest_ops), len(sizes)), -1, dtype=np.int64)
            for a, c_in in enumerate(prev_channels):
                for b, c_out in enumerate(stage.channels):
                    for o, op in enumerate(first_ops):
                        for r, size in enumerate(sizes):
                            first[a, b, o, r] = self._block(
                                BlockKey(op, c_in, c_out, stage.stride, act, size, size),
                                (stage.name, "first"), (s, True, a, b, o, r),
                                model_input=s == 0)
            for b, c in enumerate(stage.channels if max(stage.depth) > 1 else ()):
                for o, op in enumerate(rest_ops):
                    for r, size in enumerate(mid):
                        rest[b, o, r] = self._block(BlockKey(op, c, c, 1, act, size, size),
                                                    (stage.name, "rest"), (s, False, 0, b, o, r))
            self.stages.append(_StageTables(first_ops, rest_ops, np.array(stage.depth),
                                            np.array(stage.channels), first, rest, column))
            column += 2 + max(stage.depth)
            prev_channels = list(stage.channels)
            sizes = mid
        self.columns = column
        head = space.head
        self.heads = np.empty((len(prev_channels), len(sizes)), dtype=np.int64)
        self.head_keys: list[HeadKey] = []
        for a, c in enumerate(prev_channels):
            for r, size in enumerate(sizes):
                self.heads[a, r] = len(self.head_keys)
                self.head_keys.append(HeadKey(c, size, size, head.conv or 0, head.hidden or 0,
                                              head.hidden_norm, head.classes,
                                              space.head_activation))
        self.max_units = sum(max(s.depth) for s in space.stage) + 1
        self._leading = np.array([b.op.leading_norm for b in self.blocks], dtype=bool)
        self._unit_of_block: np.ndarray | None = None
        self._unit_of_head: np.ndarray | None = None

    def _block(self, key: BlockKey, place: tuple[str, str],
               where: tuple[int, bool, int, int, int, int], model_input: bool = False) -> int:
        found = self._block_index.get(key)
        if found is not None:
            return found
        self._block_index[key] = len(self.blocks)
        self.blocks.append(key)
        self.block_model_input.append(model_input)
        self.block_place.append(place)
        self.block_where.append(where)
        return len(self.blocks) - 1

    # -- sampling and mutation -----------------------------------------------------------------
    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """``n`` uniformly random candidates (each choice uniform among its options)."""
        rows = np.full((n, self.columns), -1, dtype=np.int16)
        rows[:, 0] = rng.integers(0, len(self.space.resolution), n)
        for st in self.stages:
            c = st.column
            rows[:, c] = rng.integers(0, len(st.channels), n)
            rows[:, c + 1] = rng.integers(0, len(st.depths), n)
            depth = st.depths[rows[:, c + 1]]
            rows[:, c + 2] = rng.integers(0, len(st.first_ops), n)
            for j in range(1, int(st.depths.max())):
                ops = rng.integers(0, len(st.rest_ops), n)
                rows[:, c + 2 + j] = np.where(depth > j, ops, -1)
        return self.canonical(rows)

    def canonical(self, rows: np.ndarray) -> np.ndarray:
        """Slots beyond each stage's depth set to -1, shared ops copied (in place)."""
        share = self.space.share == "stage"
        for st in self.stages:
            c = st.column
            depth = st.depths[rows[:, c + 1]]
            for j in range(1, int(st.depths.max())):
                col = rows[:, c + 2 + j]
                if share:
                    rows[:, c + 2 + j] = np.where(depth > j, rows[:, c + 2], -1)
                else:
                    rows[:, c + 2 + j] = np.where(depth > j, col, -1)
        return rows

    def mutate(self, rows: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Each row with one choice changed at random (resolution, a stage's width or depth,
        or one block's op); new slots of a deeper stage get random ops."""
        out = rows.copy()
        n = len(out)
        genes: list[tuple[int, int, str]] = []  # (column, options, what)
        if len(self.space.resolution) > 1:
            genes.append((0, len(self.space.resolution), "res"))
        for st in self.stages:
            c = st.column
            if len(st.channels) > 1:
                genes.append((c, len(st.channels), "ch"))
            if len(st.depths) > 1:
                genes.append((c + 1, len(st.depths), "depth"))
            if len(st.first_ops) > 1:
                genes.append((c + 2, len(st.first_ops), "op0"))
            if len(st.rest_ops) > 1 and self.space.share == "layer":
                for j in range(1, int(st.depths.max())):
                    genes.append((c + 2 + j, len(st.rest_ops), "op"))
        if not genes:
            return out
        # Pick one gene per row among those in use (an op slot beyond the depth is not).
        active = np.ones((n, len(genes)), dtype=bool)
        for g, (col, _, what) in enumerate(genes):
            if what == "op":
                active[:, g] = out[:, col] >= 0
        pick = np.argmax(rng.random((n, len(genes))) * active, axis=1)
        for g, (col, options, _) in enumerate(genes):
            sel = np.flatnonzero(pick == g)
            if not sel.size:
                continue
            shift = rng.integers(1, max(2, options), sel.size)
            out[sel, col] = (out[sel, col] + shift) % options
        # A stage made deeper needs ops in its new slots.
        for st in self.stages:
            c = st.column
            depth = st.depths[out[:, c + 1]]
            for j in range(1, int(st.depths.max())):
                col = out[:, c + 2 + j]
                fresh = rng.integers(0, len(st.rest_ops), n)
                out[:, c + 2 + j] = np.where((depth > j) & (col < 0), fresh, col)
        return self.canonical(out)

    def covering(self, lut_ids: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """One candidate per lookup-table id (a block, or a head after the last block id)
        that holds it: a random candidate with the choices that block needs."""
        rows = self.sample(len(lut_ids), rng)
        n_blocks = len(self.blocks)
        last = self.stages[-1]
        for i, b in enumerate(np.asarray(lut_ids).tolist()):
            if b >= n_blocks:
                a, r = divmod(b - n_blocks, self.heads.shape[1])
                rows[i, 0], rows[i, last.column] = r, a
                continue
            s, first, a, ch, o, r = self.block_where[b]
            st = self.stages[s]
            rows[i, 0] = r
            rows[i, st.column] = ch
            if first:
                if s > 0:
                    rows[i, self.stages[s - 1].column] = a
                rows[i, st.column + 2] = o
            else:
                deeper = np.flatnonzero(st.depths >= 2)
                rows[i, st.column + 1] = deeper[0]
                rows[i, st.column + 3] = o
                if self.space.share == "stage":
                    rows[i, st.column + 2] = o
                elif rows[i, st.column + 2] < 0:
                    rows[i, st.column + 2] = 0
        return self.canonical(rows)

    # -- encoding ------------------------------------------------------------------------------
    @cached_property
    def _tokens(self) -> list[tuple[list[str], list[str]]]:
        return [([op.token for op in st.first_ops], [op.token for op in st.rest_ops])
                for st in self.stages]

    def encode(self, rows: np.ndarray) -> list[str]:
        """The readable encoding of each row."""
        res = [str(r) for r in self.space.resolution]
        out = []
        tokens = self._tokens
        for row in rows.tolist():
            parts = [res[row[0]]]
            for st, (first, rest) in zip(self.stages, tokens, strict=True):
                c = st.column
                ops = [first[row[c + 2]]] + [rest[o] for o in row[c + 3:c + 2 + int(
                    st.depths.max())] if o >= 0]
                parts.append(f"{st.channels[row[c]]}:{','.join(ops)}")
            out.append("/".join(parts))
        return out

    def decode(self, texts: Sequence[str]) -> np.ndarray:
        """Rows from encodings (UsageError naming what does not fit the space)."""
        rows = np.full((len(texts), self.columns), -1, dtype=np.int16)
        tokens = self._tokens
        for i, text in enumerate(texts):
            parts = str(text).strip().split("/")
            if len(parts) != len(self.stages) + 1:
                raise UsageError(f"candidate {text!r}: expected the resolution and "
                                 f"{len(self.stages)} stages separated by '/'")
            try:
                rows[i, 0] = self.space.resolution.index(int(parts[0]))
            except ValueError:
                raise UsageError(f"candidate {text!r}: resolution {parts[0]!r} is not one of "
                                 f"{self.space.resolution}") from None
            for s, (st, (first, rest), part) in enumerate(zip(self.stages, tokens, parts[1:],
                                                              strict=True)):
                name = self.space.stage[s].name
                channels, _, ops_text = part.partition(":")
                ops = [t.strip() for t in ops_text.split(",") if t.strip()]
                try:
                    rows[i, st.column] = list(st.channels).index(int(channels))
                except ValueError:
                    raise UsageError(f"candidate {text!r}: stage {name}: {channels!r} is not "
                                     f"one of {list(st.channels)} channels") from None
                if len(ops) not in st.depths:
                    raise UsageError(f"candidate {text!r}: stage {name}: {len(ops)} blocks; "
                                     f"the space allows {list(st.depths)}")
                rows[i, st.column + 1] = list(st.depths).index(len(ops))
                for j, tok in enumerate(ops):
                    options = first if j == 0 else rest
                    if tok not in options:
                        raise UsageError(f"candidate {text!r}: stage {name}: block {tok!r} is "
                                         f"not one of {', '.join(options)}")
                    rows[i, st.column + 2 + j] = options.index(tok)
                if self.space.share == "stage" and len(set(ops)) > 1:
                    raise UsageError(f"candidate {text!r}: stage {name}: this space shares "
                                     f"one op per stage")
        return rows

    # -- units ---------------------------------------------------------------------------------
    def block_ids(self, rows: np.ndarray) -> np.ndarray:
        """(n, max_units) block ids in execution order, -1 for unused slots, then the head as
        ``-(head id) - 2``."""
        rows = np.asarray(rows, dtype=np.int64)
        n = len(rows)
        out = np.full((n, self.max_units), -1, dtype=np.int64)
        res = rows[:, 0]
        prev = np.zeros(n, dtype=np.int64)
        col = 0
        for st in self.stages:
            c = st.column
            ch = rows[:, c]
            depth = st.depths[rows[:, c + 1]]
            out[:, col] = st.first_ids[prev, ch, rows[:, c + 2], res]
            for j in range(1, int(st.depths.max())):
                op = rows[:, c + 2 + j]
                ids = st.rest_ids[ch, np.maximum(op, 0), res]
                out[:, col + j] = np.where(depth > j, ids, -1)
            col += int(st.depths.max())
            prev = ch
        out[:, col] = -self.heads[prev, res] - 2
        return out

    def units(self, rows: np.ndarray) -> np.ndarray:
        """(n, max_units) unit ids of ``self.bank`` in execution order, -1 padded: each
        block its own unit, except that a Mobile MQA block joins the unit before it."""
        if self.bank is None:
            raise ValueError("a Genome needs a UnitBank to give unit ids")
        blocks = self.block_ids(rows)
        self._map_units()
        assert self._unit_of_block is not None and self._unit_of_head is not None
        n = len(blocks)
        valid = blocks != -1
        cand = np.nonzero(valid)[0]
        blk = blocks[valid]
        is_block = blk >= 0
        single = np.where(is_block, self._unit_of_block[np.maximum(blk, 0)],
                          self._unit_of_head[np.maximum(-blk - 2, 0)])
        leading = is_block & self._leading[np.maximum(blk, 0)]
        if not leading.any():
            out = np.full((n, self.max_units), -1, dtype=np.int64)
            pos = np.arange(len(blk)) - np.searchsorted(cand, cand)
            out[cand, pos] = single
            return out
        # Runs: a new one starts at every entry that does not join the one before it.
        starts = ~leading
        run = np.cumsum(starts) - 1
        first = np.flatnonzero(starts)
        length = np.diff(np.append(first, len(blk)))
        unit = single[first]
        for r in np.flatnonzero(length > 1):
            a = first[r]
            unit[r] = self._run_unit(tuple(blk[a:a + length[r]].tolist()))
        run_cand = cand[first]
        out = np.full((n, self.max_units), -1, dtype=np.int64)
        pos = np.arange(len(first)) - np.searchsorted(run_cand, run_cand)
        out[run_cand, pos] = unit
        del run
        return out

    def _map_units(self) -> None:
        bank = self.bank
        assert bank is not None
        if self._unit_of_block is None or len(self._unit_of_block) != len(self.blocks):
            self._unit_of_block = np.array(
                [bank.id_of(UnitKey((b,), bank.batch, self.block_model_input[i]))
                 for i, b in enumerate(self.blocks)], dtype=np.int64)
            self._unit_of_head = np.array([bank.id_of(UnitKey((h,), bank.batch))
                                           for h in self.head_keys], dtype=np.int64)
            self._run_units: dict[tuple[int, ...], int] = {}

    def _run_unit(self, run: tuple[int, ...]) -> int:
        """The unit of a run of block ids (a block and the Mobile MQA blocks after it)."""
        found = self._run_units.get(run)
        if found is None:
            assert self.bank is not None
            key = UnitKey(tuple(self.blocks[b] for b in run), self.bank.batch,
                          self.block_model_input[run[0]])
            found = self._run_units[run] = self.bank.id_of(key)
        return found

    def lut_ids(self, rows: np.ndarray) -> np.ndarray:
        """(n, max_units) lookup-table ids of each candidate's blocks in order (blocks, then
        heads after the last block id), -1 padded."""
        b = self.block_ids(rows)
        return np.where(b >= 0, b, np.where(b <= -2, len(self.blocks) + (-b - 2), -1))

    def unit_keys(self, row: np.ndarray) -> list[UnitKey]:
        """The units of one candidate, in order."""
        assert self.bank is not None
        return [self.bank.keys[u] for u in self.units(row[None, :])[0] if u >= 0]

    def size(self) -> float:
        return self.space.size()

    def count_hint(self) -> str:
        size = self.size()
        return f"{size:.3g}" if size >= 1e6 or not math.isfinite(size) else f"{int(size):,}"
