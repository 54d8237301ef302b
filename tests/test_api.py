"""The public API and the one-way data flow: what imports what."""

from __future__ import annotations

import subprocess
import sys

import roofline


def test_every_public_name_resolves():
    for name in roofline.__all__:
        assert getattr(roofline, name) is not None, name
    assert sorted(dir(roofline)) == sorted(set(dir(roofline)))


def _imports_after(statement: str) -> set[str]:
    code = f"import sys; {statement}; print(' '.join(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    return set(out.stdout.split())


def test_pure_core_imports_neither_torch_nor_plotly():
    # graph, engine and hardware are the pure core: fast to import, no torch, no plotly.
    loaded = _imports_after("import roofline, roofline.core.graph, roofline.core.engine, "
                            "roofline.core.hardware, roofline.core.fuse, "
                            "roofline.analyses.pareto, roofline.analyses.ridge")
    assert "torch" not in loaded
    assert "plotly" not in loaded


def test_predicting_from_a_cached_graph_needs_no_torch(tmp_path):
    import json

    from roofline.sources.variant import Variant

    graph = Variant("mobilenet_v2").trace()
    path = tmp_path / "graph.json"
    path.write_text(json.dumps(graph.to_dict()))
    loaded = _imports_after(
        "import json; from roofline.core.graph import LayerGraph; from roofline import predict; "
        f"g = LayerGraph.from_dict(json.load(open({str(path)!r}))); "
        "assert predict(g, 'cpu').latency_ms > 0")
    assert "torch" not in loaded and "plotly" not in loaded
