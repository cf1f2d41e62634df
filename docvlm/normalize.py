"""Typed normalisation: dates to ISO 8601, amounts to numbers, currency symbols to codes."""

from __future__ import annotations

import functools
import re
import unicodedata
from datetime import date
from typing import Any

_MONTHS = {
    # English
    "jan": 1, "january": 1, "feb": 2, "february": 2, "mar": 3, "march": 3, "apr": 4,
    "april": 4, "may": 5, "jun": 6, "june": 6, "jul": 7, "july": 7, "aug": 8, "august": 8,
    "sep": 9, "sept": 9, "september": 9, "oct": 10, "october": 10, "nov": 11,
    "november": 11, "dec": 12, "december": 12,
    # German
    "januar": 1, "jänner": 1, "jän": 1, "februar": 2, "märz": 3, "maerz": 3, "mär": 3,
    "mai": 5, "juni": 6, "juli": 7, "okt": 10, "oktober": 10, "dez": 12, "dezember": 12,
    # French
    "janvier": 1, "janv": 1, "février": 2, "fevrier": 2, "févr": 2, "fevr": 2, "mars": 3,
    "avril": 4, "avr": 4, "juin": 6, "juillet": 7, "juil": 7, "août": 8, "aout": 8,
    "septembre": 9, "octobre": 10, "novembre": 11, "décembre": 12, "decembre": 12,
    "déc": 12,
    # Spanish / Italian / Dutch (common on receipts)
    "enero": 1, "febrero": 2, "marzo": 3, "abril": 4, "mayo": 5, "junio": 6, "julio": 7,
    "agosto": 8, "septiembre": 9, "octubre": 10, "noviembre": 11, "diciembre": 12,
    "gennaio": 1, "febbraio": 2, "aprile": 4, "maggio": 5, "giugno": 6, "luglio": 7,
    "settembre": 9, "ottobre": 10, "dicembre": 12, "januari": 1, "februari": 2,
    "maart": 3, "mei": 5, "augustus": 8,
}  # fmt: skip
_MONTH_RE = "|".join(sorted((re.escape(m) for m in _MONTHS), key=len, reverse=True))

# d/m/y, m/d/y or y-m-d with one separator; the year may run into a time printed without a
# space ("29/12/201711:41"), and a fourth group means a phone number, not a date.
_NUMERIC_DATE = re.compile(
    r"(?<![\d.])(?<!\d[/\-])(\d{1,4})\s?([./\-])\s?(\d{1,2})\s?\2\s?"
    r"(\d{4}(?=[012]?\d[:h.][0-5]\d)|\d{2}(?=[012]\d[:h][0-5]\d)|\d{2,4}(?!\d))(?![./\-]\d)"
)
_COMPACT_ISO = re.compile(r"(?<!\d)(20\d{2})(0[1-9]|1[0-2])(0[1-9]|[12]\d|3[01])(?!\d)")
_DAY_MONTH_YEAR = re.compile(
    rf"(?<![\w])(\d{{1,2}})(?:st|nd|rd|th|er)?\.?[\s\-/]*({_MONTH_RE})\.?,?[\s\-/']*(\d{{2,4}})(?!\d)",
    re.IGNORECASE,
)
_MONTH_DAY_YEAR = re.compile(
    rf"(?<![\w])({_MONTH_RE})\.?[\s\-/]*(\d{{1,2}})(?:st|nd|rd|th)?(?:,?[\s\-]+|\s?'|/)(\d{{2,4}})(?!\d)",
    re.IGNORECASE,
)


def _year(y: str) -> int:
    value = int(y)
    if len(y) <= 2:
        value += 2000 if value < 70 else 1900
    return value


def _make(y: int, m: int, d: int) -> date | None:
    try:
        if not 1900 <= y <= 2100:
            return None
        return date(y, m, d)
    except ValueError:
        return None


def find_dates(text: str, dayfirst: bool = True) -> list[tuple[str, int, int]]:
    """All dates in ``text`` as ``(iso, start, end)``.

    Numeric dates that could be read either way (03/04/2019) follow ``dayfirst``;
    one part above 12 settles it.
    """
    return list(_find_dates(text, dayfirst))


@functools.lru_cache(maxsize=65536)
def _find_dates(text: str, dayfirst: bool) -> tuple[tuple[str, int, int], ...]:
    """:func:`find_dates`, cached: the readers ask about the same lines many times."""
    return tuple(_scan_dates(text, dayfirst))


def _scan_dates(text: str, dayfirst: bool) -> list[tuple[str, int, int]]:
    found: list[tuple[str, int, int]] = []
    if _decimal_digits(text) < 3:
        return found  # every date pattern takes three digits at least (day, month/year)
    for m in _NUMERIC_DATE.finditer(text):
        a, sep, b, c = m.group(1), m.group(2), m.group(3), m.group(4)
        if text[m.end(1) : m.start(3)] != text[m.end(3) : m.start(4)]:
            continue  # "01-3 - 70": separators spaced differently, not one date
        if len(a) == 4:  # yyyy-mm-dd
            d = _make(int(a), int(b), int(c)) if len(c) <= 2 else None
            if d is None and len(c) == 4 and re.match(r"[:h]\d{2}", text[m.end() :]):
                d = _make(int(a), int(b), int(c[:2]))  # yyyy-mm-ddhh:mm
        else:
            if len(c) == 3:
                continue
            x, y_, yr = int(a), int(b), _year(c)
            if x > 12 or (dayfirst and y_ <= 12):
                d = _make(yr, y_, x)
            else:
                d = _make(yr, x, y_) or _make(yr, y_, x)
            if sep == "." and len(c) == 2 and not dayfirst and x <= 12:
                d = _make(yr, y_, x) or d  # dotted dates are day-first everywhere
        if d:
            found.append((d.isoformat(), m.start(), m.end()))
    # a month's name (letters) joins its day's digits through dots, spaces, '-' or '/' only:
    # a text without such a join has no date of that order (the name patterns are slow)
    for m in _DAY_MONTH_YEAR.finditer(text) if _DIGIT_TO_LETTER.search(text) else ():
        d = _make(_year(m.group(3)), _MONTHS[m.group(2).lower()], int(m.group(1)))
        if d:
            found.append((d.isoformat(), m.start(), m.end()))
    for m in _MONTH_DAY_YEAR.finditer(text) if _LETTER_TO_DIGIT.search(text) else ():
        d = _make(_year(m.group(3)), _MONTHS[m.group(1).lower()], int(m.group(2)))
        if d:
            found.append((d.isoformat(), m.start(), m.end()))
    for m in _COMPACT_ISO.finditer(text):
        d = _make(int(m.group(1)), int(m.group(2)), int(m.group(3)))
        if d:
            found.append((d.isoformat(), m.start(), m.end()))
    found.sort(key=lambda t: t[1])
    # drop matches nested inside an earlier, longer one
    result: list[tuple[str, int, int]] = []
    for item in found:
        if result and item[1] < result[-1][2]:
            if item[2] - item[1] > result[-1][2] - result[-1][1]:
                result[-1] = item
            continue
        result.append(item)
    return result


def _decimal_digits(text: str) -> int:
    """How many characters of ``text`` the patterns' ``\\d`` matches (Unicode category Nd)."""
    if text.isascii():  # [0-9] only: counted by deleting them
        return len(text) - len(text.encode("ascii").translate(None, _ASCII_DIGITS))
    return sum(map(str.isdecimal, text))


_ASCII_DIGITS = b"0123456789"
_DIGIT_TO_LETTER = re.compile(r"\d[.\s\-/]*[^\W\d_]")
_LETTER_TO_DIGIT = re.compile(r"[^\W\d_][.\s\-/]*\d")


def parse_date(text: str, dayfirst: bool = True) -> str | None:
    """The first date in ``text`` as ISO ``YYYY-MM-DD``, or None."""
    if not text:
        return None
    dates = find_dates(text, dayfirst)
    return dates[0][0] if dates else None


_CURRENCY_SYMBOLS = [
    ("S$", "SGD"), ("US$", "USD"), ("A$", "AUD"), ("C$", "CAD"), ("HK$", "HKD"),
    ("NZ$", "NZD"), ("R$", "BRL"), ("RM", "MYR"), ("€", "EUR"), ("£", "GBP"), ("¥", "JPY"),
    ("₹", "INR"), ("₩", "KRW"), ("₽", "RUB"), ("₺", "TRY"), ("zł", "PLN"), ("Kč", "CZK"),
    ("CHF", "CHF"), ("Fr.", "CHF"), ("$", "USD"),
]  # fmt: skip
ISO_CURRENCIES = {
    "EUR", "USD", "GBP", "JPY", "CHF", "CAD", "AUD", "NZD", "SGD", "MYR", "HKD", "CNY", "INR",
    "SEK", "NOK", "DKK", "PLN", "CZK", "HUF", "RON", "BGN", "TRY", "RUB", "BRL", "MXN", "ZAR",
    "KRW", "IDR", "THB", "PHP", "VND", "AED", "SAR", "ILS", "TWD",
}  # fmt: skip
_CODE_RE = re.compile(r"(?<![A-Z])(" + "|".join(sorted(ISO_CURRENCIES)) + r")(?![A-Z])")


def find_currency(text: str) -> str | None:
    """An ISO 4217 code named or symbolised in ``text``, or None."""
    found = find_currency_span(text)
    return found[0] if found else None


def find_currency_span(text: str) -> tuple[str, int, int] | None:
    """:func:`find_currency` with where the code or symbol is printed (start, end)."""
    if not text:
        return None
    m = _CODE_RE.search(text)
    if m:
        return m.group(1), m.start(1), m.end(1)
    for symbol, code in _CURRENCY_SYMBOLS:
        if symbol == "RM":
            rm = re.search(r"(?<![A-Za-z])RM(?![A-Za-z])", text)
            if rm:
                return code, rm.start(), rm.end()
        elif symbol in text:
            at = text.index(symbol)
            return code, at, at + len(symbol)
    return None


_AMOUNT_RE = re.compile(
    r"(?<![\w.,])[-−(]?\s?(?:\d{1,3}(?:[ \u00a0\u202f'.,]\d{3})+|\d+)(?:[.,]\d{1,3})?\)?-?(?![\w])"
)
_CODES = r"US\$|S\$|A\$|C\$|HK\$|RM|EUR|USD|GBP|SGD|MYR|CHF|Fr\.|[€£$¥₹]"
_GLUED_CURRENCY = re.compile(
    rf"(?<![A-Za-z])(?:{_CODES})\s*(?=-?\d)|(?<=\d)\s*(?:{_CODES})(?![A-Za-z])"
)
_NOISE = re.compile(r"(US\$|S\$|A\$|C\$|HK\$|RM|EUR|USD|GBP|SGD|MYR|CHF|Fr\.|[€£$¥₹*:#=]|\s)", re.I)


def parse_amount(text: str, decimal_comma: bool | None = None) -> float | None:
    """A monetary or plain number in ``text`` under either 1.234,56 or 1,234.56 conventions.

    ``decimal_comma`` breaks ties such as ``1,234`` (None: a lone comma followed by three
    digits is a thousands separator). Returns None when the text holds no single number.
    """
    if not text:
        return None
    s = text.strip()
    s = (
        s.replace("−", "-").replace("O", "0")
        if re.fullmatch(r"[\dO.,\s]+", s)
        else s.replace("−", "-")
    )
    s = _GLUED_CURRENCY.sub("", s)  # 'RM8.60', '-RM 0.01', '12.50EUR'
    s = re.sub(r"^(\d+)-(\d{2})$", r"\1.\2", s)  # '22-60': a decimal point read as a dash
    m = _AMOUNT_RE.search(s)
    if not m:
        return None
    token = m.group(0).strip()
    negative = token.startswith(("-", "(")) or token.endswith("-")
    token = token.strip("-()").strip()
    token = re.sub(r"[ \u00a0\u202f']", "", token)
    if "," in token and "." in token:
        if token.rfind(",") > token.rfind("."):
            token = token.replace(".", "").replace(",", ".")
        else:
            token = token.replace(",", "")
    elif "," in token:
        head, _, tail = token.rpartition(",")
        groups = token.split(",")
        if len(tail) == 3 and (decimal_comma is not True or len(groups) > 2):
            token = token.replace(",", "")
        elif len(groups) == 2:
            token = head + "." + tail
        else:
            token = token.replace(",", "")
    elif "." in token:
        groups = token.split(".")
        if len(groups) > 2 or (len(groups[-1]) == 3 and decimal_comma is True):
            token = token.replace(".", "")
    try:
        value = float(token)
    except ValueError:
        return None
    return -value if negative else value


def is_amount_text(text: str) -> bool:
    """True when ``text`` is essentially one number (with currency marks), not prose."""
    stripped = _NOISE.sub("", text)
    stripped = re.sub(r"(?i)(incl|excl|tax|vat|total)", "", stripped)
    if not stripped:
        return False
    digits = sum(ch.isdigit() for ch in stripped)
    return digits >= 1 and digits >= 0.6 * len(
        stripped.replace(",", "").replace(".", "").replace("-", "")
    )


_NOT_WORD = re.compile(r"[^\w%]+")


@functools.lru_cache(maxsize=1 << 16)
def fold(text: str) -> str:
    """Lower-case, accents removed, punctuation to spaces, whitespace collapsed.

    Cached: the readers fold the same line texts and label phrases once per field."""
    if text.isascii():  # no compatibility forms or accents to take off
        return " ".join(ascii_words(text))
    text = unicodedata.normalize("NFKD", text)
    text = "".join(ch for ch in text if not unicodedata.combining(ch))
    text = _NOT_WORD.sub(" ", text.lower())
    return " ".join(text.split())


#: ASCII bytes as :func:`fold` leaves them: letters lowered, what ``_NOT_WORD`` matches a
#: space (one bytes translation is faster than lowering and the pattern's replacements)
_ASCII_FOLD = bytes(
    ord(" ") if _NOT_WORD.fullmatch(chr(c)) else ord(chr(c).lower()) for c in range(128)
) + bytes(range(128, 256))


def ascii_words(text: str) -> list[str]:
    """The words of :func:`fold` of an ASCII ``text``."""
    return text.encode("ascii").translate(_ASCII_FOLD).decode("ascii").split()


def compact(text: str) -> str:
    """Text for exact comparison: case, whitespace and punctuation removed."""
    text = str(text)
    if text.isascii():  # NFKC leaves ASCII as it is
        return text.encode("ascii").translate(_ASCII_LOWER, _ASCII_NOT_ALNUM).decode("ascii")
    text = unicodedata.normalize("NFKC", text)
    return _NOT_ALNUM.sub("", text.lower())


_NOT_ALNUM = re.compile(r"[\W_]+")
#: for :func:`compact` of ASCII bytes: what ``_NOT_ALNUM`` matches, and letters lowered
_ASCII_NOT_ALNUM = bytes(c for c in range(128) if _NOT_ALNUM.fullmatch(chr(c)))
_ASCII_LOWER = bytes(ord(chr(c).lower()) for c in range(128)) + bytes(range(128, 256))


def levenshtein(a: str, b: str) -> int:
    """Edit distance (insertions, deletions, substitutions)."""
    if len(a) < len(b):
        a, b = b, a
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i]
        for j, cb in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb)))
        prev = cur
    return prev[-1]


_TRUE_WORDS = frozenset({"yes", "true", "ja", "oui", "si", "x", "1"})
_FALSE_WORDS = frozenset({"no", "false", "nein", "non", "0"})
_BLANKS = frozenset({"", "null", "none", "n/a"})


def coerce(
    spec: Any,
    value: Any,
    dayfirst: bool = True,
    decimal_comma: bool | None = None,
    strict: bool = False,
) -> Any:
    """A value brought to a schema field's type: the one coercion every reader uses.

    Dates become ISO 8601 strings, amounts plain numbers (integers for ``integer`` fields),
    yes/no words (EN/DE/FR/ES) booleans, enum spellings the enum's own; blanks become None.

    Args:
        spec: The field (:class:`docvlm.schema.FieldSpec`: ``type``, ``is_date``,
            ``is_number``, ``enum``).
        value: Text read from a page, or a model's JSON value.
        dayfirst: Read ``03/04/2024`` as 3 April (the document's convention).
        decimal_comma: Whether ``1.234,56`` style is in use (None: guess per value).
        strict: True returns None for a value that does not fit the type (a reader
            filtering candidates); False returns it unchanged, so a validator reports it.
    """
    if value is None:
        return None
    text = value.strip() if isinstance(value, str) else None
    if text is not None and text.lower() in _BLANKS:
        return None
    misfit = None if strict else (text if text is not None else value)
    if spec.is_date:
        if text is None:
            return misfit
        return parse_date(text, dayfirst) or misfit
    if spec.is_number:
        number: Any = value
        if text is not None:
            number = parse_amount(text, decimal_comma)
        if isinstance(number, (int, float)) and not isinstance(number, bool):
            if spec.type == "integer":
                return int(number) if float(number).is_integer() else misfit
            return float(number)
        return misfit
    if spec.type == "boolean":
        if isinstance(value, bool):
            return value
        word = fold(text or "")
        if word in _TRUE_WORDS:
            return True
        if word in _FALSE_WORDS:
            return False
        return misfit
    if spec.enum:
        word = fold(text if text is not None else str(value))
        for option in spec.enum:
            if fold(str(option)) == word:
                return option
        if strict:
            for option in spec.enum:
                if f" {fold(str(option))} " in f" {word} ":
                    return option
        return misfit
    if spec.type == "string" and text is None:
        return value if isinstance(value, (dict, list, bool)) or strict else str(value)
    return text if text is not None else value
