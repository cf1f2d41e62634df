"""Party blocks: the seller's or buyer's name with the address lines under it.

A party is found in one of three ways, most explicit first:

1. a role label ("Bill to:", "Client", "Rechnung an") with the block under it, or the name
   after the label's colon;
2. the seller without a label: the letterhead, i.e. the most prominent name among the first
   lines of the first page, continued on the next line when it is visibly unfinished, followed
   by its address lines (contact and registration lines end the address);
3. the buyer without a label: the recipient block under a one-line sender address
   ("Name, Street 1, 12345 City" in small print above a window-envelope address).
"""

from __future__ import annotations

import itertools
import logging
import re
from functools import lru_cache

from docvlm.datamodel import FieldValue, Line
from docvlm.normalize import find_dates, fold, levenshtein
from docvlm.read.rules.context import DocContext, value_from_lines
from docvlm.read.rules.labels import ROLE_LABELS, FieldLabels, courtesy_ratio, match_label
from docvlm.schema import FieldSpec

logger = logging.getLogger(__name__)

# Legal forms and trading words that end a company name (worldwide, common abbreviations).
_LEGAL = re.compile(
    r"(?i)(?<!\w)(sdn\.?\s*bhd|bhd|berhad|s/b|ltd|limited|llc|llp|l\.l\.c|inc|corp|"
    r"corporation|gmbh|mbh|ag|kg|ohg|e\.\s?k|ug|sarl|s\.a\.r\.l|sas|s\.a|bv|b\.v|nv|plc|pte|"
    r"pty|co|company|oy|ab|srl|s\.r\.l|spa|s\.p\.a|enterprise|enterprises|trading|"
    r"industries|holdings)\.?(?!\w)"
)
_CONTACT = re.compile(
    r"(?i)(?<![^\W\d_])(tel|te1|tél|telephone|phone|ph|fax|hp|h/p|mobile|mob|whatsapp\w*|"
    r"careline|hotline|outlet|e-?mail|web|website)\s*(?:no\.?|number)?\s*[:.\d+(]|"
    r"(?<![^\W\d_])[TFPM]\s?:\s*\+?\(?\d|"
    r"[\w.+-]+@[\w-]+\.\w|(?i:www\.|https?:)|^\W*\+?\d[\d\s\-().]{6,}\d\W*$"
)
_REGISTRATION = re.compile(
    r"(?i)(?<![^\W\d_])(?:(?:gst|vat|sst|tax|tin|abn|ein|ust|mwst|tva|siret|siren|rcs|roc|npwp)"
    r"\s*(?:id|reg|ref|no|nr|number|registration|idnr|\.|:|#)|(?:company|co|reg|registration|business)"
    r"\.?\s*(?:id|reg|ref|no|nr|number|registration)(?![^\W\d_]))"
)
_TAX_ID_LABEL = re.compile(
    r"(?i)^\W*(gst|vat|sst|tax|ust|mwst|tva|abn|tin|ein)\s*(id|reg\w*|no|nr|number|idnr)?\W*(no|nr)?\W*$"
)
_REG_ONLY = re.compile(r"(?i)^[\W_]*(?:[a-z]{0,3}[\W_]*)?\d[\d\s-]{3,}[\d]\s*-?\s*[a-z]?[\W_]*$")
_DOC_TITLES = {
    "invoice", "tax invoice", "rechnung", "facture", "receipt", "official receipt",
    "cash bill", "cash sales", "sales receipt", "quittung", "kassenbon", "bon",
    "simplified tax invoice", "tax invoice receipt", "cash receipt", "bill", "quotation",
    "credit note", "order", "invoice receipt", "cash invoice", "ticket", "recu", "factura",
    "tax receipt", "purchase order", "delivery note", "statement", "guest check",
}  # fmt: skip
_GLUED_TITLES = {t.replace(" ", "") for t in _DOC_TITLES}
_ADDRESS_WORDS = re.compile(
    r"(?i)(?<![^\W\d_])(jalan|jln|lorong|lrg|persiaran|taman|tmn|lebuh|lebuhraya|kampung|kg|"
    r"bandar|seksyen|section|street|st|road|rd|avenue|ave|lane|boulevard|blvd|drive|way|court|"
    r"place|square|highway|hwy|floor|level|suite|unit|lot|block|blk|building|bldg|tower|plaza|"
    r"centre|center|mall|rue|chemin|allee|allée|quai|route|impasse|strasse|straße|str|weg|"
    r"platz|gasse|via|viale|piazza|calle|avenida|carrer|rua|po box|postfach|cedex)(?![^\W\d_])"
)
# A registration number printed after a name: '(139386 X)', 'Co. Reg. No. 1234-K'.
_TRAILING_REG = re.compile(
    r"[\s,]*\(?\s*(?:(?:co|company)\.?\s*(?:reg\.?|no\.?|nr\.?)+\s*:?\s*)?[A-Z]{0,2}\d{4,}"
    r"[\s\-·.]?[A-Z]?\s*\)?[\s.]*$"
)
_REG_TOKEN = re.compile(
    r"(?i)\(\s*[a-z]{0,2}\d{4,}\s*-?\s*[a-z]?\s*\)|(?<!\w)\d{5,}\s*-\s*[a-z](?!\w)"
)


def _letters(text: str) -> int:
    return sum(ch.isalpha() for ch in text)


def is_doc_title(text: str) -> bool:
    """'TAX INVOICE', 'Receipt', also glued by OCR ('TAXINVOICE')."""
    f = fold(text)
    if f in _DOC_TITLES or f.replace(" ", "") in _GLUED_TITLES:
        return True
    # 'TAX INVOICE A05143', 'Tax Invoice / Adjustment Note', 'Receipt #123', 'Bill No: 42'
    if _LEGAL.search(text):
        return False
    for title in _DOC_TITLES:
        if f.startswith(title + " "):
            rest = f[len(title) + 1 :]
            if " " in title or re.match(r"(\d|no\b|nr\b|n\b|number\b)", rest) or "#" in text:
                return True
    return False


def is_contact(text: str) -> bool:
    if _CONTACT.search(text):
        return True
    # any short label, then a number in three or more digit groups, as phones are written
    # ('Té1 : 04 72 41 00 00', 'Puh: 09 123 4567'): the label need not be known or read right
    m = _LABELLED_NUMBER.match(text)
    if not m:
        return False
    number = m.group(1)
    return sum(ch.isdigit() for ch in number) >= 8 and len(re.findall(r"\d+", number)) >= 3


_LABELLED_NUMBER = re.compile(r"^\s*[^\W\d][\w./ ]{0,11}?\s*:\s*(\+?\(?\d[\d\s()-]{6,}\d)\s*$")


def is_registration(text: str) -> bool:
    """A company / tax registration line: 'GST ID: 0012...', '(123456-X)', 'Co. Reg 1234'."""
    digits = sum(ch.isdigit() for ch in text)
    if digits >= 5 and _REG_ONLY.match(text.strip()):
        return True
    if _TAX_ID_LABEL.match(text):
        return True  # 'GST No.' with the number on the next line
    if re.search(r"\d{8,}", text) and not _ADDRESS_WORDS.search(text):
        return True  # 'bakery 000965911-P', 'GST 1D. NO: 000181747712' (OCR-garbled labels)
    return digits >= 5 and bool(_REGISTRATION.search(text))


def is_addressish(text: str) -> bool:
    """A line that can belong to a postal address: a number or a street-type word."""
    text = _REG_TOKEN.sub("", text)
    return bool(re.search(r"\d", text)) or bool(_ADDRESS_WORDS.search(text))


_MONEY = re.compile(
    r"(?i)^\W*(?:[A-Z]{0,3}\$?|[€£¥])\s*-?\d{1,3}(?:[.,\s']?\d{3})*[.,]\d{2}\s*(?:[A-Z]{0,3}|[€£¥])\W*$"
)
_QTY = re.compile(r"(?i)^\s*\d+(?:[.,]\d+)?\s*[x×@*]\s*\S")


def _is_stop(line: Line, label_phrases: tuple[str, ...], ctx: DocContext | None = None) -> bool:
    """Lines that end a name/address block."""
    if _stop_text(line.text, label_phrases):
        return True
    # a row with a price is an item or a total, not a heading
    return ctx is not None and any(
        other is not line and _MONEY.match(other.text) for other in ctx.row(line).lines
    )


def _stop_text(text: str, label_phrases: tuple[str, ...]) -> bool:
    """:func:`_is_stop` by the line's own text."""
    if (
        is_contact(text)
        or is_doc_title(text)
        or find_dates(text)
        or _MONEY.match(text)
        or _QTY.match(text)
    ):
        return True
    if not re.search(r"[^\W_]", text):
        return True  # a rule of dashes or stars
    if re.search(r"(?<!\d)\d{1,2}:\d{2}(?!\d)", text):
        return True  # a time: the transaction details start
    m = match_label(text, label_phrases)
    return m is not None and (len(fold(text)) < 30 or ":" in text)


def _passable(line: Line, label_phrases: tuple[str, ...], ctx: DocContext) -> bool:
    """Lines between a name and its address that do not end the search for the address:
    registration numbers, a date, the document title, a short label with its value."""
    text = line.text
    if is_registration(text) or find_dates(text) or is_doc_title(text):
        return True
    if is_contact(text) or _MONEY.match(text) or _QTY.match(text) or not re.search(r"[^\W_]", text):
        return False
    if any(other is not line and _MONEY.match(other.text) for other in ctx.row(line).lines):
        return False
    return match_label(text, label_phrases) is not None and ":" in text and len(text) < 40


#: a line that opens with a few words and a colon before more text is a label and its value
_KEY_VALUE = re.compile(r"[^\W\d_][^:\d]{0,24}:\s+\S")


def _noise(line: Line, label_phrases: tuple[str, ...]) -> bool:
    """Lines that cannot be a party name."""
    return line.conf < 0.55 or _noise_text(line.text, label_phrases)


@lru_cache(maxsize=16384)
def _noise_text(raw: str, label_phrases: tuple[str, ...]) -> bool:
    """:func:`_noise` of a line's text (the same text is asked about once per party field
    and per block it may start or end)."""
    text = raw.strip()
    if _letters(text) < 3:
        return True
    if (
        is_doc_title(text)
        or is_contact(text)
        or is_registration(text)
        or _stop_text(raw, label_phrases)
        or courtesy_ratio(text) >= 0.75  # 'Welcome to the', 'Thank you for visiting'
    ):
        return True
    if _KEY_VALUE.match(text):
        return True  # 'Customer: Jane', 'Server: Tom': a label and its value
    return text.startswith(("*", "=", "#"))


# Legal forms as printed, for snapping OCR slips ('SDN DHD', '5/B') at the end of a name.
_LEGAL_FORMS = ("SDN BHD", "S/B", "BHD", "BERHAD", "LTD", "LIMITED", "LLC", "INC", "CORP", "GMBH",
                "PTE LTD", "PTY LTD", "PLC", "SARL", "SAS", "ENTERPRISE", "TRADING")  # fmt: skip
_DIGIT_AS_LETTER = str.maketrans({"5": "S", "8": "B", "0": "O", "1": "I", "6": "G"})


def _snap_legal_form(text: str) -> str:
    """'99 SPEED MART 5/8' → '99 SPEED MART S/B', 'SEAFOOD SDN DHD' → 'SEAFOOD SDN BHD'.

    Only a capitalised last word with a slash ('S/B') or the word after 'SDN'/'PTE'/'PTY' is
    snapped, by at most one edit (two when digits stood for letters), and never in an address."""
    words = text.split()
    if len(words) < 2 or _LEGAL.search(words[-1]) or _ADDRESS_WORDS.search(text):
        return text
    for n in (2, 1):
        if len(words) <= n:
            continue
        tail = " ".join(words[-n:])
        before = words[-n - 1].upper() if len(words) > n else ""
        odd = (n == 1 and "/" in tail and len(tail) <= 4) or before in ("SDN", "PTE", "PTY")
        if tail != tail.upper() or not odd:
            continue
        probe = tail.upper().translate(_DIGIT_AS_LETTER).replace("II", "H")
        best = min(_LEGAL_FORMS, key=lambda form: levenshtein(probe, form))
        allowed = 2 if probe != tail.upper() else 1
        if 0 < levenshtein(tail.upper(), best) and levenshtein(probe, best) <= allowed:
            return " ".join(words[:-n] + [best])
    return text


def clean_name(text: str) -> str:
    """A company name without the registration number or codes printed after it."""
    text = text.strip().strip("|").strip()
    legal = list(_LEGAL.finditer(text))
    if legal:
        tail = text[legal[-1].end() :]
        if re.search(r"\d", tail):
            text = text[: legal[-1].end()]
    previous = None
    while previous != text:
        previous = text
        stripped = _TRAILING_REG.sub("", text).strip()
        if _letters(stripped) >= 3:
            text = stripped
    return _snap_legal_form(text.strip(" ,;:-"))


def _unfinished(text: str) -> bool:
    t = text.rstrip()
    return (
        t.endswith(("&", "-", "+", ",", "("))
        or t.count("(") > t.count(")")
        or fold(t).endswith(" and")
    )


def _next_below(line: Line, ctx: DocContext, max_gap: float) -> Line | None:
    below = ctx.below(line, max_rows=1, max_gap=max_gap)
    if not below:
        return None
    cx = (line.bbox[0] + line.bbox[2]) / 2
    return min(
        below,
        key=lambda ln: abs((ln.bbox[0] + ln.bbox[2]) / 2 - cx) + abs(ln.bbox[0] - line.bbox[0]),
    )


def _name_block(first: Line, ctx: DocContext, label_phrases: tuple[str, ...]) -> list[Line]:
    """The name line plus the lines that visibly continue it (a name split over 2–3 lines)."""
    block = [first]
    nxt = _next_below(first, ctx, 1.2)
    if (
        nxt is not None
        and fold(nxt.text).startswith(fold(first.text) + " ")
        and not re.search(r"\d", nxt.text)
        and not _noise(nxt, label_phrases)
    ):
        return [nxt]  # the brand, then the brand with its branch: 'PIZZA CO' / 'PIZZA CO CITY MALL'
    for _ in range(2):
        last = block[-1]
        nxt = _next_below(last, ctx, 1.2)
        if nxt is None or _noise(nxt, label_phrases) or is_addressish(_LEGAL.sub("", nxt.text)):
            break
        height_ratio = (nxt.bbox[3] - nxt.bbox[1]) / max(last.bbox[3] - last.bbox[1], 1e-6)
        joined = " ".join(ln.text for ln in block)
        starts_legal = (m := _LEGAL.search(nxt.text)) is not None and m.start() == 0
        if (
            _unfinished(last.text)
            or (not _LEGAL.search(joined) and starts_legal and height_ratio > 0.75)
            or (len(block) == 1 and not _LEGAL.search(joined) and _subtitle(nxt, last))
        ):
            block.append(nxt)
        else:
            break
    return block


def _subtitle(nxt: Line, name: Line) -> bool:
    """A short line of words centred under a one-line name, without a digit: the rest of the
    name ('Basil Thai' over 'Restaurant & Bar', 'SALVATION' over 'ARMY'), which an address,
    a phone or a slogan (digits, a comma, a street word, more words) is not."""
    h = name.bbox[3] - name.bbox[1]
    shift = abs((nxt.bbox[0] + nxt.bbox[2]) - (name.bbox[0] + name.bbox[2])) / 2
    return (
        len(nxt.text.split()) <= 3
        and not re.search(r"[\d,]", nxt.text)  # 'DALLAS, TX' is the address
        and _letters(nxt.text) >= 3
        and shift <= 0.6 * h
        and (nxt.bbox[3] - nxt.bbox[1]) >= 0.5 * h
    )


def _address_lines(
    after: Line, ctx: DocContext, label_phrases: tuple[str, ...], name: str
) -> tuple[list[tuple[Line, str]], int]:
    """Address lines under ``after`` (the name block's last line): leading descriptor or
    registration lines are skipped; contact, registration, date and label lines end it."""
    out: list[tuple[Line, str]] = []
    current = after
    skipped = 0  # descriptor lines passed over before the address
    passed = 0  # registration numbers and dates passed over
    first_h = None
    folded_name = fold(name)
    for _ in range(9):
        nxt = _next_below(current, ctx, 1.7)
        if nxt is None:
            break
        current = nxt
        text = nxt.text.strip()
        if folded_name and fold(text).startswith(folded_name + " ") and _after_name(text, name):
            # a one-line sender address repeating the name: keep what follows it
            out.append((nxt, _after_name(text, name)))
            break
        h = nxt.bbox[3] - nxt.bbox[1]
        if out and first_h and not 0.7 < h / first_h < 1.45:
            break  # another block in another font size
        if not out and _passable(nxt, label_phrases, ctx):
            passed += 1  # a registration number, the date or a title printed under the name
            if passed > 3:
                break
            continue
        cut = _CONTACT.search(text)
        if cut and cut.start() > 0:
            head = text[: cut.start()].strip(" ,;|·")
            if is_addressish(head) and _letters(head) >= 3:
                out.append((nxt, head))
            break
        if _is_stop(nxt, label_phrases, ctx) or is_registration(text):
            break
        if _LEGAL.search(text) and not _ADDRESS_WORDS.search(text):
            if out:
                break  # another company's name
            skipped += 1
            continue
        if not out and not is_addressish(text):
            skipped += 1
            if skipped > 3:
                break
            continue
        if _letters(text) < 2 and sum(ch.isdigit() for ch in text) < 3:
            break
        out.append((nxt, text))
        first_h = first_h or h
        if len(out) >= 6:
            break
    return out, skipped


def _after_name(text: str, name: str) -> str:
    """'Name GmbH · Street 1 · 12345 City · Tel. 0123' → 'Street 1, 12345 City'."""
    n_tokens = len(fold(name).split())
    tokens = list(re.finditer(r"[^\W_]+", text))
    if len(tokens) <= n_tokens:
        return ""
    rest = text[tokens[n_tokens - 1].end() :]
    parts = [p.strip(" .,;") for p in re.split(r"\s*[·•|;]\s*|,\s+|\s+[–-]\s+", rest)]
    kept: list[str] = []
    for part in parts:
        if not part:
            continue
        if is_contact(part) or is_registration(part) or "@" in part:
            break
        kept.append(part)
    return ", ".join(kept) if any(re.search(r"\d", p) for p in kept) else ""


def _role_blocks(
    role: str, ctx: DocContext, label_phrases: tuple[str, ...]
) -> list[tuple[list[Line], list[tuple[Line, str]]]]:
    """(name lines, address lines) under each printed role label."""
    phrases = tuple(fold(p) for p in ROLE_LABELS[role])
    out = []
    for line in ctx.lines:
        m = match_label(line.text, phrases)
        if not m or len(fold(line.text)) > 60:
            continue
        phrase, rest = m
        head = line.text.split(":", 1)
        if rest and len(head) < 2:
            continue  # 'Customer No. 42', 'From the date of ...': not a role label
        if rest and fold(head[0]) != phrase:
            continue
        if rest:
            name_line = line.model_copy(update={"text": rest})
            names = [name_line]
            last = line
        else:
            first = _next_below(line, ctx, 2.0)
            if first is None or _noise(first, label_phrases):
                continue
            names = [first]
            last = first
        address = _address_lines(last, ctx, label_phrases, "")[0]
        out.append((names, address))
    return out


def _letterhead(
    ctx: DocContext, label_phrases: tuple[str, ...]
) -> tuple[list[Line], list[tuple[Line, str]]] | None:
    """The seller's name block and address from the top of the first page.

    Among the first few plausible lines, the name is the one printed largest and first, with a
    legal form, and with an address block under it; short all-capital logos and handwritten
    lower-case notes rank low.
    """
    if not ctx.rows:
        return None
    page = ctx.rows[0].page
    rows = [row for row in ctx.rows if row.page == page][:15]
    # the first six plausible lines (the rest of the rows are not looked at)
    plausible = (ln for row in rows for ln in row.lines if not _noise(ln, label_phrases))
    candidates = list(itertools.islice(plausible, 6))
    if not candidates:
        return None
    widths = sorted(
        (ln.bbox[2] - ln.bbox[0]) / len(ln.text)
        for ln in ctx.lines
        if ln.page == page and len(ln.text) >= 4
    )
    char_w = widths[len(widths) // 2] if widths else 1.0
    scored = []
    for i, ln in enumerate(candidates):
        names = _name_block(ln, ctx, label_phrases)
        name = clean_name(" ".join(x.text for x in names))
        address, skipped = _address_lines(names[-1], ctx, label_phrases, name)
        s = 1.0 - 0.12 * i
        height = (ln.bbox[3] - ln.bbox[1]) / max(ctx.line_height, 1e-6)
        width = (ln.bbox[2] - ln.bbox[0]) / max(len(ln.text), 1) / max(char_w, 1e-6)
        size = max(height, width)
        # printed larger than the body text; far larger is a logo or a handwritten note
        s += 0.2 * min(max(size - 1.0, 0.0), 1.5) if size <= 3.0 else -0.2
        if _LEGAL.search(name):
            s += 0.35
        elif is_addressish(name):
            s -= 0.35
        if address:
            s += 0.2 if skipped == 0 else 0.15
        if _letters(name) <= 4:
            s -= 0.3  # a logo's initials
        if ln.conf < 0.75:
            s -= 0.3
        words = [w for w in re.findall(r"[^\W\d_]+", name)]
        lower = [w for w in words if w[0].islower()]
        if name == name.lower() or (len(lower) >= 2 and 2 * len(lower) >= len(words)):
            s -= 0.3  # merchant names are printed in capitals or title case, not as prose
        folded = fold(name)
        if len(folded.split()) >= 2 and any(
            other is not ln and folded in fold(other.text) for other in ctx.lines
        ):
            s += 0.15  # repeated in the footer or the payment terms
        scored.append((s, -i, names, name, address))
        logger.debug("letterhead candidate %r: %.3f", name, s)
    _, _, names, name, address = max(scored, key=lambda t: (t[0], t[1]))
    if not address:
        address = _one_line_address(ctx, name, names)
    return names, address


def _one_line_address(ctx: DocContext, name: str, exclude: list[Line]) -> list[tuple[Line, str]]:
    """'Name · Street 1 · 12345 City' anywhere in the document (sender line, footer)."""
    folded = fold(name)
    if len(folded) < 4:
        return []
    for line in ctx.lines:
        if any(line is ex for ex in exclude):
            continue
        if fold(line.text).startswith(folded + " "):
            rest = _after_name(line.text, name)
            if rest:
                return [(line, rest)]
    return []


def _recipient(
    ctx: DocContext, seller: str, label_phrases: tuple[str, ...]
) -> tuple[list[Line], list[tuple[Line, str]]] | None:
    """The recipient block under a one-line sender address (window-envelope layout)."""
    folded = fold(seller)
    if len(folded) < 4 or not ctx.rows:
        return None
    page = ctx.rows[0].page
    page_h = next((p.height for p in ctx.pages if p.number == page), 0) or 1
    for line in ctx.lines:
        if line.page != page or line.bbox[1] > 0.5 * page_h:
            continue
        if not (fold(line.text).startswith(folded + " ") and re.search(r"\d", line.text)):
            continue
        first = _next_below(line, ctx, 1.5)
        if first is None or _noise(first, label_phrases):
            continue
        return [first], _address_lines(first, ctx, label_phrases, "")[0]
    return None


def _value(spec: FieldSpec, text: str, lines: list[Line], conf: float, reader: str) -> FieldValue:
    return value_from_lines(spec.path, text, lines, reader, conf, sep="\n")


def read_party(
    spec: FieldSpec, fl: FieldLabels, ctx: DocContext, label_phrases: tuple[str, ...], reader: str
) -> list[FieldValue]:
    """Candidates for a party's name or address (``fl.role`` seller/buyer, ``fl.part``)."""
    role = fl.role or "seller"
    # a labelled block with address lines is a party block; a bare 'Vendeur : Léa' may be a
    # salesperson, so it ranks below the letterhead
    found: list[tuple[list[Line], list[tuple[Line, str]], float]] = [
        (names, address, 0.75 if address else 0.5)
        for names, address in ctx.memo(
            ("role_blocks", role, label_phrases), lambda: _role_blocks(role, ctx, label_phrases)
        )[:1]
    ]
    if not any(conf > 0.6 for *_, conf in found):
        # the same for every party field of the document: found once
        head = ctx.memo(("letterhead", label_phrases), lambda: _letterhead(ctx, label_phrases))
        if role == "seller" and head is not None:
            found.append((head[0], head[1], 0.6))
        elif role == "buyer" and head is not None and not found:
            seller = clean_name(" ".join(ln.text for ln in head[0]))
            block = ctx.memo(
                ("recipient", seller, label_phrases),
                lambda: _recipient(ctx, seller, label_phrases),
            )
            if block is not None:
                found.append((block[0], block[1], 0.55))
    out: list[FieldValue] = []
    for names, address, conf in found:
        if fl.part == "name":
            text = clean_name(" ".join(ln.text.strip() for ln in names))
            if text:
                out.append(_value(spec, text, names, conf, reader))
        elif address:
            text = ", ".join(part.strip().rstrip(",") for _, part in address)
            out.append(_value(spec, text, [ln for ln, _ in address], conf, reader))
    return out
