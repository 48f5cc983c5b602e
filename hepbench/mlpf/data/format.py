"""The published Delphes MLPF file format: column layout, class ids, element types, file names.

Everything that knows "column 6 of a track is eta outer" lives here, so that the rest of the
package never uses a magic number. Facts: docs/data-format.md.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass

EVENTS_PER_FILE = 100
KEYS = ("X", "ygen", "ycand")
NUM_X_FEATURES = 12
NUM_Y_FEATURES = 7


class ElementType(enum.IntEnum):
    PADDING = 0
    TOWER = 1
    TRACK = 2


NUM_ELEMENT_TYPES = len(ElementType)  # depth of the one-hot encoding of X[:, 0]


class ParticleClass(enum.IntEnum):
    NONE = 0
    CHARGED_HADRON = 1
    NEUTRAL_HADRON = 2
    PHOTON = 3
    ELECTRON = 4
    MUON = 5


NUM_CLASSES = len(ParticleClass)
CHARGED_CLASSES = (ParticleClass.CHARGED_HADRON, ParticleClass.ELECTRON, ParticleClass.MUON)
# Targets of neutral hadrons below this energy were dropped (row set to zero) upstream.
NEUTRAL_HADRON_MIN_ENERGY = 9.0


class XCol(enum.IntEnum):
    """Columns of X shared by both element types."""

    TYPE = 0
    PT = 1  # E_T for towers
    ETA = 2
    SIN_PHI = 3
    COS_PHI = 4
    ENERGY = 5  # E for towers, p = pT cosh(eta) for tracks


class TowerCol(enum.IntEnum):
    E_EM = 6
    E_HAD = 7


class TrackCol(enum.IntEnum):
    ETA_OUTER = 6
    SIN_PHI_OUTER = 7
    COS_PHI_OUTER = 8
    CHARGE = 9
    IS_GEN_MUON = 10
    IS_GEN_ELECTRON = 11


class YCol(enum.IntEnum):
    TYPE = 0
    CHARGE = 1
    PT = 2
    ETA = 3
    SIN_PHI = 4
    COS_PHI = 5
    ENERGY = 6


# Zenodo record 10.5281/zenodo.4559324.
ZENODO_RECORD = "4559324"
PROCESSES = ("ttbar", "qcd")
TTBAR_FILE_IDS = [(j, i) for j in range(10) for i in range(50)]
QCD_FILE_IDS = [(10, i) for i in range(50)]

_PUBLISHED = re.compile(r"^tev14_pythia8_(ttbar|qcd)_(\d+)_(\d+)\.pkl\.bz2$")
_SYNTHETIC = re.compile(r"^synth_tev14_pythia8_(ttbar|qcd)_s(\d+)_(\d+)\.pkl\.bz2$")


def published_name(process: str, j: int, i: int) -> str:
    return f"tev14_pythia8_{process}_{j}_{i}.pkl.bz2"


def published_names(process: str, count: int) -> list[str]:
    """The first `count` published file names of a process, in the record's natural order."""
    ids = {"ttbar": TTBAR_FILE_IDS, "qcd": QCD_FILE_IDS}[process]
    if not 0 <= count <= len(ids):
        raise ValueError(f"{process}: between 0 and {len(ids)} files exist, not {count}")
    return [published_name(process, j, i) for j, i in ids[:count]]


def synthetic_name(process: str, seed: int, index: int) -> str:
    """Generated files say so in their name, so they can never pass for Zenodo files."""
    return f"synth_tev14_pythia8_{process}_s{seed}_{index}.pkl.bz2"


@dataclass(frozen=True)
class FileName:
    process: str
    synthetic: bool
    sort_key: tuple[int, int]


def parse_name(name: str) -> FileName | None:
    """Process and origin of a data file name, or None for a name that is not a data file."""
    m = _PUBLISHED.match(name)
    if m:
        return FileName(m.group(1), False, (int(m.group(2)), int(m.group(3))))
    m = _SYNTHETIC.match(name)
    if m:
        return FileName(m.group(1), True, (int(m.group(2)), int(m.group(3))))
    return None
