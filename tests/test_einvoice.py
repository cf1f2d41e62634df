"""E-invoices: embedded CII (ZUGFeRD 1 and 2), standalone CII and UBL, credit notes, hostile
XML, the page cross-check, schema pins, and PDFs without XML left as they were."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from einvoice_samples import (
    BILLION_LAUGHS,
    XXE,
    Sample,
    cii_d16b,
    cii_zugferd1,
    make_pdf,
    page_lines,
    ubl,
)

from docvlm.datamodel import PipelineOptions
from docvlm.errors import SchemaError
from docvlm.pipeline import extract
from docvlm.schema import load_schema, schema_from_dict
from docvlm.sources import inspect_file, sniff

FAST = {"detect": {"enabled": False}}  # born-digital test pages need no layout model


def _opts(**einvoice) -> PipelineOptions:
    return PipelineOptions.model_validate({**FAST, "einvoice": einvoice})


def _prov(result, doc: int = 0) -> dict[str, object]:
    return {v.path: v for v in result.results[doc].values}


def _errors(result, doc: int = 0, kind: str | None = None) -> list:
    return [e for e in result.results[doc].errors if kind is None or e.error_type == kind]


@pytest.fixture(scope="module")
def schema(invoice_schema):
    return load_schema(invoice_schema)


def _check_header(record: dict, s: Sample) -> None:
    assert record["invoice_number"] == s.number
    assert record["issue_date"] == s.issue and record["due_date"] == s.due
    assert record["seller"]["name"] == s.seller and record["buyer"]["name"] == s.buyer
    assert record["seller"]["address"] == f"{s.seller_street}, {s.seller_zip} {s.seller_city}, DE"
    assert record["currency"] == s.currency
    assert (record["subtotal"], record["tax"], record["total"]) == (s.net, s.tax, s.total)
    assert [
        (i["description"], i["quantity"], i["unit_price"], i["amount"])
        for i in record["line_items"]
    ] == s.lines


@pytest.mark.parametrize(
    ("name", "build", "root"),
    [
        ("factur-x.xml", cii_d16b, "CrossIndustryInvoice"),
        ("ZUGFeRD-invoice.xml", cii_zugferd1, "CrossIndustryDocument"),
    ],
    ids=["zugferd2-facturx", "zugferd1"],
)
def test_embedded_cii_wins_with_xpath_and_page_box(
    tmp_path: Path, schema, name, build, root
) -> None:
    s = Sample()
    pdf = make_pdf(tmp_path / "inv.pdf", page_lines(s), {name: build(s)})
    result = extract(pdf, schema, _opts())
    res = result.results[0]
    assert res.status.value == "success", res.errors
    _check_header(res.record, s)
    prov = _prov(result)
    total = prov["total"]
    assert (total.reader, total.confidence, total.raw) == ("einvoice", 1.0, "3570.00")
    assert total.xpath.startswith(f"/rsm:{root}/") and total.xpath.endswith("ram:GrandTotalAmount")
    # the box is where the page prints 3.570,00: the 'Gesamtbetrag' line (19th line, y = 60 + 16*18)
    assert total.page == 1 and total.bbox is not None
    y_pt = (total.bbox[1] + total.bbox[3]) / 2 * 72 / 150
    assert abs(y_pt - (60 + 16 * page_lines(s).index("Gesamtbetrag: 3.570,00 EUR"))) < 12
    assert (
        prov["line_items/1/amount"].xpath.endswith(
            "IncludedSupplyChainTradeLineItem[2]/ram:SpecifiedLineTradeSettlement/ram:SpecifiedTradeSettlementLineMonetarySummation/ram:LineTotalAmount"
        )
        or root == "CrossIndustryDocument"
    )
    assert all(v.reader == "einvoice" and v.page == 1 for v in res.values)
    tables = result.tables
    row = tables["provenance"][tables["provenance"]["field"] == "total"].iloc[0]
    assert row["xpath"] == total.xpath and row["reader"] == "einvoice"


def test_tax_total_in_the_invoice_currency_is_taken(tmp_path: Path, schema) -> None:
    s = Sample()  # the CII sample states BT-110 in USD first, then in EUR
    xml = tmp_path / "inv.xml"
    xml.write_bytes(cii_d16b(s))
    result = extract(xml, schema, _opts())
    assert result.results[0].record["tax"] == s.tax


def test_standalone_cii_and_ubl_are_sniffed_and_read_without_pages(tmp_path: Path, schema) -> None:
    s = Sample()
    cii = tmp_path / "xrechnung_cii.dat"  # the extension says nothing: the bytes do
    cii.write_bytes(
        cii_d16b(s, profile="urn:cen.eu:en16931:2017#compliant#urn:xeinkauf.de:kosit:xrechnung_3.0")
    )
    peppol = tmp_path / "peppol.xml"
    peppol.write_bytes(ubl(s))
    assert (
        inspect_file(cii).mime == "application/xml"
        and inspect_file(peppol).mime == "application/xml"
    )
    result = extract([cii, peppol], schema, _opts(), out_dir=tmp_path / "out")
    for i in (0, 1):
        res = result.results[i]
        assert res.status.value == "success", res.errors
        _check_header(res.record, s)
        assert res.pages == 0
        assert all(v.page is None and v.bbox is None and v.reader == "einvoice" for v in res.values)
    ubl_total = _prov(result, 1)["total"]
    assert ubl_total.xpath == "/Invoice/cac:LegalMonetaryTotal/cbc:TaxInclusiveAmount"
    assert _prov(result, 1)["due_date"].xpath == "/Invoice/cbc:DueDate"
    records = pd.read_parquet(tmp_path / "out" / "invoice.parquet")
    assert list(records["status"]) == ["success", "success"]
    items = pd.read_parquet(tmp_path / "out" / "invoice__line_items.parquet")
    assert len(items) == 4 and set(items["description"]) == {"Solarmodul 400 W", "Montage"}


def test_credit_notes_keep_or_flip_their_sign(tmp_path: Path, schema) -> None:
    s = Sample(number="GS-2024-007")
    credit = tmp_path / "credit.xml"
    credit.write_bytes(ubl(s, credit_note=True))
    as_written = extract(credit, schema, _opts()).results[0]
    assert as_written.record["total"] == s.total and as_written.record["due_date"] == s.due
    assert as_written.record["line_items"][0]["quantity"] == 10.0
    flipped = extract(credit, schema, _opts(credit_notes="negative")).results[0]
    assert (flipped.record["total"], flipped.record["tax"], flipped.record["subtotal"]) == (
        -s.total,
        -s.tax,
        -s.net,
    )
    assert flipped.record["line_items"][0]["amount"] == -2500.0
    assert flipped.record["line_items"][0]["unit_price"] == 250.0  # a price is never negative

    # a CII credit note (381) whose amounts are negative as written, printed the same way
    neg = Sample(number="GS-2024-008", type_code="381", lines=[("Rückgabe Solarmodul", -2.0, 250.0, -500.0)],
                 net=-500.0, tax=-95.0, total=-595.0, prepaid=0.0, due_amount=-595.0)  # fmt: skip
    pdf = make_pdf(tmp_path / "gutschrift.pdf", page_lines(neg), {"factur-x.xml": cii_d16b(neg)})
    res = extract(pdf, schema, _opts()).results[0]
    assert (res.record["total"], res.record["tax"]) == (-595.0, -95.0)
    assert res.record["line_items"][0]["quantity"] == -2.0
    assert not [e for e in res.errors if e.error_type == "EInvoiceMismatch"], res.errors


@pytest.mark.parametrize(("payload", "label"), [(XXE, "xxe"), (BILLION_LAUGHS, "laughs")])
def test_hostile_xml_is_refused_with_an_error_row(tmp_path: Path, schema, payload, label) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET-VALUE", encoding="utf-8")
    data = payload.replace(b"file://SECRET", f"file://{secret}".encode())
    xml = tmp_path / f"{label}.xml"
    xml.write_bytes(data)
    s = Sample()
    pdf = make_pdf(tmp_path / f"{label}.pdf", page_lines(s), {"factur-x.xml": data})
    good = tmp_path / "good.xml"
    good.write_bytes(ubl(s))
    result = extract([xml, pdf, good], schema, _opts(), out_dir=tmp_path / "out")
    records = pd.read_parquet(tmp_path / "out" / "invoice.parquet").set_index("source")
    errors = pd.read_parquet(tmp_path / "out" / "errors.parquet")
    refused = errors[errors["error_type"] == "EInvoiceRefused"]
    # the standalone file: in the record table, partial, with a message naming it
    assert records.loc[str(xml), "status"] in ("partial", "failure")
    assert pd.isna(records.loc[str(xml), "invoice_number"])
    msg = refused[refused["source"] == str(xml)]["message"].iloc[0]
    assert str(xml) in msg and "refused" in msg and "DTD" in msg
    # the PDF: refused attachment named, page still read
    pdf_msg = refused[refused["source"] == str(pdf)]["message"].iloc[0]
    assert f"{pdf}!factur-x.xml" in pdf_msg
    assert records.loc[str(pdf), "status"] == "partial"
    assert records.loc[str(pdf), "invoice_number"] == s.number  # from the page
    assert {v.reader for v in result.results[1].values} == {"learned"}
    # the run went on, and nothing anywhere holds the secret or the expansion
    assert records.loc[str(good), "status"] == "success"
    for name in ("invoice", "provenance", "errors", "invoice__line_items"):
        text = pd.read_csv(tmp_path / "out" / f"{name}.csv").to_csv()
        assert "TOP-SECRET-VALUE" not in text and "lollollol" not in text


def test_edited_visible_total_is_reported_as_mismatch(tmp_path: Path, schema) -> None:
    s = Sample()
    pdf = make_pdf(
        tmp_path / "forged.pdf", page_lines(s, total_shown=2570.0), {"factur-x.xml": cii_d16b(s)}
    )
    honest = make_pdf(tmp_path / "honest.pdf", page_lines(s), {"factur-x.xml": cii_d16b(s)})
    result = extract([pdf, honest], schema, _opts())
    forged = result.results[0]
    assert forged.record["total"] == s.total  # the XML value stays the record's value
    assert forged.status.value == "partial"
    (mismatch,) = _errors(result, 0, "EInvoiceMismatch")
    assert mismatch.path == "/total"
    assert "2570" in mismatch.message.replace(".", "") and "3570.00" in mismatch.message
    assert "GrandTotalAmount" in mismatch.message and str(pdf) in mismatch.message
    assert (
        not _errors(result, 1, "EInvoiceMismatch") and result.results[1].status.value == "success"
    )
    off = extract(pdf, schema, _opts(cross_check=False)).results[0]
    assert not [e for e in off.errors if e.error_type == "EInvoiceMismatch"]


def test_pinned_field_and_field_kept_off_the_xml(tmp_path: Path) -> None:
    spec = schema_from_dict(
        {
            "type": "object",
            "properties": {
                "invoice_number": {"type": "string", "title": "Invoice number"},
                "to_wire": {
                    "type": "number",
                    "title": "Bank transfer",
                    "x-docvlm": {"en16931": "BT-115"},
                },
                "total": {"type": "number", "title": "Total", "x-docvlm": {"en16931": False}},
            },
        },
        "pinned",
    )
    s = Sample()
    pdf = make_pdf(tmp_path / "inv.pdf", page_lines(s), {"factur-x.xml": cii_d16b(s)})
    result = extract(pdf, spec, _opts())
    rec, prov = result.results[0].record, _prov(result)
    assert rec["to_wire"] == s.due_amount and prov["to_wire"].xpath.endswith("ram:DuePayableAmount")
    assert prov["to_wire"].reader == "einvoice"
    assert prov["invoice_number"].reader == "einvoice"
    assert rec.get("total") == s.total and prov["total"].reader == "learned"  # read from the page
    bad = schema_from_dict(
        {
            "type": "object",
            "properties": {"x": {"type": "number", "x-docvlm": {"en16931": "BT-999"}}},
        },
        "bad",
    )
    res = extract(pdf, bad, _opts()).results[0]
    assert any(e.error_type == "SchemaError" and "BT-999" in e.message for e in res.errors)


def test_pdf_without_xml_reads_as_before(tmp_path: Path, schema) -> None:
    s = Sample()
    pdf = make_pdf(tmp_path / "plain.pdf", page_lines(s))
    default = extract(pdf, schema, _opts()).results[0]
    ignored = extract(pdf, schema, _opts(mode="ignore")).results[0]
    assert default.record == ignored.record and default.record["invoice_number"] == s.number
    assert [v.model_dump() for v in default.values] == [v.model_dump() for v in ignored.values]
    assert default.errors == ignored.errors
    assert {v.reader for v in default.values} == {"learned"}
    only = extract(pdf, schema, _opts(mode="only")).results[0]
    assert only.record == {} and only.status.value == "partial"
    assert any(e.error_type == "EInvoiceMissing" and str(pdf) in e.message for e in only.errors)


def test_only_and_ignore_modes_with_xml(tmp_path: Path, schema) -> None:
    s = Sample()
    visible = Sample(number="RE-PAGE-1")  # the page says another number
    pdf = make_pdf(tmp_path / "inv.pdf", page_lines(visible), {"factur-x.xml": cii_d16b(s)})
    only = extract(pdf, schema, _opts(mode="only")).results[0]
    assert only.record["invoice_number"] == s.number
    assert {v.reader for v in only.values} == {"einvoice"}
    assert not [e for e in only.errors if e.error_type == "EInvoiceMismatch"]  # page not read
    ignore = extract(pdf, schema, _opts(mode="ignore")).results[0]
    assert ignore.record["invoice_number"] == "RE-PAGE-1" and {v.reader for v in ignore.values} == {
        "learned"
    }
    xml = tmp_path / "inv.xml"
    xml.write_bytes(ubl(s))
    skipped = extract(xml, schema, _opts(mode="ignore")).results[0]
    assert skipped.record == {} and any(e.error_type == "EInvoiceIgnored" for e in skipped.errors)


def test_sniffing_xml_roots() -> None:
    s = Sample()
    assert sniff(cii_d16b(s)) == "application/xml"
    assert sniff(cii_zugferd1(s)) == "application/xml"
    assert sniff(ubl(s, credit_note=True)) == "application/xml"
    assert sniff(b"\xef\xbb\xbf" + ubl(s)) == "application/xml"
    assert sniff(BILLION_LAUGHS) == "application/xml"  # sniffed as an invoice, refused when read
    assert sniff(b"<?xml version='1.0'?><Invoice><ID>1</ID></Invoice>") is None  # no UBL namespace
    assert sniff(b"<?xml version='1.0'?><note>hi</note>") is None


def test_non_invoice_xml_is_reported_unsupported(tmp_path: Path) -> None:
    note = tmp_path / "note.xml"
    note.write_text("<?xml version='1.0'?><!-- x --><note><to>Tove</to></note>", encoding="utf-8")
    doc = inspect_file(note)
    assert doc.error and "unsupported file type" in doc.error and "<note>" in doc.error


def test_cli_flag_sets_the_pipeline_option(tmp_path: Path, invoice_schema) -> None:
    from docvlm.cli.extract import options_from_args as _options_from_args
    from docvlm.cli.main import build_parser

    args = build_parser().parse_args(
        ["extract", "x.pdf", "--schema", "s.json", "--einvoice", "only"]
    )
    assert _options_from_args(args).einvoice.mode == "only"
    args = build_parser().parse_args(["extract", "x.pdf", "--schema", "s.json"])
    assert _options_from_args(args).einvoice.mode == "prefer"
    with pytest.raises(SystemExit):
        build_parser().parse_args(
            ["extract", "x.pdf", "--schema", "s.json", "--einvoice", "always"]
        )
    with pytest.raises(Exception, match="extra"):
        PipelineOptions.model_validate({"einvoice": {"mode": "prefer", "typo": 1}})
    s = Sample()
    xml = tmp_path / "inv.xml"
    xml.write_bytes(ubl(s))
    from docvlm.cli import main

    out = tmp_path / "out"
    assert (
        main(
            [
                "extract",
                str(xml),
                "--schema",
                str(invoice_schema),
                "--out",
                str(out),
                "-q",
                "--no-detect",
            ]
        )
        == 0
    )
    assert (
        json.loads(pd.read_parquet(out / "provenance.parquet").to_json(orient="records"))[0][
            "reader"
        ]
        == "einvoice"
    )


def test_pin_errors_are_schema_errors() -> None:
    from docvlm.einvoice.mapping import map_schema

    line_pin = schema_from_dict(
        {
            "type": "object",
            "properties": {"x": {"type": "number", "x-docvlm": {"en16931": "BT-131"}}},
        },
        "s",
    )
    with pytest.raises(SchemaError, match="invoice-line term"):
        map_schema(line_pin)


@pytest.mark.parametrize("how", ["af", "kids"])
def test_attachment_found_in_associated_files_and_nested_name_trees(
    tmp_path: Path, how: str
) -> None:
    import pymupdf
    from einvoice_samples import relink_attachment

    from docvlm.einvoice import load_invoice

    s = Sample()
    flat = make_pdf(tmp_path / "flat.pdf", page_lines(s), {"factur-x.xml": cii_d16b(s)})
    pdf = relink_attachment(flat, tmp_path / f"{how}.pdf", how)
    with pymupdf.open(pdf) as doc:
        if how == "af":
            assert doc.embfile_names() == []  # PyMuPDF's own API no longer sees it
    inv = load_invoice(str(pdf))
    assert inv is not None and inv.header["BT-112"].value == s.total
    assert inv.source == f"{pdf}!factur-x.xml"
