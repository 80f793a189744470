"""Import kubernetes-asyncio without loading its ~1 000 generated API and model modules until one is used.

``kubernetes_asyncio/__init__.py`` imports every sub-package, and ``kubernetes_asyncio.client`` every API
class and model: about 33 MiB of a process that only needs the configuration loader, ``Configuration``
and ``ApiClient`` (druid speaks plain JSON through :mod:`druid.runtime.client`). :func:`install` registers
the packages ``kubernetes_asyncio``, ``kubernetes_asyncio.client`` and ``kubernetes_asyncio.client.models``
as empty package modules over the real directories, so importing one of their submodules
(``kubernetes_asyncio.config``, ``kubernetes_asyncio.client.api_client``) loads just that submodule and
its own imports. Any other attribute of such a package (``client.CoreV1Api``, ``models.V1Pod``) runs the
real ``__init__`` into the same module object on first use, after which the package is complete; a
submodule's name resolves to the submodule. Nothing changes when kubernetes-asyncio was imported before.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import types
from collections.abc import Mapping
from typing import Any

_LIGHT: Mapping[str, Mapping[str, str]] = {
    "kubernetes_asyncio": {},
    "kubernetes_asyncio.client": {
        "Configuration": "kubernetes_asyncio.client.configuration",
        "ApiClient": "kubernetes_asyncio.client.api_client",
        "ApiException": "kubernetes_asyncio.client.exceptions",
    },
    "kubernetes_asyncio.client.models": {},
}


def _deferred_package(name: str, light: Mapping[str, str]) -> types.ModuleType | None:
    spec = importlib.util.find_spec(name)
    if spec is None or spec.loader is None or spec.submodule_search_locations is None:
        return None
    module = types.ModuleType(name)
    module.__spec__, module.__file__, module.__package__ = spec, spec.origin, name
    module.__path__ = list(spec.submodule_search_locations)
    loader = spec.loader

    def getattr_(attr: str) -> Any:
        if attr in light:
            return getattr(importlib.import_module(light[attr]), attr)
        if attr.startswith("__"):
            raise AttributeError(attr)
        if importlib.util.find_spec(f"{name}.{attr}") is not None:
            return importlib.import_module(f"{name}.{attr}")
        delattr(module, "__getattr__")
        loader.exec_module(module)  # the real __init__: the package is complete from now on
        return getattr(module, attr)

    setattr(module, "__getattr__", getattr_)  # noqa: B010 (a module attribute mypy does not know)
    return module


def install() -> None:
    """Register the deferred packages (a no-op for a package already imported)."""
    for name, light in _LIGHT.items():
        if name in sys.modules:
            continue
        module = _deferred_package(name, light)
        if module is None:
            return
        sys.modules[name] = module
        parent, _, child = name.rpartition(".")
        if parent:
            setattr(sys.modules[parent], child, module)
