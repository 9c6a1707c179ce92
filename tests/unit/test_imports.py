"""The package's structure: every module imports on its own in a fresh interpreter, the import graph of
rnnfast's modules has no cycle, and the module paths from before the subpackages still import."""

import ast
import importlib.util
import os
import pathlib
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import pytest

import rnnfast

ROOT = pathlib.Path(rnnfast.__file__).parent
PACKAGE = ROOT.name


def module_names():
    """Every module of the package: its .py files (packages by their __init__) and the compiled _core."""
    names = {f"{PACKAGE}._core"}
    for path in ROOT.rglob("*.py"):
        parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        names.add(".".join(parts))
    return sorted(names)


def _source(name):
    base = ROOT.parent.joinpath(*name.split("."))
    return base / "__init__.py" if base.is_dir() else base.with_suffix(".py")


def _need(module, modules, ancestors, deps, attribute_of=False):
    """Add to deps the module and the packages above it, but not the importing module's own enclosing
    packages (`ancestors`) unless an attribute of one of them is wanted (`from .. import name`, name
    defined in its __init__)."""
    if module not in modules:
        return
    parts = module.split(".")
    for i in range(1, len(parts) + 1):
        pkg = ".".join(parts[:i])
        if pkg not in ancestors or (pkg == module and attribute_of):
            deps.add(pkg)


def import_graph():
    """module -> set of modules it imports (anywhere in it, function bodies included), resolved to modules.

    `from P import x` depends on P.x when that is a module, else on P (x is then a name P's __init__
    defines). Importing P.Q.R also runs the packages P and P.Q first: those are dependencies too, except
    the importing module's own enclosing packages when only a submodule is wanted (they are already being
    imported, which is how packages work).
    """
    modules = set(module_names())
    graph = {}
    for name in modules:
        if name.endswith("._core"):
            graph[name] = set()
            continue
        path = _source(name)
        is_package = path.name == "__init__.py"
        own_package = name if is_package else name.rpartition(".")[0]
        ancestors = {".".join(name.split(".")[:i]) for i in range(1, name.count(".") + 1)}
        deps = set()

        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.name.split(".")[0] == PACKAGE:
                        _need(alias.name, modules, ancestors, deps, attribute_of=alias.name == PACKAGE)
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = own_package.split(".")
                    base = base[:len(base) - (node.level - 1)]
                    target = ".".join(base + ([node.module] if node.module else []))
                else:
                    target = node.module or ""
                if target.split(".")[0] != PACKAGE:
                    continue
                for alias in node.names:
                    sub = f"{target}.{alias.name}"
                    if sub in modules:
                        _need(sub, modules, ancestors, deps)
                    else:
                        _need(target, modules, ancestors, deps, attribute_of=True)
        deps.discard(name)
        graph[name] = deps
    return graph


def find_cycle(graph):
    """A list of modules forming a cycle (first == last), or None."""
    state, stack = {}, []

    def visit(node):
        state[node] = "open"
        stack.append(node)
        for dep in sorted(graph.get(node, ())):
            if state.get(dep) == "open":
                return stack[stack.index(dep):] + [dep]
            if dep not in state:
                found = visit(dep)
                if found:
                    return found
        stack.pop()
        state[node] = "done"
        return None

    for node in sorted(graph):
        if node not in state:
            found = visit(node)
            if found:
                return found
    return None


def test_the_import_graph_has_no_cycle():
    graph = import_graph()
    assert len(graph) > 30 and graph[f"{PACKAGE}.nn.recurrent"] >= {f"{PACKAGE}.backends", f"{PACKAGE}._util.checks"}
    assert find_cycle(graph) is None, " -> ".join(find_cycle(graph))


def test_the_cycle_finder_finds_cycles():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b", "c"}, "b": {"c"}, "c": set()}) is None


def test_a_package_that_imports_a_name_back_from_its_parent_is_a_cycle(tmp_path, monkeypatch):
    """The graph sees `from . import name` in a submodule as needing the package's __init__, which imports
    the submodule: the cycle that made `optim` and `hessian_free` depend on the order of imports."""
    pkg = tmp_path / PACKAGE
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("from .sub import thing\n")
    (pkg / "sub" / "__init__.py").write_text("from .impl import thing\n")
    (pkg / "sub" / "impl.py").write_text("from .. import helper\nthing = 1\n")
    (pkg / "helper.py").write_text("x = 1\n")
    monkeypatch.setattr(sys.modules[__name__], "ROOT", pkg)
    assert find_cycle(import_graph()) is None  # helper is a module: no need of the package's __init__
    (pkg / "helper.py").unlink()
    (pkg / "__init__.py").write_text("helper = 1\nfrom .sub import thing\n")
    assert find_cycle(import_graph()) == [PACKAGE, f"{PACKAGE}.sub", f"{PACKAGE}.sub.impl", PACKAGE]


def _import_alone(name):
    code = f"import importlib; importlib.import_module({name!r})"
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                         env=dict(os.environ, PYTHONWARNINGS="error"))
    return name, run.returncode, run.stderr[-2000:]


def test_every_module_imports_first_in_a_fresh_interpreter():
    """A cycle or a missing import shows as a failure that depends on which module is imported first."""
    names = [n for n in module_names() if not n.endswith("._core")]
    if importlib.util.find_spec("torch") is None:  # rnnfast.torch needs torch (tests/torch_api checks its error)
        names = [n for n in names if n != f"{PACKAGE}.torch" and not n.startswith(f"{PACKAGE}.torch.")]
    with ThreadPoolExecutor(max_workers=2) as pool:
        failed = [(n, err) for n, rc, err in pool.map(_import_alone, names) if rc != 0]
    assert not failed, failed


OLD_PATHS = {"layers": "nn.recurrent", "mrnn": "nn.mrnn", "init": "nn.init", "losses": "nn.losses",
             "diagnostics": "nn.diagnostics", "hessian_free": "optim.hessian_free", "rop": "optim.rop",
             "charmodel": "char.model", "checkpoint": "io.checkpoint"}


@pytest.mark.parametrize("old", sorted(OLD_PATHS))
def test_the_module_paths_before_the_packages_still_import(old):
    """`import rnnfast.hessian_free` (README, users' code) gives the module at its new path, the same object."""
    code = (f"import importlib, {PACKAGE}.{old} as a; b = importlib.import_module('{PACKAGE}.{OLD_PATHS[old]}');"
            f" assert a is b and a.__spec__.name == b.__name__, (a, b, a.__spec__)")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr


def test_public_names_stay_where_users_have_them():
    from rnnfast.char import limit_numpy_blas_threads  # noqa: F401  (README)
    from rnnfast.charmodel import CharModel, FusedMinCharRNN  # noqa: F401
    from rnnfast.esn import ESN, RidgeAccumulator, population_sweep, run_population, spectral_radius  # noqa: F401
    from rnnfast.hessian_free import SequenceModel, conjugate_gradient  # noqa: F401

    assert rnnfast.LSTM is rnnfast.nn.LSTM and rnnfast.ESN is ESN
    assert rnnfast.optim.Adam and rnnfast.optim.HessianFree and rnnfast.optim.clip_grad_norm_
    assert rnnfast.losses.softmax_cross_entropy and rnnfast.init.init_recurrent_esn
    assert rnnfast.rop.rnn_rop_engine and rnnfast.nn.Conditioned and rnnfast.nn.array_module
