"""E-invoices (EN 16931): the exact invoice a PDF embeds (Factur-X, ZUGFeRD) or an XML file
(CII, UBL) — found, parsed safely, read as business terms. Mapping to a schema is done by the
``einvoice`` reader (:mod:`docvlm.read.einvoice_reader`)."""

from __future__ import annotations

from docvlm.einvoice.syntax import XML_MIME, invoice_syntax

__all__ = ["XML_MIME", "invoice_syntax", "load_invoice"]


def load_invoice(path: str):
    """The e-invoice of a file: embedded in a PDF or the XML file itself; None when a PDF
    carries none.

    Returns:
        :class:`~docvlm.einvoice.parse.EInvoice` or None.

    Raises:
        EInvoiceError: The XML is refused (DTD/entities), malformed or no CII/UBL invoice.
    """
    from docvlm.einvoice.attachments import find_pdf_invoice
    from docvlm.einvoice.parse import MAX_XML_BYTES, read_invoice
    from docvlm.errors import EInvoiceError

    with open(path, "rb") as fh:
        head = fh.read(1 << 16)
    if b"%PDF-" in head[:1024]:
        att = find_pdf_invoice(path)
        if att is None:
            return None
        return read_invoice(att.data, f"{path}!{att.name}")
    if invoice_syntax(head) is None:
        return None  # an image, or anything else that is no e-invoice
    with open(path, "rb") as fh:
        data = fh.read(MAX_XML_BYTES + 1)
    if len(data) > MAX_XML_BYTES:
        raise EInvoiceError(f"{path}: XML larger than {MAX_XML_BYTES} bytes", "EInvoiceRefused")
    return read_invoice(data, path)
