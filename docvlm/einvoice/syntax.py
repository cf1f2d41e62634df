"""Tell an e-invoice XML from its first bytes: the root element and its namespace.

Pure string work, no XML parser: sniffing must be cheap and must not expand anything an
attacker put into a DTD. The DTD is skipped, never read.
"""

from __future__ import annotations

import re

XML_MIME = "application/xml"

# root local name -> namespace fragments that make it an invoice of that syntax
_ROOTS: dict[str, tuple[str, tuple[str, ...]]] = {
    "CrossIndustryInvoice": ("CII", ("urn:un:unece:uncefact:data:standard:CrossIndustryInvoice",)),
    "CrossIndustryDocument": ("CII", ("urn:ferd:CrossIndustryDocument",)),
    "Invoice": ("UBL", ("urn:oasis:names:specification:ubl:schema:xsd:Invoice-2",)),
    "CreditNote": ("UBL", ("urn:oasis:names:specification:ubl:schema:xsd:CreditNote-2",)),
}
_TAG = re.compile(r"<([A-Za-z_][\w.\-]*:)?([A-Za-z_][\w.\-]*)")


def _text(head: bytes) -> str:
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        return head.decode("utf-16", errors="ignore")
    return head.decode("utf-8", errors="ignore").lstrip("\ufeff")


def root_element(head: bytes) -> str | None:
    """The local name of the first element of an XML text, or None when ``head`` is no XML.

    Skips the XML declaration, comments, processing instructions and a DOCTYPE (with its
    internal subset) without interpreting them.
    """
    text = _text(head[: 1 << 20])
    i, n = 0, len(text)
    while i < n:
        while i < n and text[i].isspace():
            i += 1
        if text.startswith("<?", i):
            end = text.find("?>", i)
        elif text.startswith("<!--", i):
            end = text.find("-->", i)
            end = end + 1 if end >= 0 else end
        elif text.startswith("<!DOCTYPE", i) or text.startswith("<!doctype", i):
            bracket, close = text.find("[", i), text.find(">", i)
            if 0 <= bracket < close:
                end = text.find("]", bracket)
                end = text.find(">", end) - 1 if end >= 0 else -1
            else:
                end = close - 1
        else:
            m = _TAG.match(text, i)
            return m.group(2) if m else None
        if end < 0:
            return None
        i = end + 2
    return None


def invoice_syntax(head: bytes) -> str | None:
    """``"CII"`` or ``"UBL"`` when ``head`` starts an e-invoice XML, else None."""
    root = root_element(head)
    if root not in _ROOTS:
        return None
    syntax, namespaces = _ROOTS[root]
    text = _text(head[: 1 << 16])
    return syntax if any(ns in text for ns in namespaces) else None


def describe_xml(head: bytes) -> str | None:
    """A short description of a non-invoice XML for an error message, or None if no XML."""
    root = root_element(head)
    if root is None:
        return None
    return f"XML with root element <{root}>, not a CII or UBL e-invoice"


__all__ = ["XML_MIME", "describe_xml", "invoice_syntax", "root_element"]
