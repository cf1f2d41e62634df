"""The ``docvlm`` command line: one entry point, one exit-code table, one logging set-up."""

from docvlm.cli.main import main

__all__ = ["main"]
