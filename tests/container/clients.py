"""The real clients that read hepscore/: hep-score 1.5 and 2.0.1 (run from their unmodified sources)
and the HEP Benchmark Suite 3.1 (`bmkrun`, with the hep-score 1.5 it pins, in a cached venv), all
from the shared folder (tests/shared_folder.py); and the header by which each file in hepscore/
names the clients and container modes it serves:

    # clients: hep-score 1.5, ...
    # modes: docker, singularity
"""

from __future__ import annotations

import configparser
import hashlib
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from tests.caches import CACHES
from tests.node_stack import _only_one, key
from tests.shared_folder import SHARED, need_shared

ROOT = Path(__file__).resolve().parents[2]
HEPSCORE_DIR = ROOT / "hepscore"
MODES = ("docker", "singularity")
# Deprecation warning of hep-score 2 for the top key of hep-score 1.5's files.
DEPRECATED_KEY = "Deprecated 'hepscore_benchmark' key"
SUITE_CACHE = CACHES / "bmk-suite"


@dataclass(frozen=True)
class HepScore:
    """One hep-score release, run from its source tree: its package needs only PyYAML and pbr, and
    pbr, which finds no version in a source tree, takes it from PBR_VERSION."""

    name: str  # as hepscore/ headers name it
    folder: Path
    version: str

    def source(self) -> Path:
        """The source folder, checked to hold this release (setup.cfg's version, else the ChangeLog's top)."""
        need_shared(self.folder / "hepscore" / "hepscore.py", self.name)
        cfg = configparser.ConfigParser()
        cfg.read(self.folder / "setup.cfg")
        found = cfg.get("metadata", "version", fallback="") or (self.folder / "ChangeLog").read_text().split()[
            0
        ].lstrip("v")
        assert found == self.version, f"{self.folder} holds hep-score {found}, not {self.version}"
        return self.folder

    def env(self, base: dict | None = None) -> dict:
        """An environment in which `python -m hepscore.main` is this release."""
        return {**(os.environ if base is None else base), "PYTHONPATH": str(self.source()), "PBR_VERSION": self.version}


HEPSCORE_1_5 = HepScore("hep-score 1.5", SHARED / "clients" / "hep-score-1.5", "1.5")
HEPSCORE_2 = HepScore("hep-score 2.0.1", SHARED / "clients" / "hep-score-2", "2.0.1")
HEPSCORES = {c.name: c for c in (HEPSCORE_1_5, HEPSCORE_2)}
SUITE_SOURCE = SHARED / "clients" / "hep-benchmark-suite-3.1"
SUITE = "bmkrun 3.1"  # the Suite's name in headers


@dataclass(frozen=True)
class Header:
    """What a hepscore/ file says it serves: client names (HEPSCORES' keys, or SUITE) and modes."""

    clients: tuple[str, ...]
    modes: tuple[str, ...]


def read_header(path: Path) -> Header:
    """The `# clients:` and `# modes:` lines of a hepscore/ file; fails, naming the file, without them."""
    text = path.read_text()
    found = {}
    for field in ("clients", "modes"):
        m = re.search(rf"^# {field}: (.+)$", text, flags=re.M)
        assert m, f"{path.relative_to(ROOT)}: no '# {field}: ...' header line"
        found[field] = tuple(part.strip() for part in m.group(1).split(","))
    assert set(found["modes"]) <= set(MODES), f"{path.relative_to(ROOT)}: unknown mode in {found['modes']}"
    return Header(**found)


def hepscore_argv(args: dict) -> list[str]:
    """The workload arguments hep-score builds from a benchmark's `args`: always -W, then
    `--key value` (a key starting with '-' as it is; true alone; None/false dropped)."""
    argv = ["-W"]
    for name, value in args.items():
        if str(value) in ("None", "False"):
            continue
        argv.append(name if name.startswith("-") else f"--{name}")
        if str(value) != "True":
            argv.append(str(value))
    return argv


def tree_digest(folder: Path) -> str:
    """SHA-256 over a folder's file names and contents."""
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        digest.update(str(path.relative_to(folder)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def suite_bin() -> Path:
    """The bin folder of a venv holding the Suite 3.1 (`bmkrun`) and hep-score 1.5, installed as the
    Suite's PROVENANCE in the shared folder says (the Suite's requirements name hep-score by a
    gitlab URL, which is not fetched): each source copied first (pip's build writes into it), then
    hep-score with PBR_VERSION, then the Suite; their PyPI dependencies from pip's index and cache.
    Made once per content of both sources and this Python (about 30 s), under SUITE_CACHE, in place
    (a venv cannot move: its scripts name its interpreter) and marked complete when whole."""
    suite = need_shared(SUITE_SOURCE / "setup.py", "the HEP Benchmark Suite 3.1").parent
    hepscore = HEPSCORE_1_5.source()
    python = f"{sys.version_info.major}.{sys.version_info.minor}"
    final = SUITE_CACHE / f"py{python}-{key(tree_digest(suite), tree_digest(hepscore))}"
    with _only_one(final):
        if not (final / "complete").is_file():
            _make_suite_venv(final, suite, hepscore)
    return final / "venv" / "bin"


def _make_suite_venv(final: Path, suite: Path, hepscore: Path) -> None:
    shutil.rmtree(final, ignore_errors=True)
    src = final / "src"
    for folder in (suite, hepscore):
        shutil.copytree(folder, src / folder.name)
        subprocess.run(["chmod", "-R", "u+w", src / folder.name], check=True)  # the shared copies are read-only
    r = subprocess.run([sys.executable, "-m", "venv", final / "venv"], capture_output=True, text=True)
    assert r.returncode == 0, f"python -m venv {final / 'venv'}:\n{r.stderr[-2000:]}"
    pip = [final / "venv" / "bin" / "python", "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    for folder, env in ((src / hepscore.name, {"PBR_VERSION": HEPSCORE_1_5.version}), (src / suite.name, {})):
        r = subprocess.run([*pip, folder], capture_output=True, text=True, timeout=900, env={**os.environ, **env})
        assert r.returncode == 0, f"pip install {folder.name}:\n{r.stdout[-2000:]}{r.stderr[-2000:]}"
    r = subprocess.run([final / "venv" / "bin" / "bmkrun", "--version"], capture_output=True, text=True)
    assert r.stdout.strip() == SUITE.split()[1], f"bmkrun --version: {r.stdout}{r.stderr}"
    shutil.rmtree(src)
    (final / "complete").touch()
