"""Readers: interchangeable ways to turn regions into field candidates."""

from __future__ import annotations

import importlib

from docvlm.datamodel import ReaderOptions
from docvlm.errors import ConfigError
from docvlm.read.base import DocumentContent, Reader, ReadResult

# kind -> "module:Class"; modules import their heavy engines lazily.
READERS: dict[str, str] = {
    "ocr": "docvlm.read.ocr_reader:OcrReader",
    "transformers": "docvlm.read.transformers_reader:TransformersReader",
    "openai": "docvlm.read.openai_reader:OpenAIReader",
    "cascade": "docvlm.read.cascade:CascadeReader",
    "einvoice": "docvlm.read.einvoice_reader:EInvoiceReader",
}


def get_reader(options: ReaderOptions | None = None) -> Reader:
    """Build the reader named by ``options.kind``; an unknown kind lists the known ones."""
    options = options or ReaderOptions()
    target = READERS.get(options.kind)
    if target is None:
        raise ConfigError(
            f"unknown reader kind {options.kind!r}; known kinds: {', '.join(sorted(READERS))}"
        )
    module_name, cls_name = target.split(":")
    cls = getattr(importlib.import_module(module_name), cls_name)
    return cls(options)


__all__ = ["READERS", "DocumentContent", "ReadResult", "Reader", "get_reader"]
