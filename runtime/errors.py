"""User-facing errors: one line saying what is wrong and what to do (the CLI exits with 2).

The exit-code contract of every ``artcam`` command (``artcam.runtime.cli.guarded`` applies it):

* 0   finished: every output is complete and published under its final name;
* 1   internal error (a bug or an unexpected failure): one line on stderr, the traceback with ``--debug``;
* 2   bad input (arguments, models, sources, outputs): one line saying what and what to do;
* 130 interrupted (Ctrl-C / SIGINT; 143 for SIGTERM): outputs not finished are not published.
"""

from __future__ import annotations

EXIT_OK, EXIT_INTERNAL, EXIT_BAD_INPUT, EXIT_INTERRUPTED, EXIT_TERMINATED = 0, 1, 2, 130, 143


class ArtcamError(Exception):
    """A problem the user can fix; ``hint`` says how."""

    exit_code = 2

    def __init__(self, message: str, hint: str | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message} ({self.hint})" if self.hint else self.message


class ModelError(ArtcamError):
    """A model file that is missing, corrupt, foreign without flags, or wrong for the command."""


class InputError(ArtcamError):
    """An input (image, frame, latent, shape) the model cannot take."""


class SourceError(ArtcamError):
    """A source that cannot be opened or read."""


class SinkError(ArtcamError):
    """An output that cannot be written."""


class Interrupted(KeyboardInterrupt):
    """A run stopped by Ctrl-C (or SIGTERM) after cleaning up; the message says what was kept."""

    def __init__(self, message: str = "interrupted", terminated: bool = False):
        super().__init__(message)
        self.message = message
        self.terminated = terminated  # by SIGTERM: exit 143
