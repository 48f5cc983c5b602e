"""Commands run without the power to read any file: what a user who is not root meets.

CI runs as root, and root reads a mode-000 file (CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH), so a test of
"Permission denied" that only chmods would never run there. `without_file_override(cmd)` runs `cmd`
through util-linux's setpriv with those two capabilities removed from its bounding set: the command is
still root, owns what root owns and reads what its mode lets root read, but the kernel refuses it a
file whose mode has no read bit for it, exactly as it refuses another user.
"""

from __future__ import annotations

import os
import shutil

DROPPED = "-dac_override,-dac_read_search"


def without_file_override(cmd: list[str]) -> list[str]:
    """`cmd`, run so that file modes bind it (as root through setpriv; anyone else already is bound)."""
    if os.geteuid() != 0:
        return cmd
    setpriv = shutil.which("setpriv")
    if setpriv is None:  # util-linux: on every distribution hepbench supports; a clear failure, not a skip
        raise RuntimeError("setpriv (util-linux) is needed to test unreadable files as root")
    return [setpriv, "--bounding-set", DROPPED, "--", *cmd]
