"""User-facing errors: one line saying what is wrong and what to do (the CLI exits with 2)."""

from __future__ import annotations


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
