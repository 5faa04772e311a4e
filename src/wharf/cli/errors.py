"""The one way a client verb fails: `CliError`, printed as `error: <message>` with exit code 1."""

from __future__ import annotations


class CliError(Exception):
    """A failure to report to the user; never shown as a traceback."""

    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(message)
        self.message = message
        self.exit_code = exit_code


class ApiFailure(CliError):
    """The API answered with an error; `message` is the message of its Status."""

    def __init__(self, code: int, reason: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.reason = reason
