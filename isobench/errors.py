"""Errors that reach the user as one clear line naming the fix."""

from __future__ import annotations


class IsobenchError(Exception):
    """An error the user can act on.

    Args:
        message: what went wrong, one line.
        fix: what to do about it, one line (optional).
    """

    def __init__(self, message: str, fix: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.fix = fix

    def __str__(self) -> str:
        return f"{self.message} (fix: {self.fix})" if self.fix else self.message


class RuntimeUnavailable(IsobenchError):
    """A requested runtime cannot run on this host."""


class BuildError(IsobenchError):
    """Building an image artifact failed."""


class StartError(IsobenchError):
    """A runtime instance did not start or never became ready."""


class ConfigError(IsobenchError):
    """A benchfile or command-line option is invalid."""
