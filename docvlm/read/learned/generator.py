"""Procedurally generated labelled documents, to train the candidate scorer and to test that
it generalises to layouts it was not trained on.

A document is a business document (invoice, order, contract, statement, delivery note,
receipt, form) drawn with PyMuPDF: 4–8 schema fields picked from a pool of field archetypes,
each with several schema spellings and printed labels in EN, DE, FR and ES, values printed in
the document's locale (date order, decimal comma), distractors (other labelled values, a
line-item table, filler and footer text) and a layout *template* that decides how labels
relate to their values. ``scan=True`` documents get OCR-like noise when turned into pages.

Every truth value is printed on the page; :func:`_check` asserts it.
"""

from __future__ import annotations

import json
import random
import re
from dataclasses import dataclass, field
from datetime import date, timedelta
from functools import cache, lru_cache
from pathlib import Path

from docvlm.datamodel import Page, Word
from docvlm.lines import build_lines
from docvlm.normalize import compact, parse_amount, parse_date

TEMPLATES: tuple[str, ...] = (
    "colon", "tabstop", "stacked", "table_header", "receipt", "letter", "boxed", "two_column",
)  # fmt: skip
HELD_OUT_TEMPLATES: tuple[str, ...] = ("boxed", "two_column")
TRAIN_TEMPLATES: tuple[str, ...] = tuple(t for t in TEMPLATES if t not in HELD_OUT_TEMPLATES)
LANGUAGES = ("en", "de", "fr", "es")
DPI = 150
_SCALE = DPI / 72.0

# -- field archetypes ------------------------------------------------------------------------
# key -> (kind, schema spellings [(property name, description)], labels per language)
_DATE = {"type": "string", "format": "date"}
_NUM = {"type": "number"}
_STR = {"type": "string"}
TERMS_ENUM = ["net 30", "net 60", "net 14", "immediate"]

ARCHETYPES: dict[str, tuple[str, list[tuple[str, str]], dict[str, list[str]]]] = {
    "doc_number": ("id", [("invoice_number", "Invoice number"), ("doc_no", "Document number"),
                          ("reference", "Reference number")], {
        "en": ["Invoice No.", "Invoice #", "Invoice Number", "Document No."],
        "de": ["Rechnungsnummer", "Rechnung Nr.", "Beleg-Nr."],
        "fr": ["N° de facture", "Facture n°", "Numéro de document"],
        "es": ["Factura n.º", "Número de factura", "N.º documento"]}),
    "order_id": ("id", [("order_id", "Order number"), ("po_number", "Purchase order number")], {
        "en": ["Order Number", "PO #", "Order No."],
        "de": ["Bestellnummer", "Auftrag Nr.", "Bestell-Nr."],
        "fr": ["N° de commande", "Bon de commande"],
        "es": ["Número de pedido", "Pedido n.º"]}),
    "contract_number": ("id", [("contract_number", "Contract number"),
                               ("agreement_id", "Agreement identifier")], {
        "en": ["Contract #", "Contract No.", "Agreement No."],
        "de": ["Vertragsnummer", "Vertrag Nr."],
        "fr": ["N° de contrat", "Contrat n°"],
        "es": ["Número de contrato", "Contrato n.º"]}),
    "customer_number": ("id", [("customer_number", "Customer number"), ("client_id", "Client ID"),
                               ("account_number", "Customer account number")], {
        "en": ["Customer No.", "Customer ID", "Account #"],
        "de": ["Kundennummer", "Kunden-Nr."],
        "fr": ["N° client", "Code client"],
        "es": ["N.º de cliente", "Código cliente"]}),
    "issue_date": ("date", [("invoice_date", "Invoice date"), ("issue_date", "Date of issue"),
                            ("document_date", "Document date")], {
        "en": ["Invoice Date", "Date", "Date of issue"],
        "de": ["Rechnungsdatum", "Datum", "Belegdatum"],
        "fr": ["Date de facture", "Date", "Date d'émission"],
        "es": ["Fecha de factura", "Fecha", "Fecha de emisión"]}),
    "due_date": ("date", [("due_date", "Payment due date"), ("payment_due", "Payment due by")], {
        "en": ["Due Date", "Payment due", "Pay by"],
        "de": ["Fällig am", "Zahlbar bis", "Fälligkeitsdatum"],
        "fr": ["Date d'échéance", "Échéance", "À payer avant le"],
        "es": ["Fecha de vencimiento", "Vencimiento", "Pagar antes de"]}),
    "delivery_date": ("date", [("delivery_date", "Delivery date"), ("ship_date", "Shipping date")], {
        "en": ["Delivery Date", "Shipped on", "Ship date"],
        "de": ["Lieferdatum", "Liefertermin"],
        "fr": ["Date de livraison", "Livré le"],
        "es": ["Fecha de entrega", "Entregado el"]}),
    "period_start": ("date", [("period_start", "Start of period"),
                              ("flight_start", "Flight start date"), ("start_date", "Start date")], {
        "en": ["Period from", "Start date", "Flight start"],
        "de": ["Zeitraum von", "Beginn", "Leistungsbeginn"],
        "fr": ["Période du", "Date de début"],
        "es": ["Periodo desde", "Fecha de inicio"]}),
    "period_end": ("date", [("period_end", "End of period"), ("flight_end", "Flight end date"),
                            ("end_date", "End date")], {
        "en": ["Period to", "End date", "Flight end"],
        "de": ["Zeitraum bis", "Ende", "Leistungsende"],
        "fr": ["Période au", "Date de fin"],
        "es": ["Periodo hasta", "Fecha de fin"]}),
    "total": ("amount", [("total", "Total amount"), ("total_amount", "Total amount due"),
                         ("grand_total", "Grand total")], {
        "en": ["Total", "Total Amount", "Grand Total", "Amount Due"],
        "de": ["Gesamtbetrag", "Summe", "Rechnungsbetrag", "Gesamt"],
        "fr": ["Total TTC", "Montant total", "Total à payer"],
        "es": ["Total", "Importe total", "Total a pagar"]}),
    "tax": ("amount", [("tax_amount", "Tax amount"), ("vat", "VAT amount"),
                       ("vat_amount", "Value added tax")], {
        "en": ["VAT", "Tax", "Sales Tax"],
        "de": ["MwSt.", "USt.", "Mehrwertsteuer"],
        "fr": ["TVA", "Montant TVA"],
        "es": ["IVA", "Impuesto"]}),
    "subtotal": ("amount", [("subtotal", "Subtotal"), ("net_amount", "Net amount")], {
        "en": ["Subtotal", "Net Amount", "Net"],
        "de": ["Nettobetrag", "Zwischensumme", "Netto"],
        "fr": ["Total HT", "Sous-total", "Montant HT"],
        "es": ["Subtotal", "Base imponible", "Importe neto"]}),
    "gross_amount": ("amount", [("gross_amount", "Gross amount"), ("gross", "Gross value")], {
        "en": ["Gross Amount", "Gross"],
        "de": ["Bruttobetrag", "Brutto"],
        "fr": ["Montant brut"],
        "es": ["Importe bruto"]}),
    "balance_due": ("amount", [("balance_due", "Balance due"),
                               ("amount_outstanding", "Outstanding amount")], {
        "en": ["Balance Due", "Outstanding balance"],
        "de": ["Offener Betrag", "Restbetrag"],
        "fr": ["Solde dû", "Reste à payer"],
        "es": ["Saldo pendiente", "Importe pendiente"]}),
    "deposit": ("amount", [("deposit", "Deposit paid"), ("prepayment", "Prepayment")], {
        "en": ["Deposit", "Amount paid", "Prepayment"],
        "de": ["Anzahlung", "Bereits bezahlt"],
        "fr": ["Acompte", "Déjà payé"],
        "es": ["Anticipo", "Depósito"]}),
    "seller_name": ("company", [("seller_name", "Seller name"), ("vendor", "Vendor name"),
                                ("store_name", "Store name"), ("supplier", "Supplier")], {
        "en": ["Seller", "From", "Vendor"], "de": ["Verkäufer", "Lieferant"],
        "fr": ["Vendeur", "Fournisseur"], "es": ["Vendedor", "Proveedor"]}),
    "seller_address": ("address", [("seller_address", "Seller address"),
                                   ("vendor_address", "Vendor address")], {
        "en": ["Address"], "de": ["Anschrift"], "fr": ["Adresse"], "es": ["Dirección"]}),
    "buyer_name": ("company", [("buyer_name", "Buyer name"), ("customer_name", "Customer name"),
                               ("bill_to", "Bill to name")], {
        "en": ["Bill To", "Customer", "Sold to"], "de": ["Kunde", "Rechnungsempfänger"],
        "fr": ["Client", "Facturé à"], "es": ["Cliente", "Facturar a"]}),
    "buyer_address": ("address", [("buyer_address", "Buyer address"),
                                  ("customer_address", "Customer address")], {
        "en": ["Address"], "de": ["Anschrift"], "fr": ["Adresse"], "es": ["Dirección"]}),
    "advertiser": ("company", [("advertiser", "Advertiser"), ("brand_owner", "Advertiser name")], {
        "en": ["Advertiser", "Client"], "de": ["Werbetreibender", "Auftraggeber"],
        "fr": ["Annonceur"], "es": ["Anunciante"]}),
    "agency": ("company", [("agency", "Agency name"), ("media_agency", "Media agency")], {
        "en": ["Agency"], "de": ["Agentur"], "fr": ["Agence"], "es": ["Agencia"]}),
    "phone": ("phone", [("phone", "Phone number"), ("telephone", "Telephone")], {
        "en": ["Phone", "Tel.", "Telephone"], "de": ["Telefon", "Tel."],
        "fr": ["Téléphone", "Tél."], "es": ["Teléfono", "Tel."]}),
    "email": ("email", [("email", "Email address"), ("contact_email", "Contact e-mail")], {
        "en": ["Email", "E-mail"], "de": ["E-Mail"], "fr": ["Courriel", "E-mail"],
        "es": ["Correo electrónico", "Email"]}),
    "iban": ("iban", [("iban", "IBAN"), ("bank_account", "Bank account number")], {
        "en": ["IBAN", "Bank account"], "de": ["IBAN", "Kontonummer"], "fr": ["IBAN", "RIB"],
        "es": ["IBAN", "Cuenta bancaria"]}),
    "vat_id": ("vatid", [("vat_id", "VAT identification number"), ("tax_id", "Tax ID")], {
        "en": ["VAT No.", "Tax ID"], "de": ["USt-IdNr.", "Steuernummer"],
        "fr": ["N° TVA intracom.", "SIRET"], "es": ["NIF", "CIF"]}),
    "currency": ("currency", [("currency", "Currency code"), ("currency_code", "ISO currency")], {
        "en": ["Currency"], "de": ["Währung"], "fr": ["Devise", "Monnaie"], "es": ["Moneda"]}),
    "payment_terms": ("terms", [("payment_terms", "Payment terms"), ("terms", "Terms of payment")], {
        "en": ["Payment Terms", "Terms"], "de": ["Zahlungsbedingungen", "Zahlungsziel"],
        "fr": ["Conditions de paiement"], "es": ["Condiciones de pago", "Forma de pago"]}),
    "quantity": ("qty", [("quantity", "Total quantity"), ("item_count", "Number of items")], {
        "en": ["Total Qty", "Items", "Quantity"], "de": ["Menge gesamt", "Anzahl Artikel"],
        "fr": ["Quantité totale", "Nombre d'articles"], "es": ["Cantidad total", "N.º de artículos"]}),
    # distractor-only: printed, never in a schema
    "print_date": ("date", [], {
        "en": ["Printed on", "Print date"], "de": ["Druckdatum"], "fr": ["Imprimé le"],
        "es": ["Fecha de impresión"]}),
    "ticket": ("id", [], {
        "en": ["Ticket", "Case No."], "de": ["Vorgang", "Aktenzeichen"], "fr": ["Dossier"],
        "es": ["Expediente"]}),
}  # fmt: skip
SCHEMA_ARCHETYPES = tuple(k for k, v in ARCHETYPES.items() if v[1])
_META = ("doc_number", "order_id", "contract_number", "customer_number", "issue_date",
         "due_date", "delivery_date", "period_start", "period_end", "advertiser", "agency",
         "currency", "payment_terms", "quantity", "print_date", "ticket")  # fmt: skip
_CONTACT = ("phone", "email", "vat_id")
_TOTALS = ("gross_amount", "subtotal", "tax", "total", "deposit", "balance_due")

_TITLES = {
    "invoice": {"en": "INVOICE", "de": "RECHNUNG", "fr": "FACTURE", "es": "FACTURA"},
    "order": {"en": "Purchase Order", "de": "Bestellung", "fr": "Bon de commande",
              "es": "Pedido"},
    "contract": {"en": "Media Contract", "de": "Werbevertrag", "fr": "Contrat", "es": "Contrato"},
    "statement": {"en": "Statement", "de": "Kontoauszug", "fr": "Relevé", "es": "Extracto"},
    "delivery": {"en": "Delivery Note", "de": "Lieferschein", "fr": "Bon de livraison",
                 "es": "Albarán"},
    "form": {"en": "Order Form", "de": "Auftragsformular", "fr": "Formulaire",
             "es": "Formulario"},
    "receipt": {"en": "RECEIPT", "de": "KASSENBON", "fr": "TICKET DE CAISSE", "es": "TICKET"},
}  # fmt: skip
_HEADERS = {
    "en": ("Description", "Qty", "Unit Price", "Amount"),
    "de": ("Beschreibung", "Menge", "Einzelpreis", "Betrag"),
    "fr": ("Désignation", "Qté", "Prix unitaire", "Montant"),
    "es": ("Descripción", "Cant.", "Precio unit.", "Importe"),
}
_ITEMS = {
    "en": ["Consulting services", "Office chairs", "Printer paper", "Software licence",
           "Maintenance", "Cable set", "Monitor stand", "Ad placement", "Radio spot",
           "Coffee beans", "Installation", "Training day"],
    "de": ["Beratungsleistung", "Bürostühle", "Druckerpapier", "Softwarelizenz", "Wartung",
           "Kabelsatz", "Montage", "Anzeigenschaltung", "Radiospot", "Kaffeebohnen", "Schulung"],
    "fr": ["Prestation de conseil", "Chaises de bureau", "Papier imprimante",
           "Licence logicielle", "Maintenance", "Installation", "Spot radio", "Café en grains",
           "Formation", "Insertion presse"],
    "es": ["Servicios de consultoría", "Sillas de oficina", "Papel de impresora",
           "Licencia de software", "Mantenimiento", "Instalación", "Cuña de radio",
           "Café en grano", "Formación", "Anuncio en prensa"],
}  # fmt: skip
_FILLER = {
    "en": ["Thank you for your business.", "Please quote the reference on all correspondence.",
           "Goods remain our property until paid in full.",
           "All prices are subject to our general terms and conditions.",
           "Questions about this document? Contact our accounts team."],
    "de": ["Vielen Dank für Ihren Auftrag.", "Bitte geben Sie bei Zahlung die Referenz an.",
           "Die Ware bleibt bis zur vollständigen Bezahlung unser Eigentum.",
           "Es gelten unsere Allgemeinen Geschäftsbedingungen.",
           "Bei Fragen wenden Sie sich bitte an unsere Buchhaltung."],
    "fr": ["Merci de votre confiance.", "Merci de rappeler la référence lors du paiement.",
           "Les marchandises restent notre propriété jusqu'au paiement intégral.",
           "Nos conditions générales de vente s'appliquent.",
           "Pour toute question, contactez notre service comptable."],
    "es": ["Gracias por su confianza.", "Indique la referencia al realizar el pago.",
           "La mercancía es de nuestra propiedad hasta su pago completo.",
           "Se aplican nuestras condiciones generales de venta.",
           "Para cualquier consulta, contacte con nuestro departamento de contabilidad."],
}  # fmt: skip
_LETTER_INTRO = {
    "en": ["We refer to", "Please note", "This concerns", "Regarding"],
    "de": ["Wir beziehen uns auf", "Bitte beachten Sie", "Betreff"],
    "fr": ["Nous nous référons à", "Veuillez noter", "Concerne"],
    "es": ["Nos referimos a", "Tenga en cuenta", "Asunto"],
}
_PAGE = {"en": "Page {} of {}", "de": "Seite {} von {}", "fr": "Page {} sur {}",
         "es": "Página {} de {}"}  # fmt: skip
_MONTHS = {
    "en": ["January", "February", "March", "April", "May", "June", "July", "August",
           "September", "October", "November", "December"],
    "de": ["Januar", "Februar", "März", "April", "Mai", "Juni", "Juli", "August", "September",
           "Oktober", "November", "Dezember"],
    "fr": ["janvier", "février", "mars", "avril", "mai", "juin", "juillet", "août",
           "septembre", "octobre", "novembre", "décembre"],
}  # fmt: skip
_DATE_FORMATS = {
    "en-US": ["mdy_slash", "mdy_short", "iso", "month_d_y", "d_mon_y"],
    "en-GB": ["dmy_slash", "dmy_dash", "iso", "d_month_y", "d_mon_y"],
    "de": ["dmy_dot", "dmy_dot", "dmy_dot_short", "iso", "d_month_y"],
    "fr": ["dmy_slash", "dmy_dot", "iso", "d_month_y"],
    "es": ["dmy_slash", "dmy_dash", "dmy_dot", "iso"],
}
# fmt: off
_AMOUNT_STYLES = {"en": ["en_comma", "en_comma", "en_plain"], "de": ["eu_dot", "eu_plain"],
                  "fr": ["eu_space", "eu_dot", "eu_plain"], "es": ["eu_dot", "eu_plain"]}
_SYLLABLES = ("bra", "ko", "lin", "ter", "mar", "vo", "sen", "dal", "ri", "ox", "tek", "na",
              "vel", "quin", "por", "zu", "ga", "mi", "stra", "len", "do", "fex", "ar", "hol")
_TRADES = {"en": ["Systems", "Trading", "Media", "Logistics", "Consulting", "Foods"],
           "de": ["Logistik", "Handel", "Medien", "Technik", "Bau", "Beratung"],
           "fr": ["Conseil", "Distribution", "Médias", "Services", "Industrie"],
           "es": ["Soluciones", "Comercial", "Medios", "Servicios", "Logística"]}
_LEGAL = {"en": ["Inc.", "Ltd", "LLC", "Corp."], "de": ["GmbH", "AG", "GmbH & Co. KG", "e.K."],
          "fr": ["SARL", "SAS", "S.A."], "es": ["S.L.", "S.A."]}
_CITIES = {"en-US": [("Springfield", "IL"), ("Austin", "TX"), ("Denver", "CO"),
                     ("Portland", "OR"), ("Columbus", "OH")],
           "en-GB": ["Leeds", "Bristol", "Norwich", "York", "Cardiff"],
           "de": ["Berlin", "Hamburg", "Köln", "Leipzig", "Mannheim", "Freiburg"],
           "fr": ["Lyon", "Nantes", "Lille", "Bordeaux", "Rennes"],
           "es": ["Madrid", "Sevilla", "Valencia", "Bilbao", "Zaragoza"]}  # fmt: skip
# fmt: on
_FONTS = ("helv", "tiro", "cour")
_BOLD = {"helv": "hebo", "tiro": "tibo", "cour": "hebo"}


@dataclass
class GeneratedDoc:
    pdf: bytes
    schema: dict
    truth: dict
    template: str
    language: str
    seed: int = 0
    scan: bool = False
    printed: dict = field(default_factory=dict)  # field -> the exact text printed for it
    dayfirst: bool = True
    decimal_comma: bool = False
    pages: int = 1


# -- values ---------------------------------------------------------------------------------


def _fmt_date(d: date, style: str, lang: str) -> str:
    if style == "dmy_dot":
        return f"{d.day:02d}.{d.month:02d}.{d.year}"
    if style == "dmy_slash":
        return f"{d.day:02d}/{d.month:02d}/{d.year}"
    if style == "dmy_dash":
        return f"{d.day:02d}-{d.month:02d}-{d.year}"
    if style == "dmy_dot_short":
        return f"{d.day}.{d.month}.{d.year % 100:02d}"
    if style == "mdy_slash":
        return f"{d.month:02d}/{d.day:02d}/{d.year}"
    if style == "mdy_short":
        return f"{d.month:02d}/{d.day:02d}/{d.year % 100:02d}"
    if style == "iso":
        return d.isoformat()
    if style == "month_d_y":
        return f"{_MONTHS['en'][d.month - 1]} {d.day}, {d.year}"
    if style == "d_mon_y":
        return f"{d.day:02d}-{_MONTHS['en'][d.month - 1][:3]}-{d.year % 100:02d}"
    months = _MONTHS.get(lang, _MONTHS["en"])
    dot = "." if lang == "de" else ""
    return f"{d.day}{dot} {months[d.month - 1]} {d.year}"


def _fmt_amount(cents: int, style: str) -> str:
    units, rest = divmod(abs(cents), 100)
    if style.endswith("plain"):
        head = str(units)
    else:
        sep = {"en_comma": ",", "eu_dot": ".", "eu_space": " "}[style]
        head = f"{units:,}".replace(",", sep)
    dec = "." if style.startswith("en") else ","
    return f"{'-' if cents < 0 else ''}{head}{dec}{rest:02d}"


def _company(rng: random.Random, lang: str) -> str:
    word = "".join(rng.choice(_SYLLABLES) for _ in range(rng.randint(2, 3))).capitalize()
    parts = [word]
    if rng.random() < 0.6:
        parts.append(rng.choice(_TRADES[lang]))
    parts.append(rng.choice(_LEGAL[lang]))
    return " ".join(parts)


def _street_name(rng: random.Random) -> str:
    return "".join(rng.choice(_SYLLABLES) for _ in range(2)).capitalize()


def _address(rng: random.Random, locale: str) -> list[str]:
    n = rng.randint(1, 180)
    name = _street_name(rng)
    if locale == "en-US":
        city, state = rng.choice(_CITIES[locale])
        street = f"{n} {name} {rng.choice(['Street', 'Avenue', 'Road', 'Blvd.'])}"
        lines = [street, f"{city}, {state} {rng.randint(10000, 99999)}"]
    elif locale == "en-GB":
        street = f"{n} {name} {rng.choice(['Road', 'Lane', 'Street'])}"
        pc = f"{rng.choice('BLNSY')}{rng.choice('DESR')}{rng.randint(1, 19)} {rng.randint(1, 9)}{rng.choice('ABDHJ')}{rng.choice('LNPQW')}"
        lines = [street, f"{rng.choice(_CITIES[locale])} {pc}"]
    elif locale == "de":
        street = f"{name}{rng.choice(['straße', 'weg', 'allee', 'ring'])} {n}"
        lines = [street, f"{rng.randint(10000, 99999)} {rng.choice(_CITIES[locale])}"]
    elif locale == "fr":
        street = f"{n} {rng.choice(['rue', 'avenue', 'boulevard'])} {name}"
        city = rng.choice(_CITIES[locale])
        lines = [
            street,
            f"{rng.randint(10000, 95999)} {city.upper() if rng.random() < 0.5 else city}",
        ]
    else:
        street = f"{rng.choice(['Calle', 'Avda.', 'Paseo'])} {name}, {n}"
        lines = [street, f"{rng.randint(10000, 52999)} {rng.choice(_CITIES[locale])}"]
    if rng.random() < 0.2:
        lines.append({"en-US": "USA", "en-GB": "United Kingdom", "de": "Deutschland",
                      "fr": "France", "es": "España"}[locale])  # fmt: skip
    return lines


def _identifier(rng: random.Random, kind: str, year: int) -> str:
    d = lambda k: "".join(rng.choice("0123456789") for _ in range(k))  # noqa: E731
    prefix = {"doc_number": ["INV", "RE", "FA", "F", "DOC"], "order_id": ["PO", "ORD", "B", "P"],
              "contract_number": ["CTR", "K", "C", "AGR"], "customer_number": ["CUST", "K", "CL", "C"],
              "ticket": ["T", "AZ", "D"]}.get(kind, ["X"])  # fmt: skip
    p = rng.choice(prefix)
    shape = rng.randrange(6)
    if shape == 0:
        return f"{p}-{year}-{d(4)}"
    if shape == 1:
        return f"{p}{d(rng.randint(5, 8))}"
    if shape == 2:
        return f"{rng.randint(1, 9)}{d(rng.randint(3, 6))}"
    if shape == 3:
        return f"{year}/{d(4)}"
    if shape == 4:
        return f"{p}-{d(5)}-{rng.choice('ABCDEFGH')}"
    return f"{p}{year % 100:02d}{d(3)}-{d(2)}"


def _values(rng: random.Random, lang: str, locale: str, receipt: bool) -> dict:
    """Raw values of every archetype (cents for amounts, dates, strings)."""
    v: dict = {}
    year = rng.randint(2015, 2025)
    base = date(year, 1, 1) + timedelta(rng.randrange(365))
    v["issue_date"] = base
    v["due_date"] = base + timedelta(rng.choice([7, 10, 14, 21, 30, 45, 60]))
    v["delivery_date"] = base - timedelta(rng.randint(1, 3))
    v["period_start"] = base - timedelta(rng.randint(35, 90))
    v["period_end"] = v["period_start"] + timedelta(rng.randint(6, 31))
    v["print_date"] = base + timedelta(rng.randint(1, 5))
    ids: set[str] = set()
    for k in ("doc_number", "order_id", "contract_number", "customer_number", "ticket"):
        while True:
            x = _identifier(rng, k, base.year)
            if x not in ids:
                ids.add(x)
                v[k] = x
                break
    for _ in range(50):
        n = rng.randint(2, 9) if receipt else rng.randint(2, 7)
        items = []
        for _i in range(n):
            qty = rng.randint(1, 3) if receipt else rng.randint(1, 12)
            unit = rng.randint(50, 3000) if receipt else rng.randint(150, 250000)
            items.append((rng.choice(_ITEMS[lang]), qty, unit, qty * unit))
        sub = sum(it[3] for it in items)
        rate = rng.choice({"en-US": [0.07, 0.0825, 0.06], "en-GB": [0.2, 0.05],
                           "de": [0.19, 0.07], "fr": [0.2, 0.1, 0.055],
                           "es": [0.21, 0.1]}[locale])  # fmt: skip
        tax = round(sub * rate)
        total = sub + tax
        deposit = round(total * rng.uniform(0.1, 0.5))
        gross = round(sub / (1 - rng.choice([0.05, 0.1, 0.15])))
        key = {"subtotal": sub, "tax": tax, "total": total, "deposit": deposit,
               "balance_due": total - deposit, "gross_amount": gross}  # fmt: skip
        others = {it[2] for it in items} | {it[3] for it in items}
        if tax > 0 and len(set(key.values())) == 6 and not set(key.values()) & others:
            break
    v.update(key)
    v["items"], v["rate"] = items, rate
    v["quantity"] = sum(it[1] for it in items)
    v["seller_name"], v["buyer_name"] = _company(rng, lang), _company(rng, lang)
    while v["buyer_name"] == v["seller_name"]:
        v["buyer_name"] = _company(rng, lang)
    v["advertiser"], v["agency"] = _company(rng, lang), _company(rng, lang)
    v["seller_address"], v["buyer_address"] = _address(rng, locale), _address(rng, locale)
    digits = lambda k: "".join(rng.choice("0123456789") for _ in range(k))  # noqa: E731
    v["phone"] = {
        "en-US": f"({rng.randint(201, 989)}) {digits(3)}-{digits(4)}",
        "en-GB": f"+44 {rng.randint(20, 29)} {digits(4)} {digits(4)}",
        "de": f"+49 {rng.randint(30, 89)} {digits(7)}",
        "fr": f"0{rng.randint(1, 5)} {digits(2)} {digits(2)} {digits(2)} {digits(2)}",
        "es": f"+34 9{digits(2)} {digits(3)} {digits(3)}",
    }[locale]
    host = re.sub(r"[^a-z]", "", v["seller_name"].split()[0].lower())
    tld = {"en-US": "com", "en-GB": "co.uk", "de": "de", "fr": "fr", "es": "es"}[locale]
    v["email"] = f"{rng.choice(['info', 'billing', 'accounts', 'contact', 'sales'])}@{host}.{tld}"
    cc = {"en-US": "US", "en-GB": "GB", "de": "DE", "fr": "FR", "es": "ES"}[locale]
    iban_cc = "GB" if cc == "US" else cc
    raw = f"{iban_cc}{digits(2)}{digits(16 if iban_cc != 'FR' else 20)}"
    v["iban"] = (
        " ".join(raw[i : i + 4] for i in range(0, len(raw), 4)) if rng.random() < 0.7 else raw
    )
    v["vat_id"] = {"US": f"{digits(2)}-{digits(7)}", "GB": f"GB{digits(9)}",
                   "DE": f"DE{digits(9)}", "FR": f"FR{digits(11)}",
                   "ES": f"B{digits(8)}"}[cc]  # fmt: skip
    v["currency"] = {"en-US": "USD", "en-GB": "GBP"}.get(locale) or rng.choice(
        ["EUR", "EUR", "EUR", "CHF"]
    )
    v["payment_terms"] = rng.choice(TERMS_ENUM)
    return v


# -- drawing --------------------------------------------------------------------------------


class _Canvas:
    """Draw operations recorded per page (``y`` is a baseline), rendered at the end so that a
    receipt's height can follow its content."""

    def __init__(self, width: float, height: float | None, margin: float):
        self.w, self.h, self.margin = width, height, margin
        self.pages: list[list[tuple]] = [[]]
        self.y = margin + 10

    @property
    def page(self) -> int:
        return len(self.pages)

    def new_page(self) -> None:
        self.pages.append([])
        self.y = self.margin + 10

    def need(self, h: float) -> None:
        if self.h is not None and self.y + h > self.h - self.margin - 30:
            self.new_page()

    def text(self, x: float, y: float, s: str, font: str, size: float) -> None:
        x = max(x, 3.0)
        room = self.w - 3.0 - x
        w = _width(s, font, size)
        if w > room:  # shrink to fit the page (text off the page is not extracted)
            size = max(size * room / w, 4.0)
            w = _width(s, font, size)
            if w > room:
                x = max(3.0, self.w - 3.0 - w)
        self.pages[-1].append(("t", x, y, s, font, size))

    def rtext(self, xr: float, y: float, s: str, font: str, size: float) -> None:
        self.text(xr - _width(s, font, size), y, s, font, size)

    def ctext(self, xc: float, y: float, s: str, font: str, size: float) -> None:
        self.text(xc - _width(s, font, size) / 2, y, s, font, size)

    def rect(self, x0: float, y0: float, x1: float, y1: float) -> None:
        self.pages[-1].append(("r", x0, y0, x1, y1))

    def rule(self, x0: float, y: float, x1: float) -> None:
        self.pages[-1].append(("l", x0, y, x1))

    def render(self) -> bytes:
        import pymupdf

        doc = pymupdf.open()
        for ops in self.pages:
            h = self.h
            if h is None:
                h = max([op[2] for op in ops if op[0] == "t"] + [200]) + self.margin + 20
            page = doc.new_page(width=self.w, height=h)
            writer = pymupdf.TextWriter(page.rect)
            shape = page.new_shape()
            for op in ops:
                if op[0] == "t":
                    _, x, y, s, font, size = op
                    writer.append((x, y), s, font=_font(font), fontsize=size)
                elif op[0] == "r":
                    shape.draw_rect(pymupdf.Rect(*op[1:]))
                else:
                    _, x0, y, x1 = op
                    shape.draw_line((x0, y), (x1, y))
            shape.finish(color=(0, 0, 0), width=0.6)
            shape.commit()
            writer.write_text(page)
        return doc.tobytes(garbage=0, deflate=True)


@cache
def _font(name: str):
    import pymupdf

    return pymupdf.Font(name)


@lru_cache(maxsize=65536)
def _width(s: str, font: str, size: float) -> float:
    return _font(font).text_length(s, fontsize=size)


@dataclass
class _Ctx:
    rng: random.Random
    lang: str
    locale: str
    values: dict
    schema_keys: set[str]
    printed_keys: set[str]
    font: str
    size: float
    upper: bool
    colon: bool
    date_style: str
    amount_style: str
    cur_mode: str  # none | prefix | suffix
    printed: dict = field(default_factory=dict)
    fill_text: list[str] = field(default_factory=list)

    def label(self, key: str, colon: bool | None = None) -> str:
        text = self.rng.choice(ARCHETYPES[key][2][self.lang])
        if key == "tax" and self.rng.random() < 0.4:
            rate = self.values["rate"] * 100
            text += (
                f" {rate:g}%"
                if self.lang == "en"
                else f" {str(round(rate, 2)).replace('.', ',')} %"
            )
        if self.upper:
            text = text.upper()
        use = self.colon if colon is None else colon
        return text + ":" if use else text

    def value(self, key: str) -> str:
        """The printed form of ``key``'s value (multi-line values joined by newlines)."""
        v = self.values[key]
        kind = ARCHETYPES[key][0]
        if kind == "date":
            s = _fmt_date(v, self.date_style, self.lang)
        elif kind == "amount":
            s = _fmt_amount(v, self.amount_style)
            if self.cur_mode != "none" and "currency" not in self.schema_keys:
                cur = self.values["currency"]
                sym = {"USD": "$", "GBP": "£"}.get(cur)
                if self.cur_mode == "prefix":
                    s = f"{sym}{s}" if sym else f"{cur} {s}"
                else:
                    s = f"{s} {cur}"
        elif kind == "address":
            s = "\n".join(v)
        elif kind == "qty":
            s = str(v)
        elif kind == "terms":
            s = {"net 30": ["Net 30", "NET 30", "net 30 days", "Net 30 days"],
                 "net 60": ["Net 60", "NET 60", "net 60 days"],
                 "net 14": ["Net 14", "net 14 days", "NET 14"],
                 "immediate": ["Immediate", "Due immediately", "IMMEDIATE"]}[v][
                self.rng.randrange(3)]  # fmt: skip
        else:
            s = str(v)
        if key in self.schema_keys:
            self.printed[key] = s.replace("\n", " ")
        return s

    def bold(self) -> str:
        return _BOLD[self.font]


# layout styles for (label, value) pairs; each returns nothing and moves c.y


def _pairs(ctx: _Ctx, keys: list[str], colon: bool | None = None) -> list[tuple[str, str]]:
    return [(ctx.label(k, colon), ctx.value(k)) for k in keys]


def _style_colon(c: _Canvas, ctx: _Ctx, keys: list[str], x: float, right: float | None = None):
    size = ctx.size
    for k in keys:
        label = ctx.label(k, True if ctx.rng.random() < 0.9 else False)
        val = ctx.value(k)
        c.need(size * 1.5)
        s = f"{label} {val}"
        if right is not None:
            c.rtext(right, c.y, s, ctx.font, size)
        else:
            c.text(x, c.y, s, ctx.font, size)
        c.y += size * ctx.rng.uniform(1.35, 1.8)


def _style_tabstop(c: _Canvas, ctx: _Ctx, keys: list[str], x: float, right: float,
                   align_right: bool | None = None):  # fmt: skip
    size = ctx.size
    pairs = _pairs(ctx, keys)
    if not pairs:
        return
    lw = max(_width(lab, ctx.font, size) for lab, _ in pairs)
    x2 = x + lw + max(2.2 * size, ctx.rng.uniform(15, 60))
    if align_right is None:
        align_right = ctx.rng.random() < 0.4
    for lab, val in pairs:
        c.need(size * 1.5)
        c.text(x, c.y, lab, ctx.font, size)
        if align_right:
            c.rtext(max(right, x2 + _width(val, ctx.font, size)), c.y, val, ctx.font, size)
        else:
            c.text(x2, c.y, val, ctx.font, size)
        c.y += size * ctx.rng.uniform(1.35, 1.8)


def _style_stacked(c: _Canvas, ctx: _Ctx, keys: list[str], x: float, right: float):
    size = ctx.size
    small = max(7.0, size - ctx.rng.uniform(2, 4))
    pairs = _pairs(ctx, keys, colon=ctx.rng.random() < 0.3)
    cols = ctx.rng.randint(1, 3)
    colw = (right - x) / cols
    for i in range(0, len(pairs), cols):
        c.need(small + size * 2.5)
        for j, (lab, val) in enumerate(pairs[i : i + cols]):
            cx = x + j * colw
            c.text(cx, c.y, lab, ctx.font, small)
            c.text(
                cx, c.y + size * 1.25, val, ctx.bold() if ctx.rng.random() < 0.3 else ctx.font, size
            )
        c.y += size * 1.25 + size * ctx.rng.uniform(1.6, 2.2)


def _style_boxed(c: _Canvas, ctx: _Ctx, keys: list[str], x: float, right: float):
    size = ctx.size
    small = max(7.0, size - 3)
    pairs = _pairs(ctx, keys, colon=False)
    cols = ctx.rng.randint(2, 3)
    colw = (right - x) / cols
    bh = small + size + 10
    for i in range(0, len(pairs), cols):
        c.need(bh + 6)
        top = c.y - small
        for j, (lab, val) in enumerate(pairs[i : i + cols]):
            x0 = x + j * colw
            c.rect(x0, top, x0 + colw - 4, top + bh)
            c.text(x0 + 3, top + small + 1, lab, ctx.font, small)
            c.text(x0 + 6, top + small + size + 4, val, ctx.font, size)
        c.y = top + bh + small + ctx.rng.uniform(4, 10)


def _style_header_row(c: _Canvas, ctx: _Ctx, keys: list[str], x: float, right: float):
    size = ctx.size
    pairs = _pairs(ctx, keys, colon=False)
    per = ctx.rng.randint(2, 4)
    for i in range(0, len(pairs), per):
        row = pairs[i : i + per]
        colw = (right - x) / len(row)
        c.need(size * 4)
        c.rule(x, c.y - size - 2, right)
        for j, (lab, _) in enumerate(row):
            c.text(x + j * colw + 2, c.y, lab, ctx.bold(), size - 1)
        c.rule(x, c.y + 4, right)
        for j, (_, val) in enumerate(row):
            c.text(x + j * colw + 2, c.y + size * 1.6, val, ctx.font, size)
        c.y += size * 1.6 + size * ctx.rng.uniform(2.0, 2.6)


def _style_letter(c: _Canvas, ctx: _Ctx, keys: list[str], x: float):
    size = ctx.size
    keys = list(keys)
    while keys:
        if ARCHETYPES[keys[0]][0] == "company":  # a name in running text: after a colon
            k = keys.pop(0)
            s = f"{ctx.label(k, False)}: {ctx.value(k)}"
            if ctx.rng.random() < 0.5:
                s = f"{ctx.rng.choice(_LETTER_INTRO[ctx.lang])} {s}"
        else:
            take = [keys.pop(0)]
            if keys and ARCHETYPES[keys[0]][0] != "company" and ctx.rng.random() < 0.5:
                take.append(keys.pop(0))
            phrases = [f"{ctx.label(k, False)} {ctx.value(k)}" for k in take]
            s = f"{ctx.rng.choice(_LETTER_INTRO[ctx.lang])} " + ", ".join(phrases) + "."
        c.need(size * 1.5)
        c.text(x, c.y, s, ctx.font, size)
        c.y += size * ctx.rng.uniform(1.4, 1.7)


def _block(c: _Canvas, ctx: _Ctx, lines: list[str], x: float, font: str, size: float,
           centre: float | None = None):  # fmt: skip
    for ln in lines:
        if centre is not None:
            c.ctext(centre, c.y, ln, font, size)
        else:
            c.text(x, c.y, ln, font, size)
        c.y += size * 1.25


#: a receipt's greeting above the shop's name (courtesy text is never a field's value)
_WELCOME = {"en": ["Welcome to", "WELCOME", "Thank you for visiting", "Welcome To The"],
            "de": ["Willkommen bei", "Herzlich willkommen", "Danke für Ihren Besuch"],
            "fr": ["Bienvenue chez", "BIENVENUE", "Merci de votre visite"],
            "es": ["Bienvenido a", "BIENVENIDOS", "Gracias por su visita"]}  # fmt: skip

_SHIP_TO = {"en": ["Ship To", "Deliver To", "Delivery Address", "Shipping Address"],
            "de": ["Lieferanschrift", "Lieferadresse", "Warenempfänger"],
            "fr": ["Adresse de livraison", "Livrer à", "Lieu de livraison"],
            "es": ["Dirección de envío", "Entregar a", "Lugar de entrega"]}  # fmt: skip


def _party(c: _Canvas, ctx: _Ctx, who: str, x: float, centre: float | None = None,
           big: bool = False, labelled: float = 0.3, beside: tuple | None = None):  # fmt: skip
    """A name (optionally labelled) with its address block below; ``beside`` = (random
    generator, x): sometimes a labelled delivery address of the same shape stands there,
    its heading on the label's row (what is beside a label is not always its value)."""
    name_key, addr_key = f"{who}_name", f"{who}_address"
    size = ctx.rng.uniform(14, 18) if big else ctx.size
    c.need(size * 5)
    top, heading = c.y, None
    if name_key in ctx.printed_keys:
        name = ctx.value(name_key)
        if ctx.rng.random() < labelled:
            if ctx.rng.random() < 0.5:
                heading = ctx.font
                c.text(x, c.y, ctx.label(name_key), heading, ctx.size - 1)
                c.y += ctx.size * 1.4
            else:
                name = f"{ctx.label(name_key, True)} {name}"
                size = ctx.size
        c.y += size * 0.3
        # a shop's name over two centred lines of one size (its own generator: other
        # documents unchanged); the value is the whole name
        words = name.split()
        if centre is not None and big and len(words) > 1 and random.Random(name).random() < 0.35:
            cut = random.Random(f"cut-{name}").randint(1, len(words) - 1)
            _block(c, ctx, [" ".join(words[:cut]), " ".join(words[cut:])], x, ctx.bold(), size,
                   centre)  # fmt: skip
        else:
            _block(c, ctx, [name], x, ctx.bold(), size, centre)
    if addr_key in ctx.printed_keys:
        _block(c, ctx, ctx.value(addr_key).split("\n"), x, ctx.font, ctx.size, centre)
    if beside is not None and heading is not None and centre is None:
        rng, bx = beside
        if rng.random() < 0.4:
            end, c.y = c.y, top
            label = rng.choice(_SHIP_TO[ctx.lang])
            label = (label.upper() if ctx.upper else label) + (":" if ctx.colon else "")
            c.text(bx, c.y, label, heading, ctx.size - 1)
            c.y += ctx.size * 1.7
            who = _company(rng, ctx.lang) if rng.random() < 0.5 else ctx.values[name_key]
            _block(c, ctx, [who, *_address(rng, ctx.locale)], bx, ctx.font, ctx.size)
            c.y = max(c.y, end)
    c.y += ctx.size * 0.8


def _table(c: _Canvas, ctx: _Ctx, x: float, right: float, receipt: bool = False):
    size = ctx.size
    items = ctx.values["items"]
    if receipt:
        for desc, qty, unit, amount in items:
            c.need(size * 3)
            c.text(x, c.y, desc if qty == 1 else f"{desc}", ctx.font, size)
            if qty > 1:
                c.y += size * 1.2
                c.text(x + 8, c.y, f"{qty} x {_fmt_amount(unit, ctx.amount_style)}", ctx.font, size)
            c.rtext(right, c.y, _fmt_amount(amount, ctx.amount_style), ctx.font, size)
            c.y += size * 1.35
        c.y += size * 0.5
        return
    heads = _HEADERS[ctx.lang]
    if ctx.upper:
        heads = tuple(h.upper() for h in heads)
    w = right - x
    cols = (x, x + w * ctx.rng.uniform(0.45, 0.55), x + w * 0.72, right)
    c.need(size * 4)
    c.rule(x, c.y - size - 3, right)
    c.text(cols[0] + 2, c.y, heads[0], ctx.bold(), size)
    c.rtext(cols[1] + 30, c.y, heads[1], ctx.bold(), size)
    c.rtext(cols[2] + 40, c.y, heads[2], ctx.bold(), size)
    c.rtext(cols[3] - 2, c.y, heads[3], ctx.bold(), size)
    c.rule(x, c.y + 4, right)
    c.y += size * 1.7
    for desc, qty, unit, amount in items:
        c.need(size * 2)
        c.text(cols[0] + 2, c.y, desc, ctx.font, size)
        c.rtext(cols[1] + 30, c.y, str(qty), ctx.font, size)
        c.rtext(cols[2] + 40, c.y, _fmt_amount(unit, ctx.amount_style), ctx.font, size)
        c.rtext(cols[3] - 2, c.y, _fmt_amount(amount, ctx.amount_style), ctx.font, size)
        c.y += size * ctx.rng.uniform(1.4, 1.7)
    c.rule(x, c.y - size + 2, right)
    c.y += size * 0.8


def _build(seed: int, template: str, fields: list[tuple[str, int]] | None) -> GeneratedDoc:
    rng = random.Random(seed)
    lang = rng.choice(LANGUAGES)
    locale = lang
    if lang == "en":
        locale = "en-US" if rng.random() < 0.6 else "en-GB"
    receipt = template == "receipt"
    if fields is None:
        fields = _pick_fields(rng)
    schema_keys = {k for k, _ in fields}
    values = _values(rng, lang, locale, receipt)
    # distractors: what else is printed
    printed = set(schema_keys) | {"seller_name", "total", "issue_date"}
    if not receipt or rng.random() < 0.3:
        printed |= {"seller_address", "buyer_name"}
        if rng.random() < 0.85:
            printed.add("buyer_address")
    elif rng.random() < 0.6:
        printed.add("seller_address")
    for k in SCHEMA_ARCHETYPES + ("print_date", "ticket"):
        if k not in printed and rng.random() < (0.75 if k in ("subtotal", "tax") else 0.35):
            printed.add(k)
    if "buyer_address" in printed:
        printed.add("buyer_name")
    font = rng.choice(_FONTS)
    ctx = _Ctx(
        rng=rng, lang=lang, locale=locale, values=values, schema_keys=schema_keys,
        printed_keys=printed, font=font,
        size=rng.uniform(7.5, 9.5) if receipt else rng.uniform(8.5, 11.5),
        upper=rng.random() < 0.2, colon=rng.random() < 0.7,
        date_style=rng.choice(_DATE_FORMATS[locale]),
        amount_style=rng.choice(_AMOUNT_STYLES[lang]),
        cur_mode=rng.choice(["none", "prefix", "suffix"]),
    )  # fmt: skip
    if template == "colon":
        ctx.colon = True
    kind = (
        "receipt"
        if receipt
        else rng.choice(
            ["invoice", "invoice", "order", "contract", "statement", "delivery", "form"]
        )
    )
    if receipt:
        width, height, margin = rng.uniform(200, 240), None, rng.uniform(10, 16)
    elif locale == "en-US" and rng.random() < 0.7:
        width, height, margin = 612.0, 792.0, rng.uniform(36, 72)
    else:
        width, height, margin = 595.0, 842.0, rng.uniform(36, 72)
    c = _Canvas(width, height, margin)
    x, right = margin, width - margin
    multi = not receipt and rng.random() < 0.15

    meta = [k for k in _META if k in printed]
    rng.shuffle(meta)
    if "issue_date" in meta and template != "letter":  # the date tends to come first
        meta.remove("issue_date")
        meta.insert(rng.randint(0, min(2, len(meta))), "issue_date")
    contact = [k for k in _CONTACT if k in printed]
    totals = [k for k in _TOTALS if k in printed]
    iban = "iban" in printed

    # header: the seller
    centre = width / 2 if receipt else None
    # a delivery address beside the buyer's (its own generator: other documents unchanged)
    ship = (random.Random(f"ship-{seed}"), x + (right - x) * 0.5)
    if template == "two_column":
        top = c.y
        _party(c, ctx, "seller", x, big=True, labelled=0.1)
        _style_tabstop(c, ctx, contact, x, x + (right - x) * 0.45, align_right=False) if rng.random() < 0.5 \
            else _style_colon(c, ctx, contact, x)  # fmt: skip
        left_end = c.y
        c.y = top
        mx = x + (right - x) * rng.uniform(0.52, 0.6)
        c.text(mx, c.y, _TITLES[kind][lang], ctx.bold(), ctx.size + 5)
        c.y += ctx.size * 2.2
        style = rng.choice(["colon", "tabstop"])
        head = meta[: max(1, len(meta) * 2 // 3)]
        meta = meta[len(head) :]
        if style == "colon":
            _style_colon(c, ctx, head, mx)
        else:
            _style_tabstop(c, ctx, head, mx, right)
        c.y = max(c.y, left_end) + ctx.size * 1.5
        _party(c, ctx, "buyer", x + rng.uniform(0, 40), labelled=0.7, beside=ship)
    else:
        title = _TITLES[kind][lang]
        # the title on the letterhead's row, the seller on the other side (drawn from a
        # generator of its own: the other documents of a seed stay as they were)
        side = random.Random(f"beside-{seed}")
        beside = not receipt and side.random() < 0.3
        if beside:
            c.text(x, c.y, title, ctx.bold(), ctx.size + side.uniform(6, 12))
            _party(c, ctx, "seller", x + (right - x) * side.uniform(0.5, 0.65), big=True,
                   labelled=0.1)  # fmt: skip
        else:
            greet = random.Random(f"greet-{seed}")
            if receipt and greet.random() < 0.35:
                c.ctext(centre, c.y, greet.choice(_WELCOME[lang]), ctx.font,
                        ctx.size + greet.uniform(0, 5))  # fmt: skip
                c.y += ctx.size * 1.6
            _party(c, ctx, "seller", x, centre=centre, big=True, labelled=0.1)
        if contact:
            if receipt:
                for k in contact:
                    c.ctext(centre, c.y, f"{ctx.label(k)} {ctx.value(k)}", ctx.font, ctx.size)
                    c.y += ctx.size * 1.3
            elif template == "stacked" or rng.random() < 0.3:
                _style_stacked(c, ctx, contact, x, right)
            else:
                _style_colon(c, ctx, contact, x)
        c.y += ctx.size
        if receipt:
            c.ctext(centre, c.y, title, ctx.bold(), ctx.size + 2)
        elif not beside:
            c.text(x if rng.random() < 0.6 else right - _width(title, ctx.bold(), ctx.size + 6),
                   c.y, title, ctx.bold(), ctx.size + 6)  # fmt: skip
        c.y += ctx.size * 2.2
        if template == "letter":
            c.y += ctx.size
            _party(c, ctx, "buyer", x, labelled=0.0)
            if "issue_date" in meta:  # "Berlin, 05.03.2021": an unlabelled date
                meta.remove("issue_date")
                city = values["seller_address"][1].split()[-1].strip(",")
                c.rtext(right, c.y, f"{city}, {ctx.value('issue_date')}", ctx.font, ctx.size)
                c.y += ctx.size * 2.5
        elif not receipt and rng.random() < 0.5:
            _party(c, ctx, "buyer", x + rng.uniform(0, 60), labelled=0.7, beside=ship)

    # the meta block
    if template == "colon" or template == "two_column":
        _style_colon(c, ctx, meta, x + rng.uniform(0, 150))
    elif template == "tabstop":
        _style_tabstop(c, ctx, meta, x + rng.uniform(0, 120), right)
    elif template == "stacked":
        _style_stacked(c, ctx, meta, x, right)
    elif template == "boxed":
        _style_boxed(c, ctx, meta, x, right)
    elif template == "table_header":
        _style_header_row(c, ctx, meta, x, right)
    elif template == "letter":
        _style_letter(c, ctx, meta, x)
    elif receipt:
        for k in meta:
            lab, val = ctx.label(k), ctx.value(k)
            c.need(ctx.size * 2)
            if rng.random() < 0.5:
                c.text(x, c.y, lab, ctx.font, ctx.size)
                c.rtext(right, c.y, val, ctx.font, ctx.size)
            else:
                c.ctext(centre, c.y, f"{lab} {val}", ctx.font, ctx.size)
            c.y += ctx.size * 1.35
        c.y += ctx.size * 0.5
    if (
        template not in ("two_column", "letter")
        and "buyer_name" in printed
        and not any(
            op[0] == "t" and op[3].endswith(values["buyer_name"]) for pg in c.pages for op in pg
        )
    ):
        _party(c, ctx, "buyer", x + rng.uniform(0, 60), centre=centre, labelled=0.7,
               beside=ship)  # fmt: skip
    if not receipt and rng.random() < 0.6:
        c.text(x, c.y, rng.choice(_FILLER[lang]), ctx.font, ctx.size)
        c.y += ctx.size * 2
    if multi:
        c.new_page()
    _table(c, ctx, x, right, receipt=receipt)

    # totals
    tx = x + (right - x) * rng.uniform(0.45, 0.6)
    if receipt:
        for k in totals:
            lab, val = ctx.label(k), ctx.value(k)
            big = k == "total"
            font, size = (ctx.bold(), ctx.size + 2) if big else (ctx.font, ctx.size)
            if big and rng.random() < 0.5:
                lab = lab.upper()
            c.text(x, c.y, lab, font, size)
            c.rtext(right, c.y, val, font, size)
            c.y += size * 1.5
    elif template == "boxed" and rng.random() < 0.6:
        _style_boxed(c, ctx, totals, tx - 60, right)
    elif template == "table_header" and rng.random() < 0.5:
        _style_header_row(c, ctx, totals, x, right)
    elif template == "letter" and rng.random() < 0.6:
        _style_letter(c, ctx, totals, x)
    elif template == "stacked" and rng.random() < 0.4:
        _style_stacked(c, ctx, totals, tx, right)
    elif template == "colon" and rng.random() < 0.5:
        _style_colon(c, ctx, totals, tx, right=right)
    else:
        _style_tabstop(c, ctx, totals, tx, right, align_right=True)
    c.y += ctx.size
    if iban:
        c.need(ctx.size * 3)
        s = f"{ctx.label('iban', rng.random() < 0.7)} {ctx.value('iban')}"
        if receipt:
            c.ctext(centre, c.y, s, ctx.font, ctx.size - 1)
        else:
            c.text(x, c.y, s, ctx.font, ctx.size)
        c.y += ctx.size * 1.6
    if rng.random() < 0.7:
        s = rng.choice(_FILLER[lang])
        if receipt:
            c.ctext(centre, c.y + ctx.size, s if _width(s, ctx.font, ctx.size - 1) < width - 2 * margin
                    else _FILLER[lang][0], ctx.font, ctx.size - 1)  # fmt: skip
        else:
            c.text(x, c.y + ctx.size, s, ctx.font, ctx.size)
    # footers
    if not receipt:
        n = len(c.pages)
        for i, ops in enumerate(c.pages):
            parts = [] if "seller_name" in schema_keys else [values["seller_name"]]
            parts.append(_PAGE[lang].format(i + 1, n))
            ops.append(("t", x, height - margin * 0.6, "  ·  ".join(parts), font, 7))
    pdf = c.render()
    truth = {}
    for k, spelling in fields:
        name = ARCHETYPES[k][1][spelling][0]
        v = values[k]
        kind_ = ARCHETYPES[k][0]
        if kind_ == "date":
            truth[name] = v.isoformat()
        elif kind_ == "amount":
            truth[name] = round(v / 100, 2)
        elif kind_ == "address":
            truth[name] = " ".join(v)
        else:
            truth[name] = v
    printed_forms = {ARCHETYPES[k][1][s][0]: ctx.printed[k] for k, s in fields if k in ctx.printed}
    return GeneratedDoc(
        pdf=pdf, schema=_schema(fields), truth=truth, template=template, language=lang,
        seed=seed, printed=printed_forms, dayfirst=locale != "en-US",
        decimal_comma=lang != "en", pages=len(c.pages),
    )  # fmt: skip


def _pick_fields(rng: random.Random) -> list[tuple[str, int]]:
    keys = rng.sample(SCHEMA_ARCHETYPES, rng.randint(4, 8))
    return [(k, rng.randrange(len(ARCHETYPES[k][1]))) for k in keys]


def _node(key: str, desc: str, rng_pick: int) -> dict:
    kind = ARCHETYPES[key][0]
    if kind == "date":
        node = dict(_DATE)
    elif kind == "amount":
        node = dict(_NUM)
    elif kind == "qty":
        node = {"type": "integer"}
    elif kind == "currency":
        node = {"type": "string", "pattern": "^[A-Z]{3}$"}
    elif kind == "terms":
        node = {"type": "string", "enum": list(TERMS_ENUM)}
    elif kind == "email" and rng_pick % 2 == 0:
        node = {"type": "string", "format": "email"}
    else:
        node = dict(_STR)
    node["description"] = desc
    return node


def _schema(fields: list[tuple[str, int]]) -> dict:
    props = {}
    for k, s in fields:
        name, desc = ARCHETYPES[k][1][s]
        props[name] = _node(k, desc, s)
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "type": "object",
        "properties": props,
    }


def generate(seed: int, template: str | None = None, scan: bool = False) -> GeneratedDoc:
    """One document; the same seed (and template) gives the same document."""
    if template is None:
        template = random.Random(f"template-{seed}").choice(TEMPLATES)
    if template not in TEMPLATES:
        raise ValueError(f"unknown template {template!r}; known: {', '.join(TEMPLATES)}")
    doc = _build(seed, template, None)
    doc.scan = scan
    return doc


# -- pages ----------------------------------------------------------------------------------

_CONFUSIONS = {"O": "0", "0": "O", "l": "1", "1": "l", "I": "1", "S": "5", "5": "S",
               "B": "8", "8": "B"}  # fmt: skip


def _noisy(words: list[tuple], rng: random.Random) -> list[Word]:
    """OCR-like damage: confused characters, lost colons, jittered boxes, split/merged words."""
    out: list[Word] = []
    for x0, y0, x1, y1, text in words:
        conf = rng.uniform(0.8, 0.99)
        chars = list(text)
        for i, ch in enumerate(chars):
            if ch in _CONFUSIONS and rng.random() < 0.03:
                chars[i] = _CONFUSIONS[ch]
                conf = min(conf, rng.uniform(0.4, 0.8))
        text = "".join(chars)
        if "rn" in text and rng.random() < 0.15:
            text = text.replace("rn", "m", 1)
            conf = min(conf, 0.7)
        if text.endswith(":") and rng.random() < 0.25:
            text = text[:-1]
            x1 -= (x1 - x0) / max(len(text) + 1, 1)
        if not text:
            continue
        j = lambda: rng.gauss(0, 1.0)  # noqa: E731
        x0, y0, x1, y1 = x0 + j(), y0 + j(), max(x1 + j(), x0 + 2), max(y1 + j(), y0 + 3)
        prev = out[-1] if out else None
        if (
            prev is not None and rng.random() < 0.03 and abs(prev.bbox[1] - y0) < 3
            and 0 < x0 - prev.bbox[2] < 0.6 * (y1 - y0)
        ):  # fmt: skip
            b = prev.bbox
            out[-1] = Word(text=prev.text + text, bbox=(b[0], min(b[1], y0), x1, max(b[3], y1)),
                           conf=min(prev.conf, conf, 0.6), origin="ocr")  # fmt: skip
            continue
        if len(text) >= 6 and rng.random() < 0.02:
            k = rng.randint(2, len(text) - 2)
            xm = x0 + (x1 - x0) * k / len(text)
            out.append(
                Word(text=text[:k], bbox=(x0, y0, xm - 1, y1), conf=min(conf, 0.6), origin="ocr")
            )
            out.append(
                Word(text=text[k:], bbox=(xm + 2, y0, x1, y1), conf=min(conf, 0.6), origin="ocr")
            )
            continue
        out.append(Word(text=text, bbox=(x0, y0, x1, y1), conf=conf, origin="ocr"))
    return out


def pages_of(doc: GeneratedDoc) -> list[Page]:
    import pymupdf

    from docvlm.render.pdf import text_layer

    pages = []
    rng = random.Random(f"scan-{doc.seed}")
    with pymupdf.open(stream=doc.pdf, filetype="pdf") as pdf:
        for n, page in enumerate(pdf, 1):
            if doc.scan:
                raw = [(w[0] * _SCALE, w[1] * _SCALE, w[2] * _SCALE, w[3] * _SCALE, w[4])
                       for w in page.get_text("words")]  # fmt: skip
                words = _noisy(raw, rng)
            else:  # the text layer as the product reads it
                words = text_layer(page, _SCALE)
            pages.append(Page(
                number=n, width=int(round(page.rect.width * _SCALE)),
                height=int(round(page.rect.height * _SCALE)), dpi=DPI, has_text_layer=True,
                words=words, lines=build_lines(words, n),
            ))  # fmt: skip
    return pages


@lru_cache(maxsize=4096)
def _spec(schema_json: str):
    from docvlm.schema import schema_from_dict

    return schema_from_dict(json.loads(schema_json), "generated")


def to_labelled(doc: GeneratedDoc, name: str):
    from docvlm.read.learned.train import LabelledDoc

    return LabelledDoc(
        name=name, pages=pages_of(doc), schema=_spec(json.dumps(doc.schema, sort_keys=True)),
        truth=dict(doc.truth), source="generated",
        meta={"template": doc.template, "language": doc.language, "scan": doc.scan},
    )  # fmt: skip


def generate_labelled(
    n: int, seed: int = 0, templates: tuple[str, ...] = TRAIN_TEMPLATES, scan_share: float = 0.25
) -> list:
    rng = random.Random(seed)
    out = []
    for i in range(n):
        s = seed * 100000 + i
        template = rng.choice(templates)
        scan = rng.random() < scan_share
        doc = generate(s, template, scan)
        out.append(to_labelled(doc, f"gen-{template}-{s}.pdf"))
    return out


def write_folder(
    folder, n: int, seed: int = 0, templates: tuple[str, ...] = TRAIN_TEMPLATES
) -> Path:
    """``n`` PDFs with ``labels/<stem>.json`` and one ``schema.json`` for the whole folder."""
    folder = Path(folder)
    (folder / "labels").mkdir(parents=True, exist_ok=True)
    rng = random.Random(f"folder-{seed}")
    fields = _pick_fields(rng)
    for i in range(n):
        s = seed * 100000 + i
        template = rng.choice(templates)
        doc = _build(s, template, fields)
        stem = f"gen-{template}-{s}"
        (folder / f"{stem}.pdf").write_bytes(doc.pdf)
        (folder / "labels" / f"{stem}.json").write_text(json.dumps(doc.truth, indent=1),
                                                         encoding="utf-8")  # fmt: skip
    (folder / "schema.json").write_text(json.dumps(_schema(fields), indent=1), encoding="utf-8")
    return folder


# -- self-check -----------------------------------------------------------------------------


def pdf_text(doc: GeneratedDoc) -> str:
    import pymupdf

    with pymupdf.open(stream=doc.pdf, filetype="pdf") as pdf:
        return " ".join(" ".join(p.get_text("text").split()) for p in pdf)


def _check(doc: GeneratedDoc) -> None:
    """Assert that every truth value is printed, and that its printed form reads back as it."""
    text = pdf_text(doc)
    props = doc.schema["properties"]
    for key, value in doc.truth.items():
        shown = doc.printed.get(key)
        assert shown is not None, f"{key}: never printed"
        assert " ".join(shown.split()) in text, f"{key}: {shown!r} not in the PDF text"
        node = props[key]
        if node.get("format") == "date":
            got = parse_date(shown, doc.dayfirst)
            assert got == value, f"{key}: {shown!r} reads {got}, truth {value}"
        elif node["type"] in ("number", "integer"):
            got = parse_amount(shown, doc.decimal_comma)
            assert got is not None and abs(got - value) < 0.005, f"{key}: {shown!r} reads {got}"
        elif "enum" in node:
            assert value in node["enum"] and compact(value) in compact(shown), (key, shown)
        else:
            assert compact(shown) == compact(value), f"{key}: {shown!r} vs {value!r}"
