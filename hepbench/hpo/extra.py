"""The `hpo` extra: the commands check for it before any work, with a message that says how to install it."""

from __future__ import annotations

from hepbench.core.errors import require_extra as _require

EXTRA_MODULES = ("ray.tune", "hpbandster", "ConfigSpace", "sklearn")


def require_extra() -> None:
    _require("hpo", EXTRA_MODULES, "the hpo commands")
