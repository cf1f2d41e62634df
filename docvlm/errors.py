"""One base error for the package; each subclass says which stage failed."""

from __future__ import annotations


class DocvlmError(Exception):
    """Base of every error docvlm raises on purpose."""

    stage = "pipeline"


class ConfigError(DocvlmError):
    """Bad options, schema or pipeline definition."""

    stage = "config"


class InputError(DocvlmError):
    """An input file that cannot be used (empty, unsupported, corrupt, encrypted)."""

    stage = "source"


class RenderError(DocvlmError):
    """A page could not be rendered."""

    stage = "render"


class DetectError(DocvlmError):
    """The layout detector failed."""

    stage = "detect"


class OcrError(DocvlmError):
    """Text recognition failed."""

    stage = "ocr"


class ReaderError(DocvlmError):
    """A reader (OCR rules, VLM, server) failed to produce fields."""

    stage = "read"


class SchemaError(ConfigError):
    """A JSON Schema that cannot be used."""
