"""Where the suite keeps what it makes once per machine (docs/development.md, "Caches"): each
cache is a folder under CACHES, which follows $XDG_CACHE_HOME as pip's and the Makefile's do."""

from __future__ import annotations

import os
from pathlib import Path

CACHES = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "hepbench"
