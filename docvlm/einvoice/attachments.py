"""Find the e-invoice XML a PDF carries (Factur-X, ZUGFeRD, XRechnung in a PDF/A-3).

The XML is an embedded file, listed in the document's ``EmbeddedFiles`` name tree and, in
PDF/A-3, in the catalog's associated files (``/AF``). PyMuPDF's embedded-file API reads the
flat name tree; some producers write the tree with ``/Kids`` or list the file only in
``/AF``, so both are walked here through the object structure as well.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pymupdf

logger = logging.getLogger(__name__)

# names the Factur-X, ZUGFeRD 1/2 and XRechnung specifications give the invoice file
INVOICE_NAMES = ("factur-x.xml", "zugferd-invoice.xml", "xrechnung.xml", "zugferd_invoice.xml")
MAX_ATTACHMENT_BYTES = 32 << 20
_REF = re.compile(r"(\d+) 0 R")


@dataclass(frozen=True)
class Attachment:
    """One embedded file: its name and bytes."""

    name: str
    data: bytes


def _filespec_stream(doc: pymupdf.Document, xref: int) -> tuple[str, int] | None:
    """(file name, stream xref) of a file specification dictionary."""
    name = ""
    for key in ("UF", "F"):
        kind, value = doc.xref_get_key(xref, key)
        if kind == "string" and value:
            name = value
            break
    kind, ef = doc.xref_get_key(xref, "EF/F")
    if kind != "xref":
        kind, ef = doc.xref_get_key(xref, "EF/UF")
    if kind != "xref":
        return None
    return name, int(ef.split()[0])


def _refs(value: str) -> list[int]:
    return [int(x) for x in _REF.findall(value or "")]


def _name_tree_specs(doc: pymupdf.Document, xref: int, depth: int = 0) -> list[int]:
    """Filespec xrefs in a name tree node (``/Names`` pairs, ``/Kids`` recursively)."""
    if depth > 16:
        return []
    specs: list[int] = []
    kind, names = doc.xref_get_key(xref, "Names")
    if kind == "array":
        specs.extend(_refs(names))
    kind, kids = doc.xref_get_key(xref, "Kids")
    if kind == "array":
        for kid in _refs(kids):
            specs.extend(_name_tree_specs(doc, kid, depth + 1))
    return specs


def embedded_files(doc: pymupdf.Document) -> list[Attachment]:
    """Every embedded file of an open PyMuPDF document, each once."""
    found: dict[str, Attachment] = {}
    try:
        for name in doc.embfile_names():
            data = doc.embfile_get(name)
            if len(data) <= MAX_ATTACHMENT_BYTES:
                found.setdefault(name, Attachment(name, data))
    except Exception as exc:  # a damaged name tree: fall back to the object walk below
        logger.debug("embfile API failed: %s", exc)
    catalog = doc.pdf_catalog()
    spec_xrefs: list[int] = []
    kind, af = doc.xref_get_key(catalog, "AF")
    if kind == "array":
        spec_xrefs.extend(_refs(af))
    elif kind == "xref":
        spec_xrefs.extend(_refs(doc.xref_object(int(af.split()[0]))))
    kind, tree = doc.xref_get_key(catalog, "Names/EmbeddedFiles")
    if kind == "xref":
        spec_xrefs.extend(_name_tree_specs(doc, int(tree.split()[0])))
    elif kind == "dict":
        spec_xrefs.extend(_refs(tree))
    for page in doc:
        kind, af = doc.xref_get_key(page.xref, "AF")
        if kind == "array":
            spec_xrefs.extend(_refs(af))
    for xref in dict.fromkeys(spec_xrefs):
        try:
            spec = _filespec_stream(doc, xref)
            if spec is None or spec[0] in found:
                continue
            data = doc.xref_stream(spec[1])
        except Exception as exc:
            logger.debug("filespec %d unreadable: %s", xref, exc)
            continue
        if data and len(data) <= MAX_ATTACHMENT_BYTES:
            found[spec[0] or f"attachment-{xref}"] = Attachment(spec[0], data)
    return list(found.values())


def invoice_attachment(files: list[Attachment]) -> Attachment | None:
    """The invoice XML among embedded files: a standard name first, else any XML whose root
    is a CII or UBL invoice."""
    from docvlm.einvoice.syntax import invoice_syntax

    by_name = {f.name.lower(): f for f in files}
    for name in INVOICE_NAMES:
        if name in by_name:
            return by_name[name]
    for f in files:
        if f.name.lower().endswith(".xml") and invoice_syntax(f.data):
            return f
    return None


def find_pdf_invoice(path: str) -> Attachment | None:
    """The e-invoice XML embedded in the PDF at ``path``, or None when it carries none."""
    import pymupdf

    with pymupdf.open(path) as doc:
        return invoice_attachment(embedded_files(doc))


__all__ = [
    "INVOICE_NAMES",
    "Attachment",
    "embedded_files",
    "find_pdf_invoice",
    "invoice_attachment",
]
