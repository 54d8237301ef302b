"""Hardware-aware architecture search: block-level spaces as data, candidates priced from
cached block graphs on many devices at once, frontiers, targets and latency lookup tables.

    space (TOML) ─▶ Genome (integer rows) ─▶ units ─▶ UnitBank (traced once, cached)
                                                   └▶ compose ─▶ engine.price ─▶ rows, LUT

Modules: ``space`` (schema, shipped spaces), ``candidates`` (genome, sampling, encoding),
``blocks`` (units, tracing, cache), ``pricing`` (composition, chunked pricing), ``search``
(random and evolutionary search, frontiers, targets), ``lut`` (lookup tables).
"""

from .space import SearchSpace, list_spaces, load_space

__all__ = ["SearchSpace", "list_spaces", "load_space"]
