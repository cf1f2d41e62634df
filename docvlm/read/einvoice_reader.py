"""Reader ``einvoice``: the exact EN 16931 invoice behind a PDF (Factur-X, ZUGFeRD) or an XML
file (CII, UBL), mapped to the schema, with the page read too and cross-checked.

It wraps a page reader (``ocr`` by default, or whatever the pipeline is configured with):

- ``prefer`` (default): fields matched to a business term take the XML value (reader
  ``einvoice``, confidence 1.0, ``raw`` = the XML text, ``xpath`` = its element); the page is
  read as usual for everything else and for the cross-check. A matched field whose page value
  disagrees with the XML, where the XML value is printed nowhere on the page, gets an
  ``EInvoiceMismatch`` error row with both values: an edited visual is the classic invoice
  fraud.
- ``only``: the XML alone; the page is not read (a PDF without XML gets ``EInvoiceMissing``).
- ``ignore``: the page reader alone, as if there were no XML.

Page and box of an XML value are where the page prints it (the page reader's box when it read
the same value, else a search of the page's text lines); standalone XML has neither.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from docvlm.datamodel import EInvoiceOptions, ErrorItem, FieldValue, ReaderOptions
from docvlm.errors import EInvoiceError
from docvlm.normalize import compact, levenshtein
from docvlm.read.base import DocumentContent, Reader, ReadResult

if TYPE_CHECKING:
    from docvlm.einvoice.locate import Hit
    from docvlm.einvoice.mapping import SchemaMapping
    from docvlm.einvoice.parse import EInvoice, TermValue
    from docvlm.schema import FieldSpec, SchemaSpec

logger = logging.getLogger(__name__)

NAME = "einvoice"
_UNSIGNED = frozenset({"BT-146", "BT-148"})  # prices stay positive on credit notes


def _pointer(path: str) -> str:
    return "/" + path.replace(".", "/")


def coerce(spec: FieldSpec, tv: TermValue, kind: str) -> Any:
    """The XML value as a value of the field's type, or None when it cannot be one."""
    value = tv.value
    if spec.is_number:
        if not isinstance(value, (int, float)):
            return None
        if spec.type == "integer":
            return int(value) if float(value).is_integer() else None
        return float(value)
    if spec.type == "boolean":
        return None
    if spec.enum:
        for option in spec.enum:
            if compact(str(option)) == compact(str(value)):
                return option
    if kind in ("amount", "quantity", "percent"):
        return tv.raw  # as written in the XML: '197.58'
    return str(value)


def same_value(spec: FieldSpec | None, a: Any, b: Any) -> bool:
    """Do a page value and an XML value say the same (numbers by size, text loosely)?"""
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return abs(abs(float(a)) - abs(float(b))) < 0.005
    x, y = compact(str(a)), compact(str(b))
    if not x or not y:
        return x == y
    if x == y or (min(len(x), len(y)) >= 4 and (x in y or y in x)):
        return True
    return levenshtein(x, y) <= max(1, int(0.15 * max(len(x), len(y))))


class EInvoiceReader(Reader):
    """XML values for the fields that map to EN 16931 terms, page values for the rest.

    Attributes:
        inner: The page reader (built from the reader options when not given).
    """

    name = NAME

    def __init__(
        self,
        options: ReaderOptions | None = None,
        inner: Reader | None = None,
        einvoice: EInvoiceOptions | None = None,
    ) -> None:
        super().__init__(options)
        self.inner = inner
        self.einvoice = einvoice or EInvoiceOptions()
        self._mappings: dict[tuple[str, int], SchemaMapping] = {}

    @classmethod
    def around(cls, inner: Reader, options: EInvoiceOptions | None = None) -> EInvoiceReader:
        """Wrap a page reader (the pipeline wraps its configured reader once)."""
        if isinstance(inner, EInvoiceReader):
            if options is not None:
                inner.einvoice = options
            return inner
        return cls(inner.options, inner=inner, einvoice=options)

    def initialize(self) -> None:
        if self.inner is None:
            from docvlm.read import get_reader

            kind = self.options.kind if self.options.kind != NAME else "learned"
            self.inner = get_reader(self.options.model_copy(update={"kind": kind}))
        self.inner.ensure_ready()

    def mapping(self, schema: SchemaSpec) -> SchemaMapping:
        """The schema's field-to-term mapping, computed once per schema."""
        from docvlm.einvoice.mapping import map_schema

        key = (schema.name, id(schema))
        if key not in self._mappings:
            self._mappings[key] = map_schema(schema, self.einvoice.match_threshold)
            logger.info("einvoice: schema %s maps %s", schema.name, self._mappings[key].describe())
        return self._mappings[key]

    # -- reading

    def _page(
        self,
        doc: DocumentContent,
        schema: SchemaSpec,
        wanted: list[str] | None,
        prior: list[FieldValue] | None,
    ) -> ReadResult:
        if not doc.pages:
            return ReadResult()
        self.ensure_ready()
        return self.inner.read(doc, schema, wanted, prior)

    def read(
        self,
        doc: DocumentContent,
        schema: SchemaSpec,
        wanted: list[str] | None = None,
        prior: list[FieldValue] | None = None,
    ) -> ReadResult:
        mode = self.einvoice.mode
        if mode == "ignore":
            result = self._page(doc, schema, wanted, prior)
            if not doc.pages:
                result.errors.append(ErrorItem(stage="read", error_type="EInvoiceIgnored",
                    message=f"{doc.source}: e-invoice XML not read (einvoice mode 'ignore')"))  # fmt: skip
            return result
        from docvlm.einvoice import load_invoice

        errors: list[ErrorItem] = []
        invoice: EInvoice | None = None
        try:
            invoice = load_invoice(doc.source)
        except EInvoiceError as exc:
            errors.append(ErrorItem(stage="read", error_type=exc.error_type, message=str(exc)))
        except Exception as exc:  # a damaged PDF object tree must not lose the page reading
            logger.exception("%s: e-invoice lookup failed", doc.source)
            errors.append(ErrorItem(stage="read", error_type="EInvoiceError",
                                    message=f"{doc.source}: e-invoice lookup failed: {exc}"))  # fmt: skip
        if invoice is None and not errors and mode == "only":
            errors.append(ErrorItem(stage="read", error_type="EInvoiceMissing",
                message=f"{doc.source}: no e-invoice XML embedded (factur-x.xml, zugferd-invoice.xml, "
                        "xrechnung.xml); einvoice mode 'only' reads nothing from the page"))  # fmt: skip
        page = ReadResult() if mode == "only" else self._page(doc, schema, wanted, prior)
        if invoice is None:
            page.errors[:0] = errors
            return page
        values, checks = self._from_xml(invoice, doc, schema, wanted, page.values)
        filled = {v.path for v in values}
        roots = {v.path.split("/", 1)[0] for v in values if "/" in v.path}
        kept = [
            v for v in page.values if v.path not in filled and v.path.split("/", 1)[0] not in roots
        ]
        logger.info("einvoice: %s: %s %s, %d values from the XML, %d from the page",
                    doc.doc_id[:12], invoice.syntax, invoice.root, len(values), len(kept))  # fmt: skip
        return ReadResult(
            values=[*values, *kept], errors=[*errors, *page.errors, *checks], calls=page.calls
        )

    def _from_xml(
        self,
        invoice: EInvoice,
        doc: DocumentContent,
        schema: SchemaSpec,
        wanted: list[str] | None,
        page_values: list[FieldValue],
    ) -> tuple[list[FieldValue], list[ErrorItem]]:
        from docvlm.einvoice.locate import Hit, locate
        from docvlm.einvoice.terms import BY_ID

        mapping = self.mapping(schema)
        negate = self.einvoice.credit_notes == "negative" and invoice.is_credit_note
        best: dict[str, FieldValue] = {}
        for v in page_values:
            if v.value is not None and (
                v.path not in best or v.confidence > best[v.path].confidence
            ):
                best[v.path] = v
        values: list[FieldValue] = []
        checks: list[ErrorItem] = []

        def make(
            path: str, spec: FieldSpec, tv: TermValue, near: Hit | None = None
        ) -> FieldValue | None:
            # line items are not cross-checked: page rows and XML lines need not pair up by index
            term = BY_ID[tv.term]
            if (
                negate
                and term.kind == "amount"
                and tv.term not in _UNSIGNED
                and isinstance(tv.value, float)
            ):
                tv = type(tv)(tv.term, -abs(tv.value), tv.raw, tv.xpath)
            value = coerce(spec, tv, term.kind)
            if value is None:
                return None
            fv = FieldValue(
                path=path, value=value, raw=tv.raw, reader=NAME, confidence=1.0, xpath=tv.xpath
            )
            seen = best.get(path)
            if seen is not None and same_value(spec, seen.value, tv.value):
                return fv.model_copy(
                    update={"page": seen.page, "bbox": seen.bbox, "region_class": seen.region_class}
                )
            hit = (
                locate(tv.value, term.kind, doc.pages, near)
                if doc.pages and term.kind != "count"
                else None
            )
            if hit is not None:
                fv = fv.model_copy(
                    update={"page": hit.page, "bbox": hit.bbox, "region_class": hit.region_class}
                )
            elif (
                seen is not None
                and "/" not in path
                and self.einvoice.cross_check
                and seen.reader != NAME
                and seen.confidence >= self.einvoice.mismatch_min_confidence
            ):
                where = f"page {seen.page}" if seen.page else "the page"
                checks.append(ErrorItem(
                    stage="read", error_type="EInvoiceMismatch", path=_pointer(path),
                    message=f"{doc.source}: {path}: {where} shows {seen.raw or seen.value!r} "
                            f"({seen.value!r}) but the e-invoice XML says {tv.raw!r} at {tv.xpath}; "
                            "the visible invoice may have been edited",
                ))  # fmt: skip
            return fv

        for spec in schema.fields:
            match = mapping.fields.get(spec.path)
            if match is None or (wanted is not None and spec.path not in wanted):
                continue
            tv = invoice.header.get(match.concept)
            if tv is not None and (fv := make(spec.path, spec, tv)) is not None:
                values.append(fv)
        for arr in schema.arrays:
            items = mapping.arrays.get(arr.path)
            if not items or not invoice.lines:
                continue
            if wanted is not None and not any(
                w == arr.path or w.startswith(arr.path + "/") for w in wanted
            ):
                continue
            specs = {s.name: s for s in arr.items}
            # the item's name first: its row on the page anchors the row's numbers
            order = sorted(items, key=lambda n: BY_ID[items[n].concept].kind != "text")
            for i, line in enumerate(invoice.lines):
                anchor: Hit | None = None
                for name in order:
                    tv = line.get(items[name].concept)
                    if tv is None:
                        continue
                    fv = make(f"{arr.path}/{i}/{name}", specs[name], tv, anchor)
                    if fv is None:
                        continue
                    if anchor is None and fv.page is not None and fv.bbox is not None:
                        anchor = Hit(fv.page, fv.bbox, fv.raw)
                    values.append(fv)
        return values, checks


__all__ = ["EInvoiceReader", "coerce", "same_value"]
