#!/usr/bin/env python3
"""Generate the docvlm sample documents and their ground truth.

    python sample_docs/make_samples.py

Everything is deterministic: document contents are hand-written (the long
multi-page invoice draws its quantities from a seeded RNG), scan degradations
use a NumPy RNG seeded from the file stem, and PDF metadata dates and IDs are
fixed, so re-running the script reproduces byte-identical files.

Output (relative to this file's folder):
    invoices/                 born-digital invoice PDFs + scanned-looking copies
    receipts/                 born-digital till-slip PDFs + scanned-looking copies
    groundtruth/invoice/<stem>.json
    groundtruth/receipt/<stem>.json
"""
from __future__ import annotations

import datetime as dt
import io
import json
import random
import sys
import zlib
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import numpy as np
import pymupdf
from PIL import Image, ImageFilter, ImageOps

HERE = Path(__file__).resolve().parent
INV_DIR = HERE / "invoices"
RCPT_DIR = HERE / "receipts"
GT_INV = HERE / "groundtruth" / "invoice"
GT_RCPT = HERE / "groundtruth" / "receipt"

SCAN_DPI = 150
JPEG_QUALITY = 80
NOISE_SIGMA = 6.0
BLUR_RADIUS = 0.6

A4 = (595.28, 841.89)
LETTER = (612.0, 792.0)
RECEIPT_WIDTH = 80 / 25.4 * 72  # 80 mm till slip

BLACK = (0, 0, 0)
GREY = (0.42, 0.42, 0.42)
LIGHT = (0.90, 0.90, 0.90)
WHITE = (1, 1, 1)

# Built-in MuPDF fonts (Nimbus clones of the Base-14 fonts), embedded as
# Unicode fonts so that €, œ, – etc. render and extract correctly.
FONTS = {name: pymupdf.Font(name) for name in ("helv", "hebo", "tiro", "tibo", "cour", "cobo")}
FONT_RES = {name: "F" + name.capitalize() for name in FONTS}


# --------------------------------------------------------------------------
# numbers, money and dates
# --------------------------------------------------------------------------
def D(x) -> Decimal:
    return Decimal(str(x))


def cents(x: Decimal) -> Decimal:
    return x.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


def num(x: Decimal, style: str = "en", places: int = 2) -> str:
    """1234.5 -> '1,234.50' (en), '1.234,50' (de), '1 234,50' (fr)."""
    s = f"{x:,.{places}f}"
    seps = {"en": (",", "."), "de": (".", ","), "fr": (" ", ",")}[style]
    return s.replace(",", "\0").replace(".", seps[1]).replace("\0", seps[0])


def qty(x: Decimal, style: str = "en") -> str:
    if x == x.to_integral_value():
        return str(int(x))
    s = format(x.normalize(), "f")
    return s.replace(".", ",") if style in ("de", "fr") else s


def jnum(x: Decimal, integral_ok: bool = False):
    """Decimal -> JSON number (float for money, int for whole quantities)."""
    if integral_ok and x == x.to_integral_value():
        return int(x)
    return float(x)


MONTHS_EN = ["January", "February", "March", "April", "May", "June", "July",
             "August", "September", "October", "November", "December"]
MONTHS_DE = ["Januar", "Februar", "März", "April", "Mai", "Juni", "Juli",
             "August", "September", "Oktober", "November", "Dezember"]
MONTHS_FR = ["janvier", "février", "mars", "avril", "mai", "juin", "juillet",
             "août", "septembre", "octobre", "novembre", "décembre"]


def d_us_long(d): return f"{MONTHS_EN[d.month - 1]} {d.day}, {d.year}"      # August 3, 2014
def d_dmy(d, sep="/"): return f"{d.day:02d}{sep}{d.month:02d}{sep}{d.year}"  # 15/01/2019
def d_de_long(d): return f"{d.day}. {MONTHS_DE[d.month - 1]} {d.year}"       # 3. März 2024
def d_fr_long(d): return f"{d.day} {MONTHS_FR[d.month - 1]} {d.year}"        # 5 janvier 2023
def d_en_short(d): return f"{d.day:02d} {MONTHS_EN[d.month - 1][:3]} {d.year}"  # 12 Feb 2024


def pdf_date(d: dt.date, hh: int = 9) -> str:
    return f"D:{d.year:04d}{d.month:02d}{d.day:02d}{hh:02d}0000Z"


# --------------------------------------------------------------------------
# drawing helpers
# --------------------------------------------------------------------------
class LayoutError(RuntimeError):
    pass


class Canvas:
    """Thin wrapper over a PyMuPDF page: baseline-positioned text with
    alignment and overflow checks, lines and boxes."""

    def __init__(self, doc: pymupdf.Document, size, fonts=("helv", "hebo")):
        self.w, self.h = size
        self.page = doc.new_page(width=self.w, height=self.h)
        for f in fonts:
            self.page.insert_font(fontname=FONT_RES[f], fontbuffer=FONTS[f].buffer)
        self.fonts = set(fonts)

    def width(self, s, font="helv", size=9.0):
        return FONTS[font].text_length(s, fontsize=size)

    def text(self, x, y, s, font="helv", size=9.0, align="l", color=BLACK, maxw=None):
        if font not in self.fonts:
            raise LayoutError(f"font {font} not loaded on page")
        w = self.width(s, font, size)
        if maxw is not None and w > maxw + 0.01:
            raise LayoutError(f"text too wide ({w:.1f} > {maxw:.1f}): {s!r}")
        if align == "r":
            x -= w
        elif align == "c":
            x -= w / 2
        if x < 10 or x + w > self.w - 10 or y > self.h - 8 or y < size:
            raise LayoutError(f"text outside page: {s!r} at ({x:.0f},{y:.0f})")
        self.page.insert_text((x, y), s, fontname=FONT_RES[font], fontsize=size, color=color)
        return w

    def lines(self, x, y, rows, font="helv", size=9.0, lead=None, align="l", color=BLACK):
        lead = lead or size * 1.35
        for i, s in enumerate(rows):
            self.text(x, y + i * lead, s, font, size, align, color)
        return y + len(rows) * lead

    def hline(self, x0, x1, y, width=0.5, color=BLACK):
        self.page.draw_line((x0, y), (x1, y), color=color, width=width)

    def vline(self, x, y0, y1, width=0.5, color=BLACK):
        self.page.draw_line((x, y0), (x, y1), color=color, width=width)

    def box(self, x0, y0, x1, y1, fill=None, color=None, width=0.6):
        self.page.draw_rect(pymupdf.Rect(x0, y0, x1, y1), color=color, fill=fill,
                            width=width if color else 0)


def new_doc():
    return pymupdf.open()


def save_pdf(doc, path: Path, title: str, author: str, date: dt.date):
    doc.subset_fonts()
    doc.set_metadata({
        "title": title,
        "author": author,
        "subject": "",
        "keywords": "",
        "creator": "docvlm sample_docs/make_samples.py",
        "producer": "PyMuPDF",
        "creationDate": pdf_date(date),
        "modDate": pdf_date(date),
    })
    data = doc.tobytes(garbage=4, deflate=True, no_new_id=True)
    path.write_bytes(data)
    return data


# --------------------------------------------------------------------------
# invoice data model
# --------------------------------------------------------------------------
def build_items(rows):
    items = []
    for desc, q, unit in rows:
        q, unit = D(q), D(unit)
        items.append({"description": desc, "quantity": q, "unit_price": unit,
                      "amount": cents(q * unit)})
    return items


def invoice_record(inv):
    items = inv["items"]
    sub = sum((it["amount"] for it in items), Decimal("0"))
    tax = cents(sub * inv["tax_rate"])
    inv["subtotal"], inv["tax"], inv["total"] = sub, tax, sub + tax
    return {
        "invoice_number": inv["number"],
        "issue_date": inv["issue"].isoformat(),
        "due_date": inv["due"].isoformat(),
        "seller": {"name": inv["seller"][0], "address": ", ".join(inv["seller"][1:])},
        "buyer": {"name": inv["buyer"][0], "address": ", ".join(inv["buyer"][1:])},
        "currency": inv["currency"],
        "subtotal": jnum(sub),
        "tax": jnum(tax),
        "total": jnum(sub + tax),
        "line_items": [
            {"description": it["description"], "quantity": jnum(it["quantity"], True),
             "unit_price": jnum(it["unit_price"]), "amount": jnum(it["amount"])}
            for it in items
        ],
    }


# --------------------------------------------------------------------------
# 1. inv_en_us_01 -- US letter, seller top-left, "Bill To", USD
# --------------------------------------------------------------------------
INV_EN_US = {
    "stem": "inv_en_us_01",
    "number": "INV-2014-0042",
    "issue": dt.date(2014, 8, 3),
    "due": dt.date(2014, 9, 2),
    "currency": "USD",
    "tax_rate": D("0.0825"),
    "seller": ["Brightline Office Supply Co.", "1450 Harbor Blvd, Suite 210", "Oakland, CA 94607"],
    "buyer": ["Cedar Ridge Dental Group", "88 Maple Avenue", "Portland, OR 97205"],
    "items": build_items([
        ("Laser printer paper, letter size, 10-ream case", 12, "42.50"),
        ("Toner cartridge HP 58A, black", 4, "89.99"),
        ("Ergonomic mesh office chair", 2, "249.00"),
        ("Desk organizer set, walnut", 5, "18.75"),
        ("Delivery and assembly", 1, "75.00"),
    ]),
}


def draw_inv_en_us(inv):
    money = lambda x: "$" + num(x, "en")
    doc = new_doc()
    c = Canvas(doc, LETTER)
    L, R = 50, 562
    navy = (0.12, 0.2, 0.4)
    # seller header (top-left)
    c.text(L, 62, inv["seller"][0], "hebo", 16, color=navy)
    y = c.lines(L, 80, inv["seller"][1:], size=9.5)
    c.lines(L, y, ["Phone: (510) 555-0172", "billing@brightline-supply.com"], size=9, color=GREY)
    # title + meta (top-right)
    c.text(R, 66, "INVOICE", "hebo", 26, align="r", color=navy)
    meta = [("Invoice No.", inv["number"]), ("Invoice Date", d_us_long(inv["issue"])),
            ("Due Date", d_us_long(inv["due"])), ("P.O. Number", "PO-77812")]
    for i, (k, v) in enumerate(meta):
        yy = 96 + i * 15
        c.text(380, yy, k, "hebo", 9)
        c.text(R, yy, v, "helv", 9, align="r")
    c.hline(L, R, 162, 1.0, navy)
    # Bill To
    c.text(L, 184, "Bill To", "hebo", 10, color=navy)
    c.text(L, 200, inv["buyer"][0], "hebo", 10)
    c.lines(L, 214, inv["buyer"][1:], size=9.5)
    c.text(380, 184, "Terms", "hebo", 9)
    c.text(R, 184, "Net 30", align="r")
    c.text(380, 199, "Sales Rep", "hebo", 9)
    c.text(R, 199, "J. Alvarez", align="r")
    # table
    top = 262
    cols = {"desc": L + 6, "qty": 372, "unit": 462, "amt": R - 6}
    c.box(L, top, R, top + 20, fill=navy)
    for key, label, al in (("desc", "Description", "l"), ("qty", "Qty", "r"),
                           ("unit", "Unit Price", "r"), ("amt", "Amount", "r")):
        c.text(cols[key], top + 14, label, "hebo", 9.5, align=al, color=WHITE)
    y = top + 20
    for i, it in enumerate(inv["items"]):
        if i % 2:
            c.box(L, y, R, y + 20, fill=(0.95, 0.96, 0.98))
        c.text(cols["desc"], y + 14, it["description"], maxw=cols["qty"] - cols["desc"] - 40)
        c.text(cols["qty"], y + 14, qty(it["quantity"]), align="r")
        c.text(cols["unit"], y + 14, num(it["unit_price"]), align="r")
        c.text(cols["amt"], y + 14, num(it["amount"]), align="r")
        y += 20
    c.hline(L, R, y, 0.8, navy)
    # totals
    y += 22
    rows = [("Subtotal", money(inv["subtotal"]), "helv"),
            ("Tax (8.25%)", money(inv["tax"]), "helv")]
    for k, v, f in rows:
        c.text(400, y, k, "hebo", 9.5)
        c.text(cols["amt"], y, v, f, 9.5, align="r")
        y += 17
    c.hline(395, R, y - 9, 0.8, navy)
    y += 6
    c.text(400, y, "Total (USD)", "hebo", 11)
    c.text(cols["amt"], y, money(inv["total"]), "hebo", 11, align="r")
    # notes / footer
    c.text(L, 640, "Notes", "hebo", 9.5, color=navy)
    c.lines(L, 655, [
        "Please make checks payable to Brightline Office Supply Co. or pay by ACH",
        "(routing 121000358, account 4471 0925 13). Payment due within 30 days.",
    ], size=9)
    c.text(306, 712, "Thank you for your business!", "hebo", 11, align="c", color=navy)
    c.hline(L, R, 742, 0.5, GREY)
    c.text(306, 756, "Brightline Office Supply Co.  ·  www.brightline-supply.com  ·  (510) 555-0172",
           size=8, align="c", color=GREY)
    must = [inv["number"], d_us_long(inv["issue"]), d_us_long(inv["due"]), money(inv["total"]),
            money(inv["subtotal"]), money(inv["tax"])]
    return doc, must


# --------------------------------------------------------------------------
# 2. inv_en_gb_01 -- UK A4, seller top-right, key/values in a box, GBP
# --------------------------------------------------------------------------
INV_EN_GB = {
    "stem": "inv_en_gb_01",
    "number": "TH-2019-0311",
    "issue": dt.date(2019, 1, 15),
    "due": dt.date(2019, 2, 14),
    "currency": "GBP",
    "tax_rate": D("0.20"),
    "seller": ["Thornbury & Hale Ltd", "Unit 4 Riverside Court", "Hunslet Road", "Leeds LS10 1AB"],
    "buyer": ["Kestrel Events Ltd", "27 Greek Street", "London W1D 5DF"],
    "items": build_items([
        ("Venue styling – January gala dinner", 1, "1850.00"),
        ("Stage lighting hire (per day)", 2, "420.00"),
        ("Sound engineer (hours)", "7.5", "45.00"),
        ("Printed table plans, A3 foam board", 12, "8.95"),
    ]),
}


def draw_inv_en_gb(inv):
    money = lambda x: "£" + num(x, "en")
    teal = (0.0, 0.42, 0.45)
    doc = new_doc()
    c = Canvas(doc, A4)
    L, R = 50, 545
    c.text(L, 84, "INVOICE", "hebo", 30, color=teal)
    # seller, right-aligned at top
    c.text(R, 62, inv["seller"][0], "hebo", 12, align="r")
    y = c.lines(R, 77, inv["seller"][1:], size=9, align="r")
    c.lines(R, y, ["VAT Reg. No. GB 284 5519 07", "accounts@thornburyhale.co.uk"],
            size=8.5, align="r", color=GREY)
    # Invoice to
    c.text(L, 160, "Invoice to", "helv", 9, color=GREY)
    c.text(L, 176, inv["buyer"][0], "hebo", 11)
    c.lines(L, 190, inv["buyer"][1:], size=9.5)
    # right-hand box: values below labels
    bx0, bx1, by0 = 335, R, 148
    c.box(bx0, by0, bx1, by0 + 124, fill=(0.93, 0.97, 0.97), color=teal, width=0.8)
    mid = (bx0 + bx1) / 2
    c.vline(mid, by0, by0 + 44, 0.5, teal)
    c.hline(bx0, bx1, by0 + 44, 0.5, teal)
    c.hline(bx0, bx1, by0 + 68, 0.5, teal)
    c.text(bx0 + 8, by0 + 15, "Invoice #", size=8.5, color=GREY)
    c.text(bx0 + 8, by0 + 33, inv["number"], "hebo", 11)
    c.text(mid + 8, by0 + 15, "Date", size=8.5, color=GREY)
    c.text(mid + 8, by0 + 33, d_dmy(inv["issue"]), "hebo", 11)
    c.text(bx0 + 8, by0 + 60, "Payment due", size=8.5, color=GREY)
    c.text(bx1 - 8, by0 + 60, d_dmy(inv["due"]), "hebo", 10, align="r")
    c.text(bx0 + 8, by0 + 84, "Amount due", size=8.5, color=GREY)
    c.text(bx0 + 8, by0 + 110, money(inv["total"]), "hebo", 18, color=teal)
    # table
    top = 310
    cx = {"desc": L, "qty": 350, "unit": 445, "amt": R}
    for key, label, al in (("desc", "Description", "l"), ("qty", "Qty", "r"),
                           ("unit", "Unit price", "r"), ("amt", "Total", "r")):
        c.text(cx[key], top, label, "hebo", 9.5, align=al, color=teal)
    c.hline(L, R, top + 7, 1.5, teal)
    y = top + 7
    for it in inv["items"]:
        y += 24
        c.text(cx["desc"], y - 8, it["description"], size=9.5, maxw=cx["qty"] - L - 40)
        c.text(cx["qty"], y - 8, qty(it["quantity"]), size=9.5, align="r")
        c.text(cx["unit"], y - 8, money(it["unit_price"]), size=9.5, align="r")
        c.text(cx["amt"], y - 8, money(it["amount"]), size=9.5, align="r")
        c.hline(L, R, y, 0.4, LIGHT)
    y += 24
    for k, v in (("Net", inv["subtotal"]), ("VAT 20%", inv["tax"])):
        c.text(380, y, k, size=10)
        c.text(R, y, money(v), size=10, align="r")
        y += 18
    c.hline(375, R, y - 10, 1.0, teal)
    y += 8
    c.text(380, y, "Amount due", "hebo", 12, color=teal)
    c.text(R, y, money(inv["total"]), "hebo", 12, align="r", color=teal)
    # payment details
    c.text(L, 650, "Payment details", "hebo", 10, color=teal)
    c.lines(L, 666, [
        "Bank transfer to Thornbury & Hale Ltd, Sort code 40-11-62, Account no. 71239945",
        f"Please quote {inv['number']} as your payment reference. Terms: 30 days from invoice date.",
    ], size=9)
    c.hline(L, R, 785, 0.5, GREY)
    c.text(297.6, 798, "Thornbury & Hale Ltd · Registered in England and Wales No. 08123456 · "
           "Registered office as above", size=7.5, align="c", color=GREY)
    must = [inv["number"], d_dmy(inv["issue"]), d_dmy(inv["due"]), money(inv["total"]),
            money(inv["subtotal"]), money(inv["tax"])]
    return doc, must


# --------------------------------------------------------------------------
# 3. inv_de_01 -- German DIN-5008-ish letter, info block right, EUR
# --------------------------------------------------------------------------
INV_DE_1 = {
    "stem": "inv_de_01",
    "number": "RE-2023-0117",
    "issue": dt.date(2023, 3, 20),
    "due": dt.date(2023, 4, 19),
    "currency": "EUR",
    "tax_rate": D("0.19"),
    "seller": ["Müller & Söhne Präzisionstechnik GmbH", "Industriestraße 12", "70565 Stuttgart"],
    "buyer": ["Schäfer Verpackungstechnik KG", "Lindenallee 3", "80331 München"],
    "items": build_items([
        ("Kugellager 6204-2RS, 20 × 47 × 14 mm", 40, "3.85"),
        ("Wellendichtring 25 × 40 × 7 NBR", 40, "1.20"),
        ("Zahnriemen HTD 5M-450-15", 6, "24.90"),
        ("Linearführung 500 mm inkl. Führungswagen", 3, "189.00"),
        ("Montagearbeiten vor Ort (Stunden)", "3.5", "68.00"),
        ("Versandkostenpauschale", 1, "12.50"),
    ]),
}


def draw_inv_de_1(inv):
    money = lambda x: num(x, "de") + " €"
    red = (0.6, 0.08, 0.1)
    doc = new_doc()
    c = Canvas(doc, A4)
    L, R = 57, 540
    s = inv["seller"]
    c.text(R, 58, s[0], "hebo", 13, align="r", color=red)
    c.lines(R, 74, s[1:] + ["Tel. +49 711 987654-0", "info@mueller-soehne.de"], size=8.5,
            align="r", color=GREY)
    # window envelope: sender line + recipient
    sender = " · ".join(s)
    c.text(L, 140, sender, size=6.5, color=GREY)
    c.hline(L, L + c.width(sender, "helv", 6.5), 142, 0.3, GREY)
    c.text(L, 162, inv["buyer"][0], size=10)
    c.lines(L, 176, inv["buyer"][1:], size=10, lead=14)
    # info block
    info = [("Rechnungsnummer:", inv["number"]), ("Rechnungsdatum:", d_dmy(inv["issue"], ".")),
            ("Kundennummer:", "K-10482"), ("Lieferdatum:", d_dmy(dt.date(2023, 3, 17), ".")),
            ("Fällig am:", d_dmy(inv["due"], "."))]
    for i, (k, v) in enumerate(info):
        c.text(360, 162 + i * 14, k, size=9)
        c.text(R, 162 + i * 14, v, "hebo" if i == 0 else "helv", 9, align="r")
    c.text(L, 268, "Rechnung", "hebo", 16)
    c.lines(L, 292, ["Sehr geehrte Damen und Herren,",
                     "für die gelieferten Artikel und erbrachten Leistungen berechnen wir Ihnen:"],
            size=9.5)
    # table
    top = 330
    cx = {"pos": L + 2, "desc": L + 34, "qty": 350, "unit": 440, "amt": R - 3}
    c.box(L, top - 13, R, top + 6, fill=LIGHT)
    for key, label, al in (("pos", "Pos.", "l"), ("desc", "Beschreibung", "l"),
                           ("qty", "Menge", "r"), ("unit", "Einzelpreis", "r"),
                           ("amt", "Betrag", "r")):
        c.text(cx[key], top, label, "hebo", 9, align=al)
    y = top + 6
    for i, it in enumerate(inv["items"], 1):
        y += 19
        c.text(cx["pos"], y - 6, str(i), size=9)
        c.text(cx["desc"], y - 6, it["description"], size=9, maxw=cx["qty"] - cx["desc"] - 35)
        c.text(cx["qty"], y - 6, qty(it["quantity"], "de"), size=9, align="r")
        c.text(cx["unit"], y - 6, money(it["unit_price"]), size=9, align="r")
        c.text(cx["amt"], y - 6, money(it["amount"]), size=9, align="r")
        c.hline(L, R, y, 0.3, GREY)
    y += 22
    for k, v in (("Zwischensumme", inv["subtotal"]), ("MwSt. 19 %", inv["tax"])):
        c.text(360, y, k, size=9.5)
        c.text(cx["amt"], y, money(v), size=9.5, align="r")
        y += 16
    c.hline(355, R, y - 10, 0.8)
    y += 5
    c.text(360, y, "Gesamtbetrag", "hebo", 10.5)
    c.text(cx["amt"], y, money(inv["total"]), "hebo", 10.5, align="r")
    c.hline(355, R, y + 5, 0.8)
    c.hline(355, R, y + 7, 0.8)
    c.lines(L, y + 45, [
        f"Bitte überweisen Sie den Gesamtbetrag bis zum {d_dmy(inv['due'], '.')} ohne Abzug "
        "auf das unten genannte Konto.",
        "Lieferdatum entspricht dem Leistungsdatum. Vielen Dank für Ihren Auftrag!",
        "",
        "Mit freundlichen Grüßen",
        "Müller & Söhne Präzisionstechnik GmbH",
    ], size=9.5)
    # three-column footer
    c.hline(L, R, 762, 0.5, GREY)
    cols = [s,
            ["Kreissparkasse Esslingen", "IBAN DE12 6115 0020 0101 2345 67", "BIC ESSLDE66XXX"],
            ["Geschäftsführer: Klaus Müller", "Amtsgericht Stuttgart HRB 723456",
             "USt-IdNr.: DE 812 345 678"]]
    for i, col in enumerate(cols):
        c.lines(L + i * 165, 776, col, size=7, color=GREY)
    must = [inv["number"], d_dmy(inv["issue"], "."), d_dmy(inv["due"], "."),
            money(inv["total"]), money(inv["subtotal"]), money(inv["tax"])]
    return doc, must


# --------------------------------------------------------------------------
# 4. inv_de_02 -- German, serif, long dates, meta in right column, footer line
# --------------------------------------------------------------------------
INV_DE_2 = {
    "stem": "inv_de_02",
    "number": "RG-2024-0093",
    "issue": dt.date(2024, 3, 3),
    "due": dt.date(2024, 3, 17),
    "currency": "EUR",
    "tax_rate": D("0.07"),
    "seller": ["Grünwald Gartenbau & Floristik e.K.", "Am Mühlbach 7", "83022 Rosenheim"],
    "buyer": ["Hotel Alpenblick GmbH", "Seestraße 41", "83209 Prien am Chiemsee"],
    "items": build_items([
        ("Olivenbaum im Kübel, ca. 180 cm", 2, "289.00"),
        ("Buchsbaumkugel Ø 40 cm", 8, "34.50"),
        ("Tischgesteck Frühling, Tulpen und Ranunkeln", 12, "18.90"),
        ("Hornveilchen, Topf 9 cm", 60, "1.45"),
    ]),
    "units": ["Stk.", "Stk.", "Stk.", "Stk."],
    "codes": ["P-1042", "P-2210", "B-0315", "P-0477"],
}


def draw_inv_de_2(inv):
    money = lambda x: num(x, "de") + " €"
    green = (0.15, 0.35, 0.18)
    doc = new_doc()
    c = Canvas(doc, A4, fonts=("tiro", "tibo"))
    L, R = 55, 540
    mid = 297.6
    s = inv["seller"]
    c.text(mid, 68, s[0], "tibo", 20, align="c", color=green)
    c.text(mid, 86, "Garten- und Landschaftsbau · Raumbegrünung · Floristik", "tiro", 10,
           align="c", color=green)
    c.hline(L, R, 96, 1.2, green)
    c.hline(L, R, 99, 0.4, green)
    # buyer (left)
    c.text(L, 138, f"{s[0]}, {s[1]}, {s[2]}", "tiro", 7, color=GREY)
    c.text(L, 160, inv["buyer"][0], "tiro", 11)
    c.lines(L, 175, inv["buyer"][1:], "tiro", 11, lead=15)
    # meta right column
    meta = [("Rechnung Nr.", inv["number"]), ("Datum", d_de_long(inv["issue"])),
            ("Kunden-Nr.", "4711"), ("Leistungszeitraum", "Februar 2024"),
            ("Zahlbar bis", d_de_long(inv["due"]))]
    for i, (k, v) in enumerate(meta):
        yy = 138 + i * 16
        c.text(370, yy, k + ":", "tiro", 10)
        c.text(R, yy, v, "tibo" if i == 0 else "tiro", 10, align="r")
    c.text(L, 262, "RECHNUNG", "tibo", 15, color=green)
    c.text(L, 282, "Betreff: Pflanzenlieferung und Frühjahrsdekoration Restaurant „Seeterrasse“",
           "tiro", 10.5)
    # table
    top = 318
    cx = {"code": L, "desc": L + 50, "qty": 355, "unit_l": 362, "unit": 462, "amt": R}
    c.hline(L, R, top - 13, 0.8)
    for key, label, al in (("code", "Art.-Nr.", "l"), ("desc", "Bezeichnung", "l"),
                           ("qty", "Anzahl", "r"), ("unit_l", "Einh.", "l"),
                           ("unit", "Preis/Einh.", "r"), ("amt", "Gesamt", "r")):
        c.text(cx[key], top, label, "tibo", 10, align=al)
    c.hline(L, R, top + 5, 0.8)
    y = top + 5
    for it, unit, code in zip(inv["items"], inv["units"], inv["codes"]):
        y += 20
        c.text(cx["code"], y - 6, code, "tiro", 10)
        c.text(cx["desc"], y - 6, it["description"], "tiro", 10, maxw=cx["qty"] - cx["desc"] - 30)
        c.text(cx["qty"], y - 6, qty(it["quantity"], "de"), "tiro", 10, align="r")
        c.text(cx["unit_l"], y - 6, unit, "tiro", 10)
        c.text(cx["unit"], y - 6, money(it["unit_price"]), "tiro", 10, align="r")
        c.text(cx["amt"], y - 6, money(it["amount"]), "tiro", 10, align="r")
    c.hline(L, R, y + 6, 0.8)
    y += 28
    for k, v in (("Summe netto", inv["subtotal"]), ("zzgl. USt. 7 %", inv["tax"])):
        c.text(362, y, k, "tiro", 10.5)
        c.text(R, y, money(v), "tiro", 10.5, align="r")
        y += 17
    y += 4
    c.hline(358, R, y - 13, 0.6)
    c.text(362, y, "Rechnungsbetrag", "tibo", 11.5)
    c.text(R, y, money(inv["total"]), "tibo", 11.5, align="r")
    c.hline(440, R, y + 5, 0.6)
    c.hline(440, R, y + 7.5, 0.6)
    c.lines(L, y + 48, [
        f"Zahlbar ohne Abzug bis zum {d_de_long(inv['due'])}.",
        "Der ermäßigte Steuersatz gilt für die Lieferung von Pflanzen und Blumen (§ 12 Abs. 2 UStG).",
        "Vielen Dank für Ihren Auftrag – wir freuen uns auf die weitere Zusammenarbeit!",
    ], "tiro", 10.5, lead=15)
    # footer line with seller again
    c.hline(L, R, 780, 0.4, green)
    c.text(mid, 793, f"{s[0]} · {s[1]} · {s[2]} · Tel. 08031 4567-0 · info@gruenwald-garten.de",
           "tiro", 8, align="c", color=GREY)
    c.text(mid, 805, "Rosenheimer Volksbank · IBAN DE89 7116 0000 0020 0456 78 · "
           "USt-IdNr. DE281456937 · Inh. Sabine Grünwald", "tiro", 8, align="c", color=GREY)
    must = [inv["number"], d_de_long(inv["issue"]), d_de_long(inv["due"]),
            money(inv["total"]), money(inv["subtotal"]), money(inv["tax"])]
    return doc, must


# --------------------------------------------------------------------------
# 5. inv_fr_01 -- French, client box right, dark table header
# --------------------------------------------------------------------------
INV_FR = {
    "stem": "inv_fr_01",
    "number": "F2023-0087",
    "issue": dt.date(2023, 1, 5),
    "due": dt.date(2023, 2, 4),
    "currency": "EUR",
    "tax_rate": D("0.20"),
    "seller": ["Atelier Lumière SARL", "14 rue des Écoles", "69002 Lyon"],
    "buyer": ["Boulangerie Dupré & Fils", "3 place de la Mairie", "33000 Bordeaux"],
    "items": build_items([
        ("Spot LED encastrable 7 W, blanc chaud", 24, "18.50"),
        ("Rail d'éclairage triphasé 2 m", 4, "64.90"),
        ("Projecteur sur rail 20 W, noir mat", 12, "47.00"),
        ("Câblage et main-d'œuvre (heures)", 14, "42.00"),
        ("Frais de déplacement Lyon – Bordeaux", 1, "180.00"),
    ]),
}


def draw_inv_fr(inv):
    money = lambda x: num(x, "fr") + " €"
    plum = (0.3, 0.15, 0.35)
    doc = new_doc()
    c = Canvas(doc, A4)
    L, R = 50, 545
    s = inv["seller"]
    c.text(L, 66, s[0], "hebo", 16, color=plum)
    y = c.lines(L, 84, s[1:], size=9.5)
    c.lines(L, y, ["Tél. 04 78 12 34 56", "contact@atelier-lumiere.fr"], size=9, color=GREY)
    c.text(R, 70, "FACTURE", "hebo", 24, align="r", color=plum)
    meta = [("Facture N° :", inv["number"]), ("Date de facture :", d_dmy(inv["issue"])),
            ("Date d'échéance :", d_dmy(inv["due"])), ("Réf. client :", "CL-0452")]
    for i, (k, v) in enumerate(meta):
        yy = 96 + i * 14
        c.text(372, yy, k, "hebo" if i == 0 else "helv", 9)
        c.text(R, yy, v, "hebo" if i == 0 else "helv", 9, align="r")
    # client box
    c.box(330, 168, R, 238, fill=(0.96, 0.94, 0.97), color=plum, width=0.6)
    c.text(340, 183, "Client", "hebo", 8.5, color=plum)
    c.text(340, 199, inv["buyer"][0], "hebo", 10.5)
    c.lines(340, 213, inv["buyer"][1:], size=10)
    c.text(L, 270, "Objet : installation d'éclairage LED – magasin de Bordeaux", "hebo", 10)
    # table
    top = 292
    cx = {"desc": L + 8, "qty": 340, "unit": 440, "amt": R - 8}
    c.box(L, top, R, top + 22, fill=plum)
    for key, label, al in (("desc", "Désignation", "l"), ("qty", "Qté", "r"),
                           ("unit", "Prix unitaire", "r"), ("amt", "Montant", "r")):
        c.text(cx[key], top + 15, label, "hebo", 9.5, align=al, color=WHITE)
    y = top + 22
    for it in inv["items"]:
        c.text(cx["desc"], y + 15, it["description"], size=9.5, maxw=cx["qty"] - cx["desc"] - 35)
        c.text(cx["qty"], y + 15, qty(it["quantity"], "fr"), size=9.5, align="r")
        c.text(cx["unit"], y + 15, money(it["unit_price"]), size=9.5, align="r")
        c.text(cx["amt"], y + 15, money(it["amount"]), size=9.5, align="r")
        y += 22
        c.hline(L, R, y, 0.4, (0.75, 0.7, 0.78))
    c.vline(L, top, y, 0.4, (0.75, 0.7, 0.78))
    c.vline(R, top, y, 0.4, (0.75, 0.7, 0.78))
    # totals box
    y += 16
    tx0 = 345
    rows = [("Total HT", inv["subtotal"]), ("TVA 20 %", inv["tax"])]
    for k, v in rows:
        c.text(tx0 + 8, y + 14, k, size=10)
        c.text(cx["amt"], y + 14, money(v), size=10, align="r")
        c.hline(tx0, R, y + 21, 0.4, (0.75, 0.7, 0.78))
        y += 21
    c.box(tx0, y + 2, R, y + 26, fill=plum)
    c.text(tx0 + 8, y + 19, "Total TTC", "hebo", 11, color=WHITE)
    c.text(cx["amt"], y + 19, money(inv["total"]), "hebo", 11, align="r", color=WHITE)
    y += 60
    c.text(L, y, f"Fait à Lyon, le {d_fr_long(inv['issue'])}", size=9.5)
    c.text(L, y + 26, "Conditions de paiement", "hebo", 9.5, color=plum)
    c.lines(L, y + 41, [
        f"Paiement par virement à 30 jours, au plus tard le {d_fr_long(inv['due'])}.",
        "Pas d'escompte pour paiement anticipé. En cas de retard, pénalités au taux de 3 fois le taux",
        "d'intérêt légal et indemnité forfaitaire pour frais de recouvrement de 40 €.",
    ], size=9)
    c.hline(L, R, 780, 0.5, GREY)
    c.text(297.6, 792, "Atelier Lumière SARL au capital de 10 000 € – RCS Lyon 812 345 678 – "
           "SIRET 812 345 678 00021 – TVA FR45812345678", size=7.5, align="c", color=GREY)
    c.text(297.6, 803, "IBAN FR76 3000 4012 3400 0101 2345 678 – BIC BNPAFRPPXXX", size=7.5,
           align="c", color=GREY)
    must = [inv["number"], d_dmy(inv["issue"]), d_dmy(inv["due"]), d_fr_long(inv["issue"]),
            money(inv["total"]), money(inv["subtotal"]), money(inv["tax"])]
    return doc, must


# --------------------------------------------------------------------------
# 6. inv_en_multi_01 -- two pages, 35 lines, header row repeated on page 2
# --------------------------------------------------------------------------
MULTI_CATALOG = [
    ("Nitrile gloves, powder-free, M, box of 100", "8.90"),
    ("Nitrile gloves, powder-free, L, box of 100", "8.90"),
    ("Pipette tips 200 µl, racked, 10 x 96", "34.50"),
    ("Pipette tips 1000 µl, racked, 10 x 96", "38.20"),
    ("Microcentrifuge tubes 1.5 ml, pack of 500", "14.75"),
    ("Conical tubes 15 ml, sterile, pack of 50", "12.40"),
    ("Conical tubes 50 ml, sterile, pack of 25", "11.60"),
    ("Serological pipettes 10 ml, case of 200", "42.00"),
    ("Petri dishes 90 mm, sleeve of 20", "6.35"),
    ("Cryovials 2 ml, internal thread, 50/pk", "19.80"),
    ("Glass beaker 250 ml, borosilicate", "4.25"),
    ("Glass beaker 1000 ml, borosilicate", "9.60"),
    ("Erlenmeyer flask 500 ml, narrow neck", "7.95"),
    ("Graduated cylinder 100 ml, class A", "16.40"),
    ("Lab marker pens, fine tip, set of 4", "5.20"),
    ("Parafilm M, 10 cm x 38 m roll", "27.90"),
    ("Weighing boats 100 ml, pack of 500", "21.30"),
    ("Disposable lab coats, size L, 10/pk", "24.60"),
    ("Safety goggles, anti-fog", "6.75"),
    ("Ethanol 96%, 1 L", "11.20"),
    ("Isopropanol 70%, 5 L", "23.50"),
    ("PBS tablets, 100/pk", "36.80"),
    ("Agarose, molecular biology grade, 100 g", "89.00"),
    ("DNA ladder 1 kb, 250 µl", "74.50"),
    ("Freezer boxes, 81-place, 5/pk", "18.90"),
    ("Autoclave bags 600 x 780 mm, 100/pk", "32.40"),
    ("Sharps container 5 L", "7.30"),
    ("Paper towels, lab grade, case of 12", "19.95"),
    ("Syringe filters 0.22 µm, 50/pk", "45.60"),
    ("Disposable syringes 10 ml, 100/pk", "15.80"),
    ("Cell culture flasks T75, case of 100", "129.00"),
    ("96-well plates, flat bottom, case of 50", "98.50"),
    ("Magnetic stir bars, assorted, 10/pk", "13.25"),
    ("pH buffer solution set (4 / 7 / 10)", "28.40"),
    ("Courier delivery, temperature-controlled", "45.00"),
]


def make_multi():
    rng = random.Random(20240212)
    rows, codes = [], []
    for i, (desc, price) in enumerate(MULTI_CATALOG):
        q = 1 if i == len(MULTI_CATALOG) - 1 else rng.choice([1, 2, 2, 3, 4, 5, 6, 8, 10, 12])
        rows.append((desc, q, price))
        codes.append("SHIP-01" if i == len(MULTI_CATALOG) - 1 else f"NW-{rng.randint(1000, 9999)}")
    return {
        "stem": "inv_en_multi_01",
        "number": "INV-2024-0158",
        "issue": dt.date(2024, 2, 12),
        "due": dt.date(2024, 3, 13),
        "currency": "EUR",
        "tax_rate": D("0.23"),
        "seller": ["Northwind Lab Supplies Ltd", "Unit 12, Sandyford Business Centre",
                   "Dublin 18, D18 K7W2", "Ireland"],
        "buyer": ["Institute for Applied Biosciences", "Kruislaan 402", "1098 SM Amsterdam",
                  "Netherlands"],
        "items": build_items(rows),
        "codes": codes,
    }


INV_MULTI = make_multi()
MULTI_ROWS_PAGE1 = 25


def draw_inv_multi(inv):
    money = lambda x: "€" + num(x, "en")
    blue = (0.1, 0.3, 0.55)
    doc = new_doc()
    L, R = 45, 550
    cx = {"no": L + 4, "code": L + 26, "desc": L + 82, "qty": 375, "unit": 460, "amt": R - 4}
    s, b = inv["seller"], inv["buyer"]

    def table_header(c, top):
        c.box(L, top, R, top + 18, fill=blue)
        for key, label, al in (("no", "#", "l"), ("code", "Item code", "l"),
                               ("desc", "Description", "l"), ("qty", "Qty", "r"),
                               ("unit", "Unit Price", "r"), ("amt", "Amount", "r")):
            c.text(cx[key], top + 12.5, label, "hebo", 8.5, align=al, color=WHITE)
        return top + 18

    def rows(c, y, start, stop):
        for i in range(start, stop):
            it, code = inv["items"][i], inv["codes"][i]
            if i % 2:
                c.box(L, y, R, y + 16, fill=(0.94, 0.96, 0.99))
            c.text(cx["no"], y + 11.5, str(i + 1), size=8.5)
            c.text(cx["code"], y + 11.5, code, size=8.5)
            c.text(cx["desc"], y + 11.5, it["description"], size=8.5,
                   maxw=cx["qty"] - cx["desc"] - 35)
            c.text(cx["qty"], y + 11.5, qty(it["quantity"]), size=8.5, align="r")
            c.text(cx["unit"], y + 11.5, num(it["unit_price"]), size=8.5, align="r")
            c.text(cx["amt"], y + 11.5, num(it["amount"]), size=8.5, align="r")
            y += 16
        c.hline(L, R, y, 0.6, blue)
        return y

    def footer(c, n):
        c.hline(L, R, 800, 0.4, GREY)
        c.text(L, 812, f"{s[0]} · VAT No. IE 3456789LH · Registered in Ireland No. 612345",
               size=7, color=GREY)
        c.text(R, 812, f"Page {n} of 2", size=8, align="r")

    # ---- page 1
    c = Canvas(doc, A4)
    c.text(L, 62, s[0], "hebo", 15, color=blue)
    c.lines(L, 78, s[1:] + ["Tel. +353 1 294 5500 · orders@northwindlab.ie"], size=8.5)
    c.text(R, 66, "TAX INVOICE", "hebo", 20, align="r", color=blue)
    meta = [("Invoice Number", inv["number"]), ("Invoice Date", d_en_short(inv["issue"])),
            ("Due Date", d_en_short(inv["due"])), ("Customer No.", "C-20931"),
            ("Your Order Ref.", "IAB/PO/24-0117")]
    for i, (k, v) in enumerate(meta):
        yy = 92 + i * 13
        c.text(370, yy, k, "hebo", 8.5)
        c.text(R, yy, v, size=8.5, align="r")
    c.text(L, 178, "Bill To", "hebo", 9, color=blue)
    c.text(L, 192, b[0], "hebo", 9.5)
    c.lines(L, 205, b[1:], size=9)
    c.text(300, 178, "Deliver To", "hebo", 9, color=blue)
    c.lines(300, 192, ["Goods Receiving, Building C", "Science Park 904", "1098 XH Amsterdam"],
            size=9)
    c.text(L, 262, "Currency: EUR · Payment terms: 30 days net", size=8.5, color=GREY)
    y = table_header(c, 272)
    y = rows(c, y, 0, MULTI_ROWS_PAGE1)
    c.text(R, y + 16, "Continued on page 2", "helv", 8.5, align="r", color=GREY)
    footer(c, 1)
    # ---- page 2
    c = Canvas(doc, A4)
    c.text(L, 58, s[0], "hebo", 11, color=blue)
    c.text(R, 58, f"Invoice {inv['number']} (continued)", "hebo", 9, align="r")
    c.text(R, 71, f"Invoice Date {d_en_short(inv['issue'])}", size=8.5, align="r")
    c.hline(L, R, 80, 0.6, blue)
    y = table_header(c, 96)
    y = rows(c, y, MULTI_ROWS_PAGE1, len(inv["items"]))
    y += 24
    for k, v in (("Subtotal", inv["subtotal"]), ("VAT 23%", inv["tax"])):
        c.text(370, y, k, "hebo", 9.5)
        c.text(cx["amt"], y, money(v), size=9.5, align="r")
        y += 16
    c.box(365, y - 6, R, y + 16, fill=blue)
    c.text(370, y + 9, "Total Due (EUR)", "hebo", 10.5, color=WHITE)
    c.text(cx["amt"], y + 9, money(inv["total"]), "hebo", 10.5, align="r", color=WHITE)
    y += 60
    c.text(L, y, "Payment Information", "hebo", 9.5, color=blue)
    c.lines(L, y + 15, [
        "Bank of Ireland · IBAN IE29 BOFI 9000 1712 3456 78 · BIC BOFIIE2D",
        f"Please quote invoice number {inv['number']} with your payment.",
        f"Payment is due by {d_en_short(inv['due'])}. Goods remain our property until paid in full.",
    ], size=9)
    footer(c, 2)
    must = [inv["number"], d_en_short(inv["issue"]), d_en_short(inv["due"]),
            money(inv["total"]), money(inv["subtotal"]), money(inv["tax"]), "Page 1 of 2",
            "Page 2 of 2"]
    return doc, must


INVOICES = [
    (INV_EN_US, draw_inv_en_us, ["inv_en_us_01_scan.jpg"]),
    (INV_EN_GB, draw_inv_en_gb, ["inv_en_gb_01_scan.png"]),
    (INV_DE_1, draw_inv_de_1, ["inv_de_01_scan.tiff"]),
    (INV_DE_2, draw_inv_de_2, ["inv_de_02_scan.jpg"]),
    (INV_FR, draw_inv_fr, ["inv_fr_01_scan.png"]),
    # image-only PDF + multi-frame TIFF of the same scan; the TIFF gets its own
    # stem so that stems stay unique across sample_docs.
    (INV_MULTI, draw_inv_multi, ["inv_en_multi_01_scan.pdf", "inv_en_multi_01_scan_tiff.tiff"]),
]


# --------------------------------------------------------------------------
# receipts (80 mm till slips, Courier)
# --------------------------------------------------------------------------
RCOLS = 42          # characters per line
RSIZE = 7.5         # Courier 7.5 pt -> 4.5 pt per char -> 189 pt per line
RLEAD = 9.6


def center(s, w=RCOLS):
    if len(s) > w:
        raise LayoutError(f"receipt line too long: {s!r}")
    return s.center(w).rstrip()


def lr(left, right, w=RCOLS):
    if len(left) + len(right) + 1 > w:
        raise LayoutError(f"receipt line too long: {left!r} {right!r}")
    return left + " " * (w - len(left) - len(right)) + right


DASH = "-" * RCOLS


def receipt_my():
    items = [("MILO 3IN1 ACTIVGO 18S X 33G", 1, "15.90"),
             ("GARDENIA ORIGINAL CLASSIC 400G", 2, "3.80"),
             ("MAGGI KARI 5 X 79G", 2, "5.45"),
             ("DUTCH LADY UHT CHOC 1L", 1, "6.29"),
             ("SUNLIGHT LEMON 900ML", 1, "5.99")]
    lines = [("big", "KEDAI RUNCIT SRI MAJU SDN BHD"),
             ("n", center("(CO. REG. NO. 1203456-K)")),
             ("n", center("NO. 12, JALAN SS 2/64")),
             ("n", center("47300 PETALING JAYA")),
             ("n", center("SELANGOR DARUL EHSAN")),
             ("n", center("TEL: 03-7876 5432")),
             ("n", center("GST ID: 000812345678")),
             ("n", ""),
             ("b", center("TAX INVOICE")),
             ("n", lr("INV NO: CS18030412", "DATE: 03 MAR 18")),
             ("n", lr("CASHIER: AINA", "TIME: 14:05")),
             ("n", DASH),
             ("n", lr("DESCRIPTION", "AMOUNT(RM)")),
             ("n", DASH)]
    sub = Decimal(0)
    for desc, q, p in items:
        amt = cents(D(q) * D(p))
        sub += amt
        lines.append(("n", desc))
        lines.append(("n", lr(f"   {q} X {p}", f"{amt:.2f} SR")))
    gst = cents(sub * D("0.06"))
    incl = sub + gst
    total = (incl * 20).quantize(Decimal(1), rounding=ROUND_HALF_UP) / 20
    total = cents(total)
    rnd = total - incl
    cash = D("50.00")
    lines += [("n", DASH),
              ("n", lr("TOTAL SALES (EXCL GST)", f"{sub:.2f}")),
              ("n", lr("GST 6%", f"{gst:.2f}")),
              ("n", lr("TOTAL SALES (INCL GST)", f"{incl:.2f}")),
              ("n", lr("ROUNDING ADJ", f"{rnd:.2f}")),
              ("b", lr("TOTAL RM", f"{total:.2f}")),
              ("n", ""),
              ("n", lr("CASH", f"{cash:.2f}")),
              ("n", lr("CHANGE", f"{cash - total:.2f}")),
              ("n", DASH),
              ("n", lr("GST SUMMARY     AMOUNT(RM)", "TAX(RM)")),
              ("n", lr(f"SR @ 6%         {sub:>10.2f}", f"{gst:.2f}")),
              ("n", DASH),
              ("n", center("THANK YOU. PLEASE COME AGAIN.")),
              ("n", center("GOODS SOLD ARE NOT RETURNABLE")),
              ("n", center("*** CUSTOMER COPY ***"))]
    gt = {"company": "KEDAI RUNCIT SRI MAJU SDN BHD",
          "address": "NO. 12, JALAN SS 2/64, 47300 PETALING JAYA, SELANGOR DARUL EHSAN",
          "date": "2018-03-03", "total": jnum(total), "currency": "MYR"}
    must = ["03 MAR 18", f"{total:.2f}", "TOTAL RM"]
    return "rcpt_01", lines, gt, must, dt.date(2018, 3, 3)


def receipt_us():
    items = [(2, "Cappuccino 12oz", "4.75"), (1, "Avocado Toast", "11.95"),
             (1, "Breakfast Burrito", "13.50"), (1, "Fresh OJ", "5.25"),
             (1, "Blueberry Muffin", "3.95")]
    lines = [("big", "BLUE HERON CAFE"),
             ("n", center("2231 Pine Street")),
             ("n", center("Seattle, WA 98101")),
             ("n", center("Tel (206) 555-0148")),
             ("n", ""),
             ("n", lr("Server: Dana", "Check #4821")),
             ("n", lr("Table 12", "Guests 2")),
             ("n", lr("07/14/2022", "12:47 PM")),
             ("n", DASH)]
    sub = Decimal(0)
    for q, desc, p in items:
        amt = cents(D(q) * D(p))
        sub += amt
        left = f"{q} {desc}" + (f" @{p}" if q > 1 else "")
        lines.append(("n", lr(left, f"{amt:.2f}")))
    tax = cents(sub * D("0.1025"))
    total = sub + tax
    lines += [("n", DASH),
              ("n", lr("Subtotal", f"{sub:.2f}")),
              ("n", lr("Sales Tax 10.25%", f"{tax:.2f}")),
              ("b", lr("TOTAL", f"${total:.2f}")),
              ("n", ""),
              ("n", lr("VISA ************4417", f"{total:.2f}")),
              ("n", lr("Auth code 08812B", "Approved")),
              ("n", lr("Change", "0.00")),
              ("n", DASH),
              ("n", center("Thank you! Come again soon.")),
              ("n", center("www.blueheroncafe.com"))]
    gt = {"company": "BLUE HERON CAFE", "address": "2231 Pine Street, Seattle, WA 98101",
          "date": "2022-07-14", "total": jnum(total), "currency": "USD"}
    must = ["07/14/2022", f"${total:.2f}", "BLUE HERON CAFE"]
    return "rcpt_02", lines, gt, must, dt.date(2022, 7, 14)


def receipt_fr():
    items = [("BAGUETTE TRADITION", 2, "1.20", "A"), ("CROISSANT BEURRE", 4, "1.10", "A"),
             ("PAIN AU CHOCOLAT", 2, "1.25", "A"), ("TARTE AUX POMMES 6 P.", 1, "15.20", "A"),
             ("CAFÉ ALLONGÉ", 1, "1.80", "B")]
    rates = {"A": D("0.055"), "B": D("0.10")}
    lines = [("big", "BOULANGERIE DU MARCHÉ"),
             ("n", center("12 rue Mercière")),
             ("n", center("69002 Lyon")),
             ("n", center("Tél : 04 72 41 00 00")),
             ("n", center("SIRET 523 456 789 00014")),
             ("n", ""),
             ("n", lr("2023-03-20 08:17", "Caisse 1")),
             ("n", lr("Ticket n° 0042", "Vendeur : Léa")),
             ("n", DASH)]
    per_rate = {k: Decimal(0) for k in rates}
    total = Decimal(0)
    for desc, q, p, code in items:
        amt = cents(D(q) * D(p))
        total += amt
        per_rate[code] += amt
        lines.append(("n", lr(f"{q} x {desc}", f"{num(amt, 'fr')} {code}")))
    lines += [("n", DASH),
              ("b", lr("TOTAL", f"{num(total, 'fr')} €")),
              ("n", lr("CB SANS CONTACT", f"{num(total, 'fr')} €")),
              ("n", lr("Rendu", "0,00 €")),
              ("n", DASH),
              ("n", lr("TVA      Taux      HT", "TVA      TTC")),]
    for code, rate in rates.items():
        ttc = per_rate[code]
        ht = cents(ttc / (1 + rate))
        lines.append(("n", lr(f"{code}    {num(rate * 100, 'fr', 1):>5} %  {num(ht, 'fr'):>6}",
                              f"{num(ttc - ht, 'fr'):>5}    {num(ttc, 'fr'):>5}")))
    lines += [("n", DASH),
              ("n", center("Merci de votre visite !")),
              ("n", center("À bientôt")),]
    gt = {"company": "BOULANGERIE DU MARCHÉ", "address": "12 rue Mercière, 69002 Lyon",
          "date": "2023-03-20", "total": jnum(total), "currency": "EUR"}
    must = ["2023-03-20", f"{num(total, 'fr')} €", "BOULANGERIE DU MARCHÉ"]
    return "rcpt_03", lines, gt, must, dt.date(2023, 3, 20)


def receipt_sg():
    items = [(3, "Kaya Toast Set", "5.20"), (2, "Kopi C Peng", "1.80"),
             (1, "Mee Siam", "6.50"), (1, "Teh Tarik", "1.70"), (2, "Soft Boiled Eggs", "1.40")]
    lines = [("big", "KOPI & KAYA HOUSE PTE LTD"),
             ("n", center("Blk 123 Bukit Merah Lane 1")),
             ("n", center("#01-45")),
             ("n", center("Singapore 150123")),
             ("n", center("Tel: 6271 4455")),
             ("n", center("GST Reg No: 201812345K")),
             ("n", ""),
             ("n", lr("Receipt: A0012345", "Table: 7")),
             ("n", lr("15/01/2019 14:32", "Pax: 3")),
             ("n", DASH),
             ("n", lr("Qty Item", "Amt")),]
    sub = Decimal(0)
    for q, desc, p in items:
        amt = cents(D(q) * D(p))
        sub += amt
        lines.append(("n", lr(f"{q:>3} {desc}", f"{amt:.2f}")))
    svc = cents(sub * D("0.10"))
    gst = cents((sub + svc) * D("0.07"))
    total = sub + svc + gst
    lines += [("n", DASH),
              ("n", lr("Subtotal", f"{sub:.2f}")),
              ("n", lr("Svc Chrg 10%", f"{svc:.2f}")),
              ("n", lr("GST 7%", f"{gst:.2f}")),
              ("b", lr("Total incl. GST", f"S${total:.2f}")),
              ("n", ""),
              ("n", lr("NETS", f"{total:.2f}")),
              ("n", lr("Change", "0.00")),
              ("n", DASH),
              ("n", center("Thank you & have a nice day!")),
              ("n", center("Follow us @kopikayahouse")),]
    gt = {"company": "KOPI & KAYA HOUSE PTE LTD",
          "address": "Blk 123 Bukit Merah Lane 1, #01-45, Singapore 150123",
          "date": "2019-01-15", "total": jnum(total), "currency": "SGD"}
    must = ["15/01/2019 14:32", f"S${total:.2f}", "Total incl. GST"]
    return "rcpt_04", lines, gt, must, dt.date(2019, 1, 15)


RECEIPTS = [receipt_my, receipt_us, receipt_fr, receipt_sg]


def draw_receipt(lines):
    doc = new_doc()
    top, bottom = 30, 34
    heights = [14 if kind == "big" else RLEAD for kind, _ in lines]
    height = top + sum(heights) + bottom
    c = Canvas(doc, (RECEIPT_WIDTH, height), fonts=("cour", "cobo"))
    x0 = (RECEIPT_WIDTH - RCOLS * 0.6 * RSIZE) / 2
    y = top
    for (kind, s), h in zip(lines, heights):
        y += h
        if not s:
            continue
        if kind == "big":
            c.text(RECEIPT_WIDTH / 2, y - 2, s, "cobo", 10, align="c",
                   maxw=RECEIPT_WIDTH - 2 * x0)
        else:
            # leading spaces from centering are kept as x offset, not text
            stripped = s.lstrip(" ")
            x = x0 + (len(s) - len(stripped)) * 0.6 * RSIZE
            c.text(x, y, stripped, "cobo" if kind == "b" else "cour", RSIZE)
    return doc


# --------------------------------------------------------------------------
# scanned-looking copies
# --------------------------------------------------------------------------
def stem_rng(stem: str):
    return np.random.default_rng(zlib.crc32(stem.encode()))


def rasterize(doc) -> list[Image.Image]:
    out = []
    for page in doc:
        pix = page.get_pixmap(dpi=SCAN_DPI, colorspace=pymupdf.csGRAY, alpha=False)
        out.append(Image.frombytes("L", (pix.width, pix.height), pix.samples))
    return out


def degrade(img: Image.Image, rng, pad: int = 0) -> Image.Image:
    """Grayscale page -> scanned look: small skew (white fill), sensor noise, slight blur."""
    if pad:
        img = ImageOps.expand(img, border=pad, fill=255)
    angle = float(rng.uniform(0.4, 1.2)) * (1 if rng.random() < 0.5 else -1)
    img = img.rotate(angle, resample=Image.BICUBIC, expand=False, fillcolor=255)
    a = np.asarray(img, dtype=np.float32)
    a = a * 0.96 + 6  # paper is never quite white, ink never quite black
    a += rng.normal(0.0, NOISE_SIGMA, a.shape).astype(np.float32)
    img = Image.fromarray(np.clip(np.rint(a), 0, 255).astype(np.uint8), "L")
    return img.filter(ImageFilter.GaussianBlur(BLUR_RADIUS))


def save_scan(pages: list[Image.Image], path: Path):
    ext = path.suffix.lower()
    dpi = (SCAN_DPI, SCAN_DPI)
    if ext == ".jpg":
        assert len(pages) == 1
        pages[0].save(path, "JPEG", quality=JPEG_QUALITY, dpi=dpi)
    elif ext == ".png":
        assert len(pages) == 1
        pages[0].save(path, "PNG", dpi=dpi, compress_level=9)
    elif ext == ".tiff":
        pages[0].save(path, "TIFF", dpi=dpi, compression="tiff_deflate", save_all=True,
                      append_images=pages[1:])
    elif ext == ".pdf":
        doc = new_doc()
        for img in pages:
            buf = io.BytesIO()
            img.save(buf, "JPEG", quality=JPEG_QUALITY, dpi=dpi)
            w, h = img.width * 72 / SCAN_DPI, img.height * 72 / SCAN_DPI
            page = doc.new_page(width=w, height=h)
            page.insert_image(page.rect, stream=buf.getvalue())
        doc.set_metadata({"title": path.stem, "author": "", "subject": "", "keywords": "",
                          "creator": "docvlm sample_docs/make_samples.py (simulated scan)",
                          "producer": "PyMuPDF", "creationDate": "D:20240301120000Z",
                          "modDate": "D:20240301120000Z"})
        path.write_bytes(doc.tobytes(garbage=4, deflate=True, no_new_id=True))
    else:
        raise ValueError(ext)


# --------------------------------------------------------------------------
# main
# --------------------------------------------------------------------------
def write_json(path: Path, obj):
    path.write_text(json.dumps(obj, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")


def generate():
    for d in (INV_DIR, RCPT_DIR, GT_INV, GT_RCPT):
        d.mkdir(parents=True, exist_ok=True)
    made = {}  # path -> (gt path, must-contain strings or None for image-only)

    for inv, draw, scan_names in INVOICES:
        stem = inv["stem"]
        record = invoice_record(inv)
        doc, must = draw(inv)
        pdf = INV_DIR / f"{stem}.pdf"
        save_pdf(doc, pdf, f"Invoice {inv['number']}", inv["seller"][0], inv["issue"])
        write_json(GT_INV / f"{stem}.json", record)
        made[pdf] = (GT_INV / f"{stem}.json", must)
        pages = rasterize(doc)
        doc.close()
        for name in scan_names:
            out = INV_DIR / name
            rng = stem_rng(out.stem)
            save_scan([degrade(p, rng) for p in pages], out)
            write_json(GT_INV / f"{out.stem}.json", record)
            made[out] = (GT_INV / f"{out.stem}.json", None)

    for make in RECEIPTS:
        stem, lines, gt, must, date = make()
        doc = draw_receipt(lines)
        pdf = RCPT_DIR / f"{stem}.pdf"
        save_pdf(doc, pdf, f"Receipt {gt['company']}", gt["company"], date)
        write_json(GT_RCPT / f"{stem}.json", gt)
        made[pdf] = (GT_RCPT / f"{stem}.json", must)
        pages = rasterize(doc)
        doc.close()
        rng = stem_rng(f"{stem}_scan")
        out = RCPT_DIR / f"{stem}_scan.jpg"
        save_scan([degrade(pages[0], rng, pad=24)], out)
        write_json(GT_RCPT / f"{stem}_scan.json", gt)
        made[out] = (GT_RCPT / f"{stem}_scan.json", None)
    return made


def remove_stale(made):
    keep = set(made) | {gt for gt, _ in made.values()}
    for d in (INV_DIR, RCPT_DIR, GT_INV, GT_RCPT):
        for f in d.iterdir():
            if f.is_file() and f not in keep:
                print(f"removing stale file {f.relative_to(HERE)}")
                f.unlink()


def verify(made) -> list[str]:
    problems = []
    docs = sorted(p for d in (INV_DIR, RCPT_DIR) for p in d.iterdir())
    stems = [p.stem for p in docs]
    if len(set(stems)) != len(stems):
        problems.append(f"duplicate stems: {sorted(stems)}")
    for p in docs:
        kind = "invoice" if p.parent == INV_DIR else "receipt"
        if p.suffix.lower() not in (".pdf", ".jpg", ".png", ".tiff"):
            problems.append(f"unexpected file in inputs: {p}")
            continue
        gt_path = HERE / "groundtruth" / kind / f"{p.stem}.json"
        if not gt_path.exists():
            problems.append(f"no ground truth for {p.name}")
            continue
        gt = json.loads(gt_path.read_text(encoding="utf-8"))
        if kind == "invoice":
            li = gt["line_items"]
            for it in li:
                if abs(it["quantity"] * it["unit_price"] - it["amount"]) > 0.005:
                    problems.append(f"{p.name}: qty*price != amount for {it}")
            if abs(sum(it["amount"] for it in li) - gt["subtotal"]) > 0.005:
                problems.append(f"{p.name}: line items do not sum to subtotal")
            if abs(gt["subtotal"] + gt["tax"] - gt["total"]) > 0.005:
                problems.append(f"{p.name}: subtotal + tax != total")
        if p.suffix == ".pdf":
            with pymupdf.open(p) as doc:
                text = " ".join(" ".join(pg.get_text().split()) for pg in doc)
                must = made.get(p, (None, None))[1]
                if must is None:  # image-only scan
                    if text.strip():
                        problems.append(f"{p.name}: scan PDF has a text layer")
                    continue
                checks = list(must)
                if kind == "invoice":
                    checks += [it["description"] for it in gt["line_items"]]
                    checks += [gt["seller"]["name"], gt["buyer"]["name"]]
                else:
                    checks += [gt["company"]]
                for m in checks:
                    if " ".join(m.split()) not in text:
                        problems.append(f"{p.name}: {m!r} not in text layer")
        else:
            with Image.open(p) as im:
                im.load()
                n = getattr(im, "n_frames", 1)
                if p.suffix == ".tiff" and "multi" in p.stem and n != 2:
                    problems.append(f"{p.name}: expected 2 frames, got {n}")
    for gt in list(GT_INV.iterdir()) + list(GT_RCPT.iterdir()):
        if gt.stem not in stems:
            problems.append(f"ground truth without document: {gt}")
    return problems


def main():
    made = generate()
    remove_stale(made)
    problems = verify(made)
    total = sum(f.stat().st_size for f in HERE.rglob("*") if f.is_file())
    n_docs = sum(1 for d in (INV_DIR, RCPT_DIR) for _ in d.iterdir())
    print(f"{n_docs} documents, sample_docs/ total {total / 1e6:.2f} MB")
    for pr in problems:
        print("PROBLEM:", pr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
