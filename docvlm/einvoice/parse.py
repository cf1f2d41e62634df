"""Parse an e-invoice XML (CII or UBL) safely and read its EN 16931 terms.

XML comes from strangers: it is parsed with ``defusedxml`` with DTDs forbidden, so entity
expansion (billion laughs), external entities (XXE) and network access cannot happen; the
size is capped before parsing.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from docvlm.einvoice.syntax import invoice_syntax
from docvlm.einvoice.terms import CII_LINES, TERMS, UBL_LINES, Term
from docvlm.errors import EInvoiceError

if TYPE_CHECKING:
    from xml.etree.ElementTree import Element

logger = logging.getLogger(__name__)

MAX_XML_BYTES = 32 << 20
# UNCL 1001 codes of credit notes (EN 16931 code list for BT-3)
CREDIT_NOTE_CODES = frozenset(
    {"81", "83", "261", "262", "296", "308", "381", "396", "420", "458", "532"}
)
_PREFIXES = {
    "urn:un:unece:uncefact:data:standard:CrossIndustryInvoice:100": "rsm",
    "urn:ferd:CrossIndustryDocument:invoice:1p0": "rsm",
    "urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2": "cac",
    "urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2": "cbc",
}
_STEP = re.compile(r"^([\w.\-]+)(?:\[@([\w.\-]+)='([^']*)'\])?$")


@dataclass(frozen=True)
class TermValue:
    """One business term's value as the XML states it.

    Attributes:
        value: Typed: ISO date for dates, float for amounts/quantities/percents, int for
            counts, str otherwise.
        raw: The element text (or the joined parts of an address), verbatim.
        xpath: Where it is: ``/rsm:CrossIndustryInvoice/rsm:ExchangedDocument/ram:ID``.
    """

    term: str
    value: Any
    raw: str
    xpath: str


@dataclass
class EInvoice:
    """The terms read from one e-invoice XML."""

    source: str  # file path, or "file.pdf!factur-x.xml" for an attachment
    syntax: str  # CII | UBL
    root: str  # CrossIndustryInvoice | CrossIndustryDocument | Invoice | CreditNote
    profile: str | None = None
    header: dict[str, TermValue] = field(default_factory=dict)
    lines: list[dict[str, TermValue]] = field(default_factory=list)

    @property
    def type_code(self) -> str | None:
        tv = self.header.get("BT-3")
        return str(tv.value) if tv else None

    @property
    def is_credit_note(self) -> bool:
        return self.root == "CreditNote" or self.type_code in CREDIT_NOTE_CODES


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _ns(tag: str) -> str:
    return tag[1:].split("}", 1)[0] if tag.startswith("{") else ""


def parse_xml(data: bytes, source: str) -> Element:
    """The root element of ``data``, parsed with DTDs, entities and external references off.

    Raises:
        EInvoiceError: Too large, a DTD or entity (refused), or not well-formed.
    """
    import xml.etree.ElementTree as ET

    import defusedxml
    import defusedxml.ElementTree as SafeET

    if len(data) > MAX_XML_BYTES:
        raise EInvoiceError(
            f"{source}: e-invoice XML of {len(data)} bytes exceeds the {MAX_XML_BYTES}-byte limit",
            "EInvoiceRefused",
        )
    try:
        return SafeET.fromstring(data, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except defusedxml.DefusedXmlException as exc:
        raise EInvoiceError(
            f"{source}: e-invoice XML refused: it declares a DTD, entities or external references "
            f"({type(exc).__name__}); e-invoices need none, and they allow XXE and "
            "billion-laughs attacks",
            "EInvoiceRefused",
        ) from exc
    except ET.ParseError as exc:
        raise EInvoiceError(f"{source}: e-invoice XML is not well-formed: {exc}") from exc


class _Tree:
    """Local-name path evaluation and XPaths of found elements for one document."""

    def __init__(self, root: Element) -> None:
        self.root = root
        self.parent: dict[Element, Element] = {c: p for p in root.iter() for c in p}

    def select(self, start: Element, path: str) -> list[tuple[Element, str | None]]:
        """Elements (and an attribute name, for a trailing ``@attr``) at ``path`` from start."""
        steps = path.split("/")
        attr = steps.pop()[1:] if steps and steps[-1].startswith("@") else None
        nodes = [start]
        for step in steps:
            m = _STEP.match(step)
            if m is None:
                raise ValueError(f"bad term path step {step!r}")
            name, key, want = m.groups()
            nodes = [
                c
                for n in nodes
                for c in n
                if isinstance(c.tag, str)
                and _local(c.tag) == name
                and (key is None or c.get(key) == want)
            ]
        return [(n, attr) for n in nodes]

    def xpath(self, elem: Element, attr: str | None = None) -> str:
        parts = []
        node: Element | None = elem
        while node is not None:
            parent = self.parent.get(node)
            name = _local(node.tag)
            prefix = _PREFIXES.get(_ns(node.tag))
            if prefix is None and "ReusableAggregateBusinessInformationEntity" in _ns(node.tag):
                prefix = "ram"
            elif prefix is None and "UnqualifiedDataType" in _ns(node.tag):
                prefix = "udt"
            step = f"{prefix}:{name}" if prefix else name
            if parent is not None:
                same = [c for c in parent if c.tag == node.tag]
                if len(same) > 1:
                    step += f"[{same.index(node) + 1}]"
            parts.append(step)
            node = parent
        path = "/" + "/".join(reversed(parts))
        return f"{path}/@{attr}" if attr else path


def _date(text: str, elem: Element) -> str:
    fmt = elem.get("format")
    digits = text.strip()
    if (fmt in (None, "102")) and re.fullmatch(r"\d{8}", digits):
        return f"{digits[:4]}-{digits[4:6]}-{digits[6:]}"
    m = re.match(r"(\d{4})-(\d{2})-(\d{2})", digits)
    if m:
        return m.group(0)
    if fmt == "610" and re.fullmatch(r"\d{6}", digits):
        return f"{digits[:4]}-{digits[4:]}"
    return digits


def _number(text: str) -> float | None:
    try:
        return float(text.strip())
    except ValueError:
        return None


_ADDRESS_ORDER = (
    ("LineOne", "StreetName"),
    ("LineTwo", "AdditionalStreetName"),
    ("LineThree", "AddressLine"),
    ("PostcodeCode", "PostalZone"),
    ("CityName",),
    ("CountrySubDivisionName", "CountrySubentity"),
    ("CountryID", "Country"),
)


def _address(elem: Element) -> str:
    """'street, line 2, post code city, country' from a CII or UBL address element."""
    found: dict[str, str] = {}
    for child in elem.iter():
        text = " ".join((child.text or "").split())
        if text and isinstance(child.tag, str):
            found.setdefault(_local(child.tag), text)
    get = lambda names: next((found[n] for n in names if n in found), "")  # noqa: E731
    if "Line" in found and "AddressLine" not in found:
        found["AddressLine"] = found["Line"]
    street = [get(n) for n in _ADDRESS_ORDER[:3]]
    place = " ".join(x for x in (get(_ADDRESS_ORDER[3]), get(_ADDRESS_ORDER[4])) if x)
    country = found.get("CountryID") or found.get("IdentificationCode", "")
    parts = [*street, place, get(_ADDRESS_ORDER[5]), country]
    return ", ".join(p for p in parts if p)


def _read_term(
    tree: _Tree, start: Element, term: Term, syntax: str, currency: str | None
) -> TermValue | None:
    paths = term.cii if syntax == "CII" else term.ubl
    for path in paths:
        hits = tree.select(start, path)
        if currency and term.kind == "amount" and len(hits) > 1:
            # BT-110 may be given twice: in the invoice currency and in the VAT accounting one
            hits.sort(key=lambda h: h[0].get("currencyID") not in (None, currency))
        for elem, attr in hits:
            if term.kind == "address":
                text = _address(elem)
                if "," not in text:
                    continue  # a country code alone (MINIMUM profile) is no postal address
            else:
                text = elem.get(attr) if attr else elem.text
            text = " ".join((text or "").split())
            if not text:
                continue
            value: Any = text
            if term.kind == "date":
                value = _date(text, elem)
            elif term.kind in ("amount", "quantity", "percent"):
                value = _number(text)
                if value is None:
                    continue
            return TermValue(term.id, value, text, tree.xpath(elem, attr))
    return None


def read_invoice(data: bytes, source: str) -> EInvoice:
    """Every supported term of the e-invoice in ``data`` (header, then each invoice line).

    Raises:
        EInvoiceError: Refused, malformed, or not a CII/UBL invoice.
    """
    syntax = invoice_syntax(data)
    root = parse_xml(data, source)
    name = _local(root.tag)
    if syntax is None:
        raise EInvoiceError(
            f"{source}: XML root <{name}> is not a CII (CrossIndustryInvoice, "
            "CrossIndustryDocument) or UBL (Invoice, CreditNote) e-invoice",
            "EInvoiceUnsupported",
        )
    tree = _Tree(root)
    inv = EInvoice(source=source, syntax=syntax, root=name)
    for path in (
        "ExchangedDocumentContext/GuidelineSpecifiedDocumentContextParameter/ID",
        "SpecifiedExchangedDocumentContext/GuidelineSpecifiedDocumentContextParameter/ID",
        "CustomizationID",
    ):
        hits = tree.select(root, path)
        if hits and (hits[0][0].text or "").strip():
            inv.profile = hits[0][0].text.strip()
            break
    currency_term = next(t for t in TERMS if t.id == "BT-5")
    cur = _read_term(tree, root, currency_term, syntax, None)
    currency = str(cur.value) if cur else None
    line_paths = CII_LINES if syntax == "CII" else UBL_LINES
    line_elems: list[Element] = []
    for path in line_paths:
        line_elems = [e for e, _ in tree.select(root, path)]
        if line_elems:
            break
    for term in TERMS:
        if term.level != "header":
            continue
        if term.kind == "count":
            xp = tree.xpath(line_elems[0]).rsplit("[", 1)[0] if line_elems else ""
            inv.header[term.id] = TermValue(
                term.id, len(line_elems), str(len(line_elems)), f"count({xp})"
            )
            continue
        tv = cur if term.id == "BT-5" else _read_term(tree, root, term, syntax, currency)
        if tv is not None:
            inv.header[term.id] = tv
    line_terms = [t for t in TERMS if t.level == "line"]
    for elem in line_elems:
        row = {}
        for term in line_terms:
            tv = _read_term(tree, elem, term, syntax, currency)
            if tv is not None:
                row[term.id] = tv
        inv.lines.append(row)
    logger.debug(
        "%s: %s %s, %d header terms, %d lines",
        source,
        syntax,
        name,
        len(inv.header),
        len(inv.lines),
    )
    return inv


__all__ = ["CREDIT_NOTE_CODES", "EInvoice", "TermValue", "parse_xml", "read_invoice"]
