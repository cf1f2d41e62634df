"""One base error for the package; each subclass says which stage failed."""

from __future__ import annotations

from typing import Any


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


class VlmEngineError(ReaderError):
    """A VLM could not be loaded or failed while generating."""


class VlmRequestError(ReaderError):
    """A VLM server request failed for good (after its retries).

    Attributes:
        attempts: Requests sent for this conversation, retries included.
        status: The last HTTP status, or None for a connection error or a timeout.
    """

    def __init__(self, message: str, attempts: int = 1, status: int | None = None) -> None:
        super().__init__(message)
        self.attempts = attempts
        self.status = status


class VlmAnswerError(ReaderError):
    """A VLM's answer still failed the JSON Schema after the bounded re-asks.

    Attributes:
        attempts: Answers received (the first plus the re-asks).
        last_raw: The model's last answer text, verbatim.
        messages: The validator's messages on that last answer.
    """

    def __init__(self, message: str, attempts: int, last_raw: str, messages: list[str]) -> None:
        super().__init__(message)
        self.attempts = attempts
        self.last_raw = last_raw
        self.messages = messages


class LedgerError(DocvlmError):
    """The ledger or its lock cannot be used."""

    stage = "ledger"


class DocumentFailed(DocvlmError):
    """A document's attempt failed (raised inside a task so the task's retries apply).

    ``args[0]`` is the failed attempt's DocumentResult as JSON (a plain string pickles across
    Dask workers).
    """

    stage = "pipeline"

    @property
    def result(self) -> Any:
        """The failed attempt's :class:`~docvlm.datamodel.DocumentResult`."""
        from docvlm.datamodel import DocumentResult

        return DocumentResult.model_validate_json(self.args[0])


class EInvoiceError(ReaderError):
    """An e-invoice XML (embedded in a PDF or standalone) that cannot be used.

    Attributes:
        error_type: The error-table type: ``EInvoiceRefused`` (a DTD, entity or external
            reference: possible XXE or billion-laughs), ``EInvoiceMalformed`` (not
            well-formed XML) or ``EInvoiceUnsupported`` (XML, but no CII/UBL invoice).
    """

    def __init__(self, message: str, error_type: str = "EInvoiceMalformed") -> None:
        super().__init__(message)
        self.error_type = error_type
