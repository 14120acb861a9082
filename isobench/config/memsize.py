"""Memory sizes as Docker writes them: ``512m``, ``1g``, ``1.5g``, ``262144k``, ``1073741824b``.

isobench works in MiB. A bare number is MiB (the pre-0.2 meaning of ``--memory``, kept for one
release with a deprecation note; Docker would read it as bytes).
"""

from __future__ import annotations

import re

from isobench.errors import ConfigError

_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([bkmg]?)i?b?\s*$", re.IGNORECASE)
_TO_MIB = {"b": 1 / 2**20, "k": 1 / 1024, "m": 1.0, "g": 1024.0, "": 1.0}
MIN_MIB = 6
"""Docker's own minimum memory limit (6 MiB); anything lower cannot start a container."""


def parse_memory_mib(text: str | int) -> tuple[int, bool]:
    """``(MiB, deprecated)`` of a size; ``deprecated`` is True for a bare number (read as MiB).

    Raises:
        ConfigError: not a size, or below :data:`MIN_MIB`.
    """
    match = _SIZE.match(str(text))
    if match is None:
        raise ConfigError(f"bad memory size {text!r}", fix="write it as Docker does: 512m, 1g")
    unit = match.group(2).lower()
    mib = int(float(match.group(1)) * _TO_MIB[unit])
    if mib < MIN_MIB:
        raise ConfigError(f"memory limit {text!r} is below {MIN_MIB} MiB",
                          fix="give at least 6m; the default is 1g")
    return mib, unit == "" and not str(text).strip().lower().endswith("b")
