"""The benchmark scripts import their harness by module name (benchmarks/ on sys.path as a script): every
`from <local module> import names` names a module of benchmarks/ that defines those names. (Four scripts
still imported benchmarks/_machine.py after it became _harness.py; nothing else runs them in CI.)"""

import ast
import pathlib

BENCH = pathlib.Path(__file__).resolve().parents[2] / "benchmarks"


def _top_level_names(tree):
    names = set()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.Assign):
            names.update(t.id for t in node.targets if isinstance(t, ast.Name))
        elif isinstance(node, (ast.AnnAssign, ast.AugAssign)) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names.update((a.asname or a.name).split(".")[0] for a in node.names)
    return names


def test_benchmark_scripts_import_only_what_their_local_modules_define():
    local = {p.stem: p for p in BENCH.glob("*.py")}
    assert "_harness" in local
    defined = {stem: _top_level_names(ast.parse(p.read_text())) for stem, p in local.items()}
    missing = []
    for stem, path in sorted(local.items()):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                mod = node.module
                if mod in local:
                    missing += [f"{stem}: {mod}.{a.name}" for a in node.names if a.name not in defined[mod]]
                elif mod.startswith("_") and "." not in mod:  # a private module that is not in benchmarks/
                    missing.append(f"{stem}: module {mod}")
            elif isinstance(node, ast.Import):
                missing += [f"{stem}: module {a.name}" for a in node.names if a.name.startswith("_machine")]
    assert not missing, missing
