"""The exit codes of every ``docvlm`` command (documented in the README)."""

from __future__ import annotations

from enum import IntEnum


class Exit(IntEnum):
    """What a command's exit status means, the same for every command."""

    OK = 0  #: every document done (success or partial)
    DOCUMENTS_FAILED = 1  #: the command finished, but some documents failed (or were parked)
    USAGE = 2  #: bad usage or configuration: nothing was processed or written
    INTERNAL = 3  #: another error (a bug, a locked output folder, a lost server)
