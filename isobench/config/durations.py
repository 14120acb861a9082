"""The one duration grammar of isobench (benchfiles, scenarios, the CLI, workload options).

``20s``, ``500ms``, ``1m30s``, ``1h``, ``250us``/``250µs``, or a plain number of seconds
(``30``, ``"2.5"``), as k6 writes them. Negative, empty and malformed values are refused with
one line naming the form.
"""

from __future__ import annotations

import re
from typing import Any

from isobench.errors import ConfigError

_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|us|µs|s|m|h)")
_UNITS = {"ms": 1e-3, "us": 1e-6, "µs": 1e-6, "s": 1.0, "m": 60.0, "h": 3600.0}


class DurationError(ConfigError, ValueError):
    """A value that is not a duration (a ConfigError for users, a ValueError for parsers)."""


def parse_duration(value: Any) -> float:
    """Seconds from a duration (see the module docstring).

    Raises:
        DurationError: the value is not a non-negative duration.
    """
    if isinstance(value, bool):
        raise _bad(value)
    if isinstance(value, int | float):
        if value < 0:
            raise DurationError(f"a duration cannot be negative ({value})",
                                fix="write it as 30s, 500ms, 1m30s or a number of seconds")
        return float(value)
    if isinstance(value, str):
        text = value.strip().lower()
        try:
            return parse_duration(float(text))
        except ValueError:
            pass
        pos, total = 0, 0.0
        for m in _PART.finditer(text):
            if m.start() != pos:
                break
            total += float(m.group(1)) * _UNITS[m.group(2)]
            pos = m.end()
        if text and pos == len(text):
            return total
    raise _bad(value)


def _bad(value: Any) -> DurationError:
    return DurationError(f"bad duration {value!r}",
                         fix="write it as 30s, 500ms, 1m30s or a number of seconds")
