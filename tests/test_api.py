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


def test_functions_keep_their_names_whatever_was_imported_first():
    # roofline.fuse, .trace and .predict are functions of the API; no submodule of the package
    # shares their names, so importing every module (as a long session does) changes nothing.
    import importlib
    import pkgutil

    for info in pkgutil.walk_packages(roofline.__path__, "roofline."):
        if not info.name.startswith("roofline.profiles"):
            importlib.import_module(info.name)
    for name in ("fuse", "trace", "predict", "load_hardware", "create_model"):
        assert callable(getattr(roofline, name)) and not isinstance(
            getattr(roofline, name), type(roofline)), name
    # The README's order: predict before fuse.
    code = ("import roofline; g = roofline.trace(roofline.create_model('mobilenet_v3_small'), "
            "(1, 3, 96, 96)); roofline.predict(g, 'cpu'); print(len(roofline.fuse(g)))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert int(out.stdout) > 0


def _module_imports() -> dict[str, set[str]]:
    """Every roofline module and the roofline modules it imports, at the top or inside a
    function (a lazy import is still a dependency), read from the source. Imports for type
    checking only (under ``if TYPE_CHECKING:``) never run and are left out."""
    import ast
    from pathlib import Path

    root = Path(roofline.__file__).parent
    files = {p: "roofline." + ".".join(p.relative_to(root).with_suffix("").parts)
             for p in root.rglob("*.py")}
    zoo = root.parent / "models"
    files.update({p: "roofline.zoo." + p.stem for p in zoo.glob("*.py")})
    names = {}
    for path, module in files.items():
        module = module.removesuffix(".__init__")
        names[path] = module
    known = set(names.values())
    graph: dict[str, set[str]] = {}
    for path, module in names.items():
        is_package = path.name == "__init__.py"
        package = module if is_package else module.rsplit(".", 1)[0]
        found: set[str] = set()
        tree = ast.parse(path.read_text(encoding="utf-8"))
        typing_only = {id(n) for block in ast.walk(tree) if isinstance(block, ast.If)
                       and isinstance(block.test, ast.Name) and block.test.id == "TYPE_CHECKING"
                       for stmt in block.body for n in ast.walk(stmt)}
        for node in ast.walk(tree):
            if id(node) in typing_only:
                continue
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package.split(".")
                    base = base[:len(base) - node.level + 1]
                    prefix = ".".join(base + ([node.module] if node.module else []))
                else:
                    prefix = node.module or ""
                targets = [prefix] + [f"{prefix}.{a.name}" for a in node.names]
            for target in targets:
                while target and target not in known:
                    target = target.rpartition(".")[0]
                if target and target != module:
                    found.add(target)
        graph[module] = found
    return graph


def test_no_import_cycle_among_the_modules():
    graph = _module_imports()
    # Packages' __init__ re-exports are not dependencies of their children on them.
    for module, deps in graph.items():
        graph[module] = {d for d in deps if not module.startswith(d + ".")}
    seen: dict[str, int] = {}
    path: list[str] = []

    def visit(node: str) -> None:
        seen[node] = 1
        path.append(node)
        for dep in sorted(graph.get(node, ())):
            if seen.get(dep) == 1:
                cycle = path[path.index(dep):] + [dep]
                raise AssertionError("import cycle: " + " -> ".join(cycle))
            if dep not in seen:
                visit(dep)
        path.pop()
        seen[node] = 2

    for module in sorted(graph):
        if module not in seen:
            visit(module)


def test_the_readme_python_api_block_runs():
    """The README's Python API example runs as written (its first python block)."""
    import re
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```python\n(.*?)```", readme, flags=re.S)
    assert blocks, "the README has no python block"
    code = "import warnings\nwarnings.simplefilter('error')\n" + blocks[0]
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)


def test_the_readme_lists_the_onnx_operators_the_reader_has_rules_for():
    from pathlib import Path

    from roofline.sources.onnx.ops import RULES, coverage_markdown

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    table = coverage_markdown()
    assert table in readme, "README's ONNX operator table is stale: paste coverage_markdown()"
    # Every rule is in the table once.
    listed = [op.strip() for line in table.splitlines()[2:]
              for op in line.split("|")[2].split(",")]
    assert sorted(listed) == sorted(f"{d}:{t}" if d else t for d, t in RULES)
