"""The module paths of rnnfast before its subpackages, kept for code that imports them: each old name is
the same module object as its new home (imported when first asked for, so `import rnnfast` stays light).

    import rnnfast.hessian_free          # is rnnfast.optim.hessian_free
"""

import importlib
import importlib.abc
import importlib.util
import sys

MOVED = {
    "layers": "nn.recurrent",
    "mrnn": "nn.mrnn",
    "init": "nn.init",
    "losses": "nn.losses",
    "diagnostics": "nn.diagnostics",
    "hessian_free": "optim.hessian_free",
    "rop": "optim.rop",
    "charmodel": "char.model",
    "checkpoint": "io.checkpoint",
}


class MovedModules(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Finds `<package>.<old name>` and loads it as the module at its new path."""

    def __init__(self, package):
        self.package = package
        self._specs = {}

    def find_spec(self, fullname, path=None, target=None):
        head, _, old = fullname.rpartition(".")
        if head != self.package or old not in MOVED:
            return None
        return importlib.util.spec_from_loader(fullname, self)

    def create_module(self, spec):
        new = importlib.import_module(f"{self.package}.{MOVED[spec.name.rpartition('.')[2]]}")
        self._specs[spec.name] = new.__spec__
        return new

    def exec_module(self, module):
        # the import system set the old name's spec on the module; it keeps its own
        module.__spec__ = self._specs.pop(module.__spec__.name, module.__spec__)


def install(package):
    if not any(isinstance(f, MovedModules) and f.package == package for f in sys.meta_path):
        sys.meta_path.append(MovedModules(package))
