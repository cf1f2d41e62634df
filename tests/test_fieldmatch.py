"""Schema fields to EN 16931 terms by the fields' own words, in English, German and French."""

from __future__ import annotations

import pytest

from docvlm.einvoice.mapping import map_schema
from docvlm.read.fieldmatch import match_fields, similarity
from docvlm.schema import load_schema, schema_from_dict


def _schema(props: dict, name: str = "s"):
    return schema_from_dict({"type": "object", "properties": props}, name)


def test_shipped_invoice_schema_maps_every_field(invoice_schema) -> None:
    mapping = map_schema(load_schema(invoice_schema)).describe()
    assert mapping == {
        "invoice_number": "BT-1", "issue_date": "BT-2", "due_date": "BT-9", "currency": "BT-5",
        "seller.name": "BT-27", "seller.address": "BG-5", "buyer.name": "BT-44",
        "buyer.address": "BG-8", "subtotal": "BT-109", "tax": "BT-110", "total": "BT-112",
        "line_items[].description": "BT-153", "line_items[].quantity": "BT-129",
        "line_items[].unit_price": "BT-146", "line_items[].amount": "BT-131",
    }  # fmt: skip


@pytest.mark.parametrize(
    ("props", "expected"),
    [
        (
            {"rechnungsnummer": "string", "rechnungsdatum": "date", "faellig_am": "date",
             "lieferant": "string", "kunde": "string", "nettobetrag": "number", "mwst": "number",
             "gesamtbetrag": "number", "zahlbetrag": "number", "waehrung": "string"},
            {"rechnungsnummer": "BT-1", "rechnungsdatum": "BT-2", "faellig_am": "BT-9",
             "lieferant": "BT-27", "kunde": "BT-44", "nettobetrag": "BT-109", "mwst": "BT-110",
             "gesamtbetrag": "BT-112", "zahlbetrag": "BT-115", "waehrung": "BT-5"},
        ),
        (
            {"numero_facture": "string", "date_facture": "date", "date_echeance": "date",
             "fournisseur": "string", "client": "string", "montant_ht": "number",
             "montant_tva": "number", "montant_ttc": "number", "net_a_payer": "number", "devise": "string"},
            {"numero_facture": "BT-1", "date_facture": "BT-2", "date_echeance": "BT-9",
             "fournisseur": "BT-27", "client": "BT-44", "montant_ht": "BT-109", "montant_tva": "BT-110",
             "montant_ttc": "BT-112", "net_a_payer": "BT-115", "devise": "BT-5"},
        ),
        (
            {"invoiceNo": "string", "billDate": "date", "vendorName": "string", "customerName": "string",
             "vendorVatId": "string", "grandTotal": "number", "amountDue": "number", "poNumber": "string"},
            {"invoiceNo": "BT-1", "billDate": "BT-2", "vendorName": "BT-27", "customerName": "BT-44",
             "vendorVatId": "BT-31", "grandTotal": "BT-112", "amountDue": "BT-115", "poNumber": "BT-13"},
        ),
    ],
    ids=["de", "fr", "en-camel"],
)  # fmt: skip
def test_field_names_in_three_languages(props: dict, expected: dict) -> None:
    def node(kind: str) -> dict:
        return {"type": "string", "format": "date"} if kind == "date" else {"type": kind}

    mapping = map_schema(_schema({k: node(v) for k, v in props.items()})).describe()
    assert mapping == expected


def test_unrelated_fields_and_wrong_types_stay_unmatched() -> None:
    spec = _schema({
        "weather": {"type": "string", "description": "Sky over the shop"},
        "total": {"type": "boolean", "title": "Total"},  # no term is a boolean
        "notes": {"type": "string", "title": "Notes"},
    })  # fmt: skip
    assert map_schema(spec).describe() == {}


def test_titles_and_descriptions_decide_when_names_do_not() -> None:
    spec = _schema({
        "f1": {"type": "number", "title": "Brutto", "description": "Gesamtbetrag inkl. MwSt"},
        "f2": {"type": "number", "description": "Balance due."},
        "f3": {"type": "string", "format": "date", "description": "Date d'échéance"},
    })  # fmt: skip
    assert map_schema(spec).describe() == {"f1": "BT-112", "f2": "BT-115", "f3": "BT-9"}


def test_similarity_and_one_to_one_assignment() -> None:
    assert similarity("Rechnungs-Nr.", "Rechnungsnummer") > similarity(
        "Rechnungs-Nr.", "Bestellnummer"
    )
    assert similarity("invoice no", "Invoice number") > 0.5
    spec = _schema({"total": {"type": "number"}, "grand_total": {"type": "number"}})
    from docvlm.einvoice.mapping import compatible
    from docvlm.einvoice.terms import TERMS

    got = match_fields(
        spec.fields, [t for t in TERMS if t.level == "header"], compatible=compatible
    )
    assert len({m.concept for m in got.values()}) == len(got)  # no term twice
