"""The exit codes of every isobench command (also listed in the README and ``--help``)."""

from __future__ import annotations

OK = 0
"""Everything ran; every gate (if any) passed."""
TRIALS_FAILED = 1
"""The run finished but some trials failed (their reasons are printed and in trials.jsonl)."""
USAGE = 2
"""Bad input: a flag, a benchfile, a run directory. One line names the fix; nothing was made."""
GATE_FAILED = 3
"""A ``--fail-if`` gate failed: a significant change beyond its limit (or nothing measured)."""
INTERRUPTED = 130
"""Ctrl-C or SIGTERM: everything started was removed, results so far are kept."""

EPILOG = (
    "exit codes: 0 ok; 1 some trials failed; 2 bad input (one line names the fix); "
    "3 a --fail-if gate failed; 130 interrupted (Ctrl-C/SIGTERM)"
)
