"""One registry helper for every pluggable kind (layout, OCR and VLM engines, readers).

A registry maps a ``kind`` name to ``"module:Class"``; the module is imported only when that
kind is built, so naming a kind never pulls in torch or onnxruntime for the others.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Any

from docvlm.errors import ConfigError


class Registry:
    """Kind names to lazily imported implementations.

    Args:
        what: What the kinds are, for error messages ("layout engine", "reader", ...).
        targets: ``{kind: "package.module:ClassName"}``.
    """

    def __init__(self, what: str, targets: Mapping[str, str]) -> None:
        self.what = what
        self.targets = dict(targets)

    @property
    def kinds(self) -> list[str]:
        """The known kind names, sorted."""
        return sorted(self.targets)

    def resolve(self, kind: str) -> type[Any]:
        """The class registered for ``kind``.

        Raises:
            ConfigError: ``kind`` is unknown (the message lists the known kinds), or its
                module cannot be imported (a missing optional dependency, named).
        """
        target = self.targets.get(kind)
        if target is None:
            raise ConfigError(
                f"unknown {self.what} kind {kind!r}; known kinds: {', '.join(self.kinds)}"
            )
        module_name, cls_name = target.split(":")
        try:
            module = importlib.import_module(module_name)
        except ImportError as exc:
            raise ConfigError(
                f"{self.what} kind {kind!r} needs a package that is not installed: {exc}"
            ) from exc
        return getattr(module, cls_name)

    def create(self, kind: str, *args: Any, **kwargs: Any) -> Any:
        """Build the implementation of ``kind`` with the given arguments."""
        return self.resolve(kind)(*args, **kwargs)

    def __contains__(self, kind: object) -> bool:
        return kind in self.targets
