"""Reader ``cascade``: the embedded learned reader first, a VLM only for what it could not do.

A field goes to the VLM when the OCR reader left it missing, gave it a confidence below
``options.min_confidence``, or gave a value its JSON-Schema subschema rejects (wrong type,
pattern, enum, format). An array of objects goes when it has no items, or an item that is
invalid, lacks a required field, or is below the confidence bar.

The VLM is the ``openai`` reader when a base URL is set (``options.base_url``, else
``OPENAI_BASE_URL`` when no ``options.model`` names a local model), else the ``transformers``
reader for ``options.model``. It is created on first need, so a document the OCR reader reads
completely costs no model load and no call.

For a routed field the VLM's value replaces the OCR candidates; when the VLM gives none, the
OCR candidates stay. Every value names its reader (``FieldValue.reader``), so per-reader fill
counts aggregate from the values (:func:`reader_counts`); ``ReadResult.calls`` counts the VLM
calls.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from docvlm.datamodel import FieldValue, ReaderOptions
from docvlm.errors import ConfigError
from docvlm.read.base import DocumentContent, Reader, ReadResult
from docvlm.schema import field_keys, schema_node, validator
from docvlm.settings import get_settings

if TYPE_CHECKING:
    from docvlm.schema import SchemaSpec

logger = logging.getLogger(__name__)


def vlm_kind(options: ReaderOptions) -> str:
    """``"openai"`` or ``"transformers"``: which VLM reader the options configure.

    Raises:
        ConfigError: Neither a base URL nor a model is configured.
    """
    if options.base_url:
        return "openai"
    if options.model:
        return "transformers"
    if get_settings().openai_base_url:
        return "openai"
    raise ConfigError(
        "reader 'cascade' needs a VLM: --model PATH_OR_ID (local transformers model) or "
        "--base-url URL (OpenAI-compatible server); use --reader ocr for the embedded reader alone"
    )


def reader_counts(values: list[FieldValue]) -> dict[str, int]:
    """Fields filled per reader: scalar paths, and array properties (once each)."""
    filled: dict[str, set[str]] = {}
    for v in values:
        if v.value is None:
            continue
        key = v.path.split("/", 1)[0]
        filled.setdefault(v.reader, set()).add(key)
    return {reader: len(paths) for reader, paths in sorted(filled.items())}


class CascadeReader(Reader):
    """The learned reader first, then a VLM for the missing, low-confidence and invalid fields.

    Attributes:
        first_kind: The cheap reader run on everything.
    """

    name = "cascade"
    first_kind = "learned"  # its confidence is calibrated: the bar means a share right

    def __init__(self, options: ReaderOptions | None = None) -> None:
        super().__init__(options)
        self.first: Reader | None = None
        self.vlm: Reader | None = None
        self._vlm_kind = ""

    def initialize(self) -> None:
        """Build the first reader; check the VLM configuration (the VLM loads on first need)."""
        from docvlm.read import get_reader

        self._vlm_kind = vlm_kind(self.options)
        # ``model`` names the VLM here, not a model of the first reader
        self.first = get_reader(
            self.options.model_copy(update={"kind": self.first_kind, "model": None})
        )

    def _vlm_reader(self) -> Reader:
        if self.vlm is None:
            from docvlm.read import get_reader

            self.vlm = get_reader(self.options.model_copy(update={"kind": self._vlm_kind}))
        return self.vlm

    # -- routing

    def route(
        self, schema: SchemaSpec, values: list[FieldValue], wanted: list[str] | None
    ) -> dict[str, str]:
        """Paths (scalar field or array property) for the VLM, with the reason for each."""
        threshold = self.options.min_confidence
        best: dict[str, FieldValue] = {}
        for v in values:
            if v.value is None:
                continue
            old = best.get(v.path)
            if old is None or v.confidence > old.confidence:
                best[v.path] = v
        routed: dict[str, str] = {}
        for f in schema.fields:
            if wanted is not None and f.path not in wanted:
                continue
            cand = best.get(f.path)
            if cand is None:
                routed[f.path] = "missing"
            elif cand.confidence < threshold:
                routed[f.path] = f"confidence {cand.confidence:.2f} < {threshold}"
            else:
                node = schema_node(schema.schema, field_keys(f.path))
                if node.get("type") != "array" and not validator(node).is_valid(cand.value):
                    routed[f.path] = f"invalid value {cand.value!r}"
        for arr in schema.arrays:
            if wanted is not None and not any(
                w == arr.path or w.startswith(arr.path + "/") for w in wanted
            ):
                continue
            rows: dict[str, dict[str, FieldValue]] = {}
            for path, v in best.items():
                if path.startswith(arr.path + "/"):
                    index, _, name = path[len(arr.path) + 1 :].partition("/")
                    rows.setdefault(index, {})[name] = v
            if not rows:
                routed[arr.path] = "missing"
                continue
            items_node = schema_node(schema.schema, field_keys(arr.path)).get("items") or {}
            item_validator = validator(items_node)
            for row in rows.values():
                record = {name: v.value for name, v in row.items()}
                low = min(v.confidence for v in row.values())
                if low < threshold:
                    routed[arr.path] = f"item confidence {low:.2f} < {threshold}"
                    break
                if not item_validator.is_valid(record):
                    routed[arr.path] = f"invalid item {record!r}"
                    break
        return routed

    # -- reading

    def read(
        self,
        doc: DocumentContent,
        schema: SchemaSpec,
        wanted: list[str] | None = None,
        prior: list[FieldValue] | None = None,
    ) -> ReadResult:
        """OCR everything wanted, then ask the VLM for the routed fields only."""
        self.ensure_ready()
        first = self.first.read(doc, schema, wanted, prior)
        routed = self.route(schema, first.values, wanted)
        if not routed:
            logger.debug("cascade: %s: OCR read every field", doc.doc_id[:12])
            return first
        logger.debug("cascade: %s: to the VLM: %s", doc.doc_id[:12], routed)
        second = self._vlm_reader().read(doc, schema, wanted=sorted(routed), prior=first.values)

        def root(path: str) -> str:
            for arr in schema.arrays:
                if path.startswith(arr.path + "/"):
                    return arr.path
            return path

        answered = {root(v.path) for v in second.values if v.value is not None}
        values = [v for v in first.values if root(v.path) not in answered]
        values.extend(v for v in second.values if root(v.path) in routed)
        result = ReadResult(
            values=values,
            errors=[*first.errors, *second.errors],
            calls=first.calls + second.calls,
        )
        logger.info(
            "cascade: %s: %d fields to %s, %d calls; filled %s",
            doc.doc_id[:12],
            len(routed),
            self._vlm_kind,
            second.calls,
            reader_counts(values),
        )
        return result


__all__ = ["CascadeReader", "reader_counts", "vlm_kind"]
