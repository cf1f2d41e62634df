"""Typed normalisation: dates to ISO 8601, amounts under both separator conventions,
currency symbols to ISO codes."""

from __future__ import annotations

import pytest

from docvlm.normalize import (
    compact,
    find_currency,
    find_dates,
    fold,
    parse_amount,
    parse_date,
)


@pytest.mark.parametrize(
    ("text", "iso"),
    [
        ("15/01/2019", "2019-01-15"),
        ("03 JUN 18", "2018-06-03"),
        ("03 MAR 18", "2018-03-03"),
        ("20.03.2023", "2023-03-20"),
        ("3. März 2024", "2024-03-03"),
        ("17. März 2024", "2024-03-17"),
        ("August 3, 2014", "2014-08-03"),
        ("September 2, 2014", "2014-09-02"),
        ("5 janvier 2023", "2023-01-05"),
        ("4 février 2023", "2023-02-04"),
        ("12 Feb 2024", "2024-02-12"),
        ("2023-03-20", "2023-03-20"),
        ("20230320", "2023-03-20"),
        ("Date: 07/14/2022", "2022-07-14"),  # the 14 settles month-first
        ("Datum: 01.02.2023", "2023-02-01"),
        ("Le 30/03/2018 a 12:36", "2018-03-30"),
        ("Feb13/20", "2020-02-13"),  # a month name, then day/year
        ("Dec 31/2019", "2019-12-31"),
    ],
)
def test_dates_to_iso(text: str, iso: str) -> None:
    assert parse_date(text) == iso


def test_ambiguous_us_dates_follow_the_document_convention() -> None:
    assert parse_date("03/04/2019", dayfirst=True) == "2019-04-03"
    assert parse_date("03/04/2019", dayfirst=False) == "2019-03-04"
    # a part above 12 settles it whatever the convention
    assert parse_date("13/04/2019", dayfirst=False) == "2019-04-13"
    assert parse_date("04/13/2019", dayfirst=True) == "2019-04-13"
    # dotted dates are day-first everywhere
    assert parse_date("03.04.19", dayfirst=False) == "2019-04-03"


@pytest.mark.parametrize(
    ("text", "iso"),
    [
        ("29/12/201711:41", "2017-12-29"),  # receipt printers glue the time to the year
        ("Date :16-03-201812:07:10", "2018-03-16"),
        ("[Sales]2018-01-0522:55:25", "2018-01-05"),
        ("09/05/20181:12:43 PM", "2018-05-09"),
    ],
)
def test_dates_glued_to_a_time(text: str, iso: str) -> None:
    assert parse_date(text) == iso


@pytest.mark.parametrize(
    "text", ["Tel.:05.22.95.66.66", "03-6258 7191", "HA06HD01-3 - 70", "Invoice 31/81/2012"]
)
def test_phone_numbers_and_codes_are_not_dates(text: str) -> None:
    assert find_dates(text) == []


def test_no_date() -> None:
    assert parse_date("") is None
    assert parse_date("Total 12.50") is None


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("1.234,56", 1234.56),
        ("1,234.56", 1234.56),
        ("1 234,56", 1234.56),
        ("2 442,72 €", 2442.72),
        ("1.390,99 €", 1390.99),
        ("$1,663.49", 1663.49),
        ("€4,893.31", 4893.31),
        ("£3,761.88", 3761.88),
        ("S$35.55", 35.55),
        ("RM8.60", 8.6),  # currency glued to the number
        ("TOTAL RM 12.00", 12.0),
        ("26,30 €", 26.3),
        ("12.50EUR", 12.5),
        ("-RM 0.01", -0.01),
        ("(0.02)", -0.02),
        ("22-60", 22.6),  # a decimal point read as a dash
        ("42", 42.0),
    ],
)
def test_amounts(text: str, value: float) -> None:
    assert parse_amount(text) == pytest.approx(value)


def test_amount_thousands_ambiguity_follows_the_document() -> None:
    assert parse_amount("1,234") == 1234.0
    assert parse_amount("1,234", decimal_comma=True) == pytest.approx(1.234)
    assert parse_amount("1.234", decimal_comma=True) == 1234.0
    assert parse_amount("3,5", decimal_comma=True) == pytest.approx(3.5)


def test_no_amount() -> None:
    assert parse_amount("") is None
    assert parse_amount("no number here") is None


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("1.390,99 €", "EUR"),
        ("$1,663.49", "USD"),
        ("£3,761.88", "GBP"),
        ("Total incl. GST S$35.55", "SGD"),
        ("TOTAL RM 49.50", "MYR"),
        ("Total (USD)", "USD"),
        ("¥1200", "JPY"),
        ("CHF 12.00", "CHF"),
    ],
)
def test_currency_symbols_to_codes(text: str, code: str) -> None:
    assert find_currency(text) == code


def test_no_currency() -> None:
    assert find_currency("FORMULA 12") is None
    assert find_currency("") is None


def test_fold_and_compact() -> None:
    assert fold("Fällig am:") == "fallig am"
    assert fold("N° de facture") == "n de facture"
    assert compact("KOPI & KAYA House, Pte. Ltd.") == "kopikayahousepteltd"


def _context(*texts: str):
    from docvlm.datamodel import Line, Page, Word
    from docvlm.read.rules.context import DocContext

    lines = []
    for i, text in enumerate(texts):
        box = (10.0, 20.0 * i + 10, 200.0, 20.0 * i + 24)
        lines.append(Line(text=text, bbox=box, words=[Word(text=text, bbox=box)], page=1))
    return DocContext.build([Page(number=1, width=300, height=400, dpi=72.0, lines=lines)])


@pytest.mark.parametrize(
    ("texts", "dayfirst"),
    [
        (("Benihana", "Seattle, WA 98101", "09/03/2010", "Total 12.95"), False),
        (("Menchie's", "RANCHO CUCAMONGA, CA 91739-1234", "11/05/2016"), False),
        (("Benihana", "09/03/2010", "Total 12.95"), True),  # no sign of where it is from
        (("SHOP SDN BHD", "81100 JOHOR BAHRU", "09/03/2010", "RM 12.95"), True),
        # an unambiguous day-first date outweighs the address
        (("Seattle, WA 98101", "25/03/2010", "09/03/2010"), True),
        # so does a decimal comma (a European receipt that prints a US-looking code)
        (("Calle Mayor 7", "DE 12345", "09/03/2010", "Total 16,70", "IVA 4,20"), True),
        # a North American phone number says where it is from as an address does
        (("meijer", "Sawmill Rd.", "(614) 766 4494", "07/11/12"), False),
        (("Oyaji", "(415) 379-3604", "8/9/2008", "Total 86.26"), False),
        (("Golden Chopsticks", "Tel:020-6207040", "12-07-10"), True),  # not that format
        # written without brackets: only with digits a North American number can have
        (("Asia Bay", "305 861-2222", "Date 12/09/12"), False),
        (("PYT", "ph 215-964-9009", "9/8/2014 3:13:08 PM"), False),
        (("The Round Tower", "TELEPHONE 046 924 0144", "05/11/13"), True),  # Irish
        (("Waitrose", "Dubai Mall : 04-4340700", "10/01/14"), True),
        # a multi-buy price ("15/10.00") is no day-first date
        (("meijer", "(614) 766 4494", "07/11/12", "15/10.00"), False),
    ],
)
def test_a_us_postal_address_makes_ambiguous_dates_month_first(texts, dayfirst) -> None:
    assert _context(*texts).dayfirst is dayfirst


@pytest.mark.parametrize(
    ("text", "contact"),
    [
        ("Té1 : 04 72 41 00 00", True),  # a label the OCR misread, then a phone number
        ("Puh: 09 123 4567", True),
        ("Tel: 03-1234 5678", True),
        ("Datum: 12.03.2024", False),
        ("Invoice No: 2024-0093", False),
        ("Rechnung Nr.: 12345", False),
        ("12 rue Mercière", False),
        ("Lot 12, Jalan 3/4", False),
    ],
)
def test_a_labelled_phone_number_is_a_contact_line(text, contact) -> None:
    from docvlm.read.rules.parties import is_contact

    assert is_contact(text) is contact


def test_ascii_fast_paths_equal_the_patterns():
    """fold() and compact() take an ASCII text through translation tables: the same as the
    general path's patterns, for every ASCII character (control ones included)."""
    import random
    import string

    from docvlm.normalize import _NOT_ALNUM, _NOT_WORD, compact, fold

    rng = random.Random(7)
    chars = string.printable + "".join(map(chr, range(32))) + "\x7f"
    for _ in range(5000):
        text = "".join(rng.choice(chars) for _ in range(rng.randint(0, 24)))
        assert fold(text) == " ".join(_NOT_WORD.sub(" ", text.lower()).split()), repr(text)
        assert compact(text) == _NOT_ALNUM.sub("", text.lower()), repr(text)


def test_date_prechecks_skip_only_texts_without_dates(monkeypatch):
    """The shortcuts (fewer than three digits; no digit joined to a letter) leave every date
    the patterns themselves find: the same texts read with the shortcuts turned off."""
    import random
    import re

    from docvlm import normalize

    rng = random.Random(3)
    names = ["Jan", "MARCH", "Sept", "März", "janvier", "diciembre", "Oct"]
    seps = ["", " ", ".", ". ", "-", "/", ", ", "'", "th ", "st. "]
    texts = ["12", "Tel 12", "1 x 2", "Total 3", "No. 12/3", "12/3/2024 Jan", "Datum: 3.4.24"]
    for _ in range(3000):
        day, name, year = str(rng.randint(0, 35)), rng.choice(names), rng.choice(["24", "2024"])
        a, b = rng.choice(seps), rng.choice(seps)
        date = f"{day}{a}{name}{b}{year}" if rng.random() < 0.5 else f"{name}{a}{day}{b}{year}"
        texts.append(rng.choice(["", "Date: ", "x "]) + date + rng.choice(["", " 12:30", " #7"]))
    got = {(t, df): normalize._scan_dates(t, df) for t in texts for df in (True, False)}
    monkeypatch.setattr(normalize, "_decimal_digits", lambda text: 99)
    monkeypatch.setattr(normalize, "_DIGIT_TO_LETTER", re.compile(""))
    monkeypatch.setattr(normalize, "_LETTER_TO_DIGIT", re.compile(""))
    want = {(t, df): normalize._scan_dates(t, df) for t in texts for df in (True, False)}
    assert got == want
    assert sum(map(bool, want.values())) > 2000  # most of them hold a date
