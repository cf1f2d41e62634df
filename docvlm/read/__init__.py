"""Readers: interchangeable ways to turn page content into field candidates."""

from __future__ import annotations

from docvlm.datamodel import ReaderOptions
from docvlm.engines.registry import Registry
from docvlm.read.base import DocumentContent, Reader, ReadResult

# Modules import their heavy engines lazily. ``transformers`` and ``openai`` are one VLM
# reader whose engine kind is the reader kind.
READERS = Registry(
    "reader",
    {
        "ocr": "docvlm.read.ocr_reader:OcrReader",
        "learned": "docvlm.read.learned.reader:LearnedReader",
        "transformers": "docvlm.read.vlm.reader:VlmReader",
        "openai": "docvlm.read.vlm.reader:VlmReader",
        "cascade": "docvlm.read.cascade:CascadeReader",
    },
)


def get_reader(options: ReaderOptions | None = None) -> Reader:
    """Build the reader named by ``options.kind``; an unknown kind lists the known ones."""
    options = options or ReaderOptions()
    return READERS.create(options.kind, options)


__all__ = ["READERS", "DocumentContent", "ReadResult", "Reader", "get_reader"]
