"""Package attributes that are functions and also name a submodule: ``capeval.meteor`` is the METEOR
function *and* the namespace of the jar wrapper ``capeval/meteor``; likewise ``capeval.evaluate``,
``capeval.cider``, ``capeval.bleu`` and ``capeval.tokenize``.

Importing a submodule normally rebinds the package attribute to the module (so ``import
capeval.meteor`` would turn the function into a module). :class:`Package` keeps such attributes, and
:class:`ModuleFunction` calls the function while attribute reads and writes go to the submodule, so
``capeval.meteor(refs, preds)``, ``capeval.meteor.Meteor`` and ``import capeval.meteor as M; M.Meteor``
all work, in any import order.
"""

from __future__ import annotations

import importlib
import types


class ModuleFunction:
    """A function that also exposes the submodule of the same name."""

    __slots__ = ("_function", "_module")

    def __init__(self, function, module: str):
        object.__setattr__(self, "_function", function)
        object.__setattr__(self, "_module", module)

    def __call__(self, *args, **kwargs):
        return self._function(*args, **kwargs)

    @property
    def __wrapped__(self):  # inspect.signature and help() see the function
        return self._function

    @property
    def __doc__(self):
        return self._function.__doc__

    @property
    def __name__(self):
        return self._function.__name__

    def module(self) -> types.ModuleType:
        """The submodule of the same name."""
        return importlib.import_module(self._module)

    def __getattr__(self, name):
        return getattr(importlib.import_module(object.__getattribute__(self, "_module")), name)

    def __setattr__(self, name, value):  # e.g. monkeypatch.setattr(capeval.meteor, "find_java", ...)
        setattr(self.module(), name, value)

    def __delattr__(self, name):
        delattr(self.module(), name)

    def __dir__(self):
        return sorted(set(dir(self.module())) | {"__call__", "__wrapped__"})

    def __repr__(self) -> str:
        return f"<function {self._function.__module__}.{self._function.__name__} (attributes: module {self._module})>"


class Package(types.ModuleType):
    """The ``capeval`` package: importing a submodule does not replace a :class:`ModuleFunction`."""

    def __setattr__(self, name, value):
        if isinstance(value, types.ModuleType) and isinstance(self.__dict__.get(name), ModuleFunction):
            return
        super().__setattr__(name, value)
