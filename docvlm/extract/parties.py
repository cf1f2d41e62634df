"""Party blocks: the seller's or buyer's name with the address lines under it."""

from __future__ import annotations

import re

from docvlm.datamodel import FieldValue, Line
from docvlm.extract.context import DocContext
from docvlm.extract.labels import FieldLabels, match_label
from docvlm.extract.normalize import find_dates, fold, is_amount_text
from docvlm.extract.schema import FieldSpec

_COMPANY = re.compile(
    r"(?i)\b(sdn\.?\s*bhd|bhd|s/b|berhad|enterprise|trading|ltd|limited|llc|l\.l\.c|inc|corp|"
    r"corporation|gmbh|ag|kg|ohg|ug|sarl|s\.a\.r\.l|sas|s\.a\.|sa|bv|nv|plc|pte|pty|co\.|"
    r"company|restaurant|restoran|cafe|café|bakery|mart|market|supermarket|store|stores|shop|"
    r"hardware|pharmacy|trading|industries|holdings|services|solutions|group)\b"
)
_STOP = re.compile(
    r"(?i)\b(tel|telephone|phone|ph|fax|hp|mobile|e-?mail|www|http|gst|vat|tax|reg|"
    r"registration|company no|co\.? no|roc|ust|steuer|siret|siren|tva|iban|bic|swift|"
    r"invoice|receipt|cashier|table|date|time|bill|order|document|doc no|member|"
    r"rechnung|facture|datum|kasse|server|guest|pos|counter|slip|transaction)\b"
)
_REG_ONLY = re.compile(r"(?i)^\(?\s*(co\.?\s*(reg|no)\.?[:\s]*)?[\dA-Z]{0,4}\d{4,}[-\s]?[A-Z]?\s*\)?$")
_DOC_TITLES = {
    "invoice", "tax invoice", "rechnung", "facture", "receipt", "official receipt",
    "cash bill", "cash sales", "sales receipt", "quittung", "kassenbon", "bon", "simplified tax invoice",
    "tax invoice receipt", "cash receipt", "bill", "quotation", "credit note", "order",
}  # fmt: skip


def _is_noise(line: Line, label_phrases: tuple[str, ...]) -> bool:
    f = fold(line.text)
    if not f or f in _DOC_TITLES or len(f) < 2:
        return True
    if is_amount_text(line.text) or find_dates(line.text):
        return True
    return match_label(line.text, label_phrases) is not None and len(f) < 30


def _block(anchor: Line, ctx: DocContext, label_phrases: tuple[str, ...], limit: int = 7) -> list[Line]:
    """The anchor and the lines under it that belong to the same block (aligned, no gap)."""
    block = [anchor]
    current = anchor
    for _ in range(limit):
        below = [
            ln
            for ln in ctx.below(current, max_rows=1, max_gap=1.3)
            if ln not in block and not (match_label(ln.text, label_phrases) and len(fold(ln.text)) < 25)
        ]
        if not below:
            break
        nxt = min(below, key=lambda ln: abs(ln.bbox[0] - anchor.bbox[0]))
        block.append(nxt)
        current = nxt
    return block


def _split(block: list[Line]) -> tuple[Line | None, list[Line]]:
    """Name line and address lines of a block; contact/registration lines end the address."""
    if not block:
        return None, []
    name, address = block[0], []
    for ln in block[1:]:
        if _REG_ONLY.match(ln.text.strip()):
            continue
        if _STOP.search(ln.text) or find_dates(ln.text) or "@" in ln.text:
            if address:
                break
            continue
        address.append(ln)
    return name, address


def _top_anchor(ctx: DocContext, label_phrases: tuple[str, ...]) -> Line | None:
    """The seller's name when no label announces it: the top block of the first page."""
    first = [row for row in ctx.rows if row.page == (ctx.rows[0].page if ctx.rows else 1)]
    candidates: list[Line] = []
    for row in first[:12]:
        for ln in row.lines:
            if not _is_noise(ln, label_phrases) and not _REG_ONLY.match(ln.text.strip()):
                candidates.append(ln)
    if not candidates:
        return None
    for ln in candidates[:6]:
        if _COMPANY.search(ln.text) and not _STOP.search(ln.text):
            return ln
    return candidates[0]


def read_party(
    spec: FieldSpec, fl: FieldLabels, ctx: DocContext, label_phrases: tuple[str, ...], reader: str
) -> list[FieldValue]:
    """Candidates for a party's name or address (``fl.role`` seller/buyer, ``fl.part``)."""
    from docvlm.extract.labels import ROLE_LABELS

    role_phrases = tuple(fold(p) for p in ROLE_LABELS[fl.role or "seller"])
    blocks: list[tuple[list[Line], float]] = []
    for line in ctx.lines:
        m = match_label(line.text, role_phrases)
        if not m or len(fold(line.text)) > 60:
            continue
        phrase, rest = m
        if phrase in ("to", "an", "from") and not line.text.rstrip().endswith(":") and not rest:
            continue  # bare short words are labels only when they end with a colon
        if rest:
            anchor = line.model_copy(update={"text": rest})
            block = [anchor, *_block(line, ctx, label_phrases)[1:]]
        else:
            below = ctx.below(line, max_rows=1, max_gap=2.0)
            if not below:
                continue
            start = min(below, key=lambda ln: abs(ln.bbox[0] - line.bbox[0]))
            block = _block(start, ctx, label_phrases)
        blocks.append((block, 0.75))
    if not blocks and fl.role == "seller":
        anchor = _top_anchor(ctx, label_phrases)
        if anchor is not None:
            blocks.append((_block(anchor, ctx, label_phrases), 0.6))
    out: list[FieldValue] = []
    for block, conf in blocks[:1]:
        name, address = _split(block)
        chosen = [name] if fl.part == "name" and name else address
        if not chosen:
            continue
        text = ", ".join(ln.text.strip().rstrip(",") for ln in chosen)
        x0 = min(ln.bbox[0] for ln in chosen)
        y0 = min(ln.bbox[1] for ln in chosen)
        x1 = max(ln.bbox[2] for ln in chosen)
        y1 = max(ln.bbox[3] for ln in chosen)
        out.append(
            FieldValue(
                path=spec.path,
                value=text,
                raw="\n".join(ln.text for ln in chosen),
                page=chosen[0].page,
                bbox=(x0, y0, x1, y1),
                region_class=chosen[0].region_class,
                reader=reader,
                confidence=round(conf * min(ln.conf for ln in chosen), 4),
            )
        )
    return out
