"""E-invoice samples built at test time: CII (ZUGFeRD 1, ZUGFeRD 2 / Factur-X), UBL invoices and
credit notes, and PDFs that print them and embed them (PyMuPDF ``embfile_add``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class Sample:
    """The values a sample invoice states (in its XML and, unless edited, on its page)."""

    number: str = "RE-2024-0815"
    issue: str = "2024-03-15"
    due: str = "2024-04-14"
    currency: str = "EUR"
    seller: str = "Nordlicht Solar GmbH"
    seller_street: str = "Hafenstraße 12"
    seller_zip: str = "20457"
    seller_city: str = "Hamburg"
    buyer: str = "Bergblick Hotel AG"
    buyer_street: str = "Almweg 3"
    buyer_zip: str = "83471"
    buyer_city: str = "Berchtesgaden"
    lines: list[tuple[str, float, float, float]] = field(
        default_factory=lambda: [
            ("Solarmodul 400 W", 10.0, 250.0, 2500.0),
            ("Montage", 8.0, 62.5, 500.0),
        ]
    )
    net: float = 3000.0
    tax: float = 570.0
    total: float = 3570.0
    prepaid: float = 570.0
    due_amount: float = 3000.0
    type_code: str = "380"


def _d(iso: str) -> str:
    return iso.replace("-", "")


def _a(x: float) -> str:
    return f"{x:.2f}"


def cii_d16b(s: Sample, profile: str = "urn:cen.eu:en16931:2017") -> bytes:
    """ZUGFeRD 2 / Factur-X / XRechnung CII (CrossIndustryInvoice, D16B)."""
    lines = "".join(
        f"""
    <ram:IncludedSupplyChainTradeLineItem>
      <ram:AssociatedDocumentLineDocument><ram:LineID>{i + 1}</ram:LineID></ram:AssociatedDocumentLineDocument>
      <ram:SpecifiedTradeProduct><ram:Name>{name}</ram:Name></ram:SpecifiedTradeProduct>
      <ram:SpecifiedLineTradeAgreement>
        <ram:NetPriceProductTradePrice><ram:ChargeAmount>{price:.4f}</ram:ChargeAmount></ram:NetPriceProductTradePrice>
      </ram:SpecifiedLineTradeAgreement>
      <ram:SpecifiedLineTradeDelivery><ram:BilledQuantity unitCode="C62">{qty:.4f}</ram:BilledQuantity></ram:SpecifiedLineTradeDelivery>
      <ram:SpecifiedLineTradeSettlement>
        <ram:ApplicableTradeTax><ram:TypeCode>VAT</ram:TypeCode><ram:CategoryCode>S</ram:CategoryCode><ram:RateApplicablePercent>19.00</ram:RateApplicablePercent></ram:ApplicableTradeTax>
        <ram:SpecifiedTradeSettlementLineMonetarySummation><ram:LineTotalAmount>{_a(amount)}</ram:LineTotalAmount></ram:SpecifiedTradeSettlementLineMonetarySummation>
      </ram:SpecifiedLineTradeSettlement>
    </ram:IncludedSupplyChainTradeLineItem>"""
        for i, (name, qty, price, amount) in enumerate(s.lines)
    )
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<rsm:CrossIndustryInvoice xmlns:rsm="urn:un:unece:uncefact:data:standard:CrossIndustryInvoice:100"
 xmlns:ram="urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:100"
 xmlns:udt="urn:un:unece:uncefact:data:standard:UnqualifiedDataType:100">
  <rsm:ExchangedDocumentContext>
    <ram:GuidelineSpecifiedDocumentContextParameter><ram:ID>{profile}</ram:ID></ram:GuidelineSpecifiedDocumentContextParameter>
  </rsm:ExchangedDocumentContext>
  <rsm:ExchangedDocument>
    <ram:ID>{s.number}</ram:ID>
    <ram:TypeCode>{s.type_code}</ram:TypeCode>
    <ram:IssueDateTime><udt:DateTimeString format="102">{_d(s.issue)}</udt:DateTimeString></ram:IssueDateTime>
  </rsm:ExchangedDocument>
  <rsm:SupplyChainTradeTransaction>{lines}
    <ram:ApplicableHeaderTradeAgreement>
      <ram:SellerTradeParty>
        <ram:Name>{s.seller}</ram:Name>
        <ram:PostalTradeAddress><ram:PostcodeCode>{s.seller_zip}</ram:PostcodeCode><ram:LineOne>{s.seller_street}</ram:LineOne><ram:CityName>{s.seller_city}</ram:CityName><ram:CountryID>DE</ram:CountryID></ram:PostalTradeAddress>
        <ram:SpecifiedTaxRegistration><ram:ID schemeID="VA">DE123456789</ram:ID></ram:SpecifiedTaxRegistration>
      </ram:SellerTradeParty>
      <ram:BuyerTradeParty>
        <ram:Name>{s.buyer}</ram:Name>
        <ram:PostalTradeAddress><ram:PostcodeCode>{s.buyer_zip}</ram:PostcodeCode><ram:LineOne>{s.buyer_street}</ram:LineOne><ram:CityName>{s.buyer_city}</ram:CityName><ram:CountryID>DE</ram:CountryID></ram:PostalTradeAddress>
      </ram:BuyerTradeParty>
    </ram:ApplicableHeaderTradeAgreement>
    <ram:ApplicableHeaderTradeDelivery/>
    <ram:ApplicableHeaderTradeSettlement>
      <ram:InvoiceCurrencyCode>{s.currency}</ram:InvoiceCurrencyCode>
      <ram:SpecifiedTradePaymentTerms>
        <ram:DueDateDateTime><udt:DateTimeString format="102">{_d(s.due)}</udt:DateTimeString></ram:DueDateDateTime>
      </ram:SpecifiedTradePaymentTerms>
      <ram:SpecifiedTradeSettlementHeaderMonetarySummation>
        <ram:LineTotalAmount>{_a(s.net)}</ram:LineTotalAmount>
        <ram:TaxBasisTotalAmount>{_a(s.net)}</ram:TaxBasisTotalAmount>
        <ram:TaxTotalAmount currencyID="USD">{_a(s.tax * 1.1)}</ram:TaxTotalAmount>
        <ram:TaxTotalAmount currencyID="{s.currency}">{_a(s.tax)}</ram:TaxTotalAmount>
        <ram:GrandTotalAmount>{_a(s.total)}</ram:GrandTotalAmount>
        <ram:TotalPrepaidAmount>{_a(s.prepaid)}</ram:TotalPrepaidAmount>
        <ram:DuePayableAmount>{_a(s.due_amount)}</ram:DuePayableAmount>
      </ram:SpecifiedTradeSettlementHeaderMonetarySummation>
    </ram:ApplicableHeaderTradeSettlement>
  </rsm:SupplyChainTradeTransaction>
</rsm:CrossIndustryInvoice>
""".encode()


def cii_zugferd1(s: Sample) -> bytes:
    """ZUGFeRD 1.0 (CrossIndustryDocument, COMFORT profile)."""
    lines = "".join(
        f"""
    <ram:IncludedSupplyChainTradeLineItem>
      <ram:AssociatedDocumentLineDocument><ram:LineID>{i + 1}</ram:LineID></ram:AssociatedDocumentLineDocument>
      <ram:SpecifiedSupplyChainTradeAgreement>
        <ram:NetPriceProductTradePrice><ram:ChargeAmount currencyID="EUR">{price:.4f}</ram:ChargeAmount></ram:NetPriceProductTradePrice>
      </ram:SpecifiedSupplyChainTradeAgreement>
      <ram:SpecifiedSupplyChainTradeDelivery><ram:BilledQuantity unitCode="C62">{qty:.4f}</ram:BilledQuantity></ram:SpecifiedSupplyChainTradeDelivery>
      <ram:SpecifiedSupplyChainTradeSettlement>
        <ram:SpecifiedTradeSettlementMonetarySummation><ram:LineTotalAmount currencyID="EUR">{_a(amount)}</ram:LineTotalAmount></ram:SpecifiedTradeSettlementMonetarySummation>
      </ram:SpecifiedSupplyChainTradeSettlement>
      <ram:SpecifiedTradeProduct><ram:Name>{name}</ram:Name></ram:SpecifiedTradeProduct>
    </ram:IncludedSupplyChainTradeLineItem>"""
        for i, (name, qty, price, amount) in enumerate(s.lines)
    )
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<rsm:CrossIndustryDocument xmlns:rsm="urn:ferd:CrossIndustryDocument:invoice:1p0"
 xmlns:ram="urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:12"
 xmlns:udt="urn:un:unece:uncefact:data:standard:UnqualifiedDataType:15">
  <rsm:SpecifiedExchangedDocumentContext>
    <ram:GuidelineSpecifiedDocumentContextParameter><ram:ID>urn:ferd:CrossIndustryDocument:invoice:1p0:comfort</ram:ID></ram:GuidelineSpecifiedDocumentContextParameter>
  </rsm:SpecifiedExchangedDocumentContext>
  <rsm:HeaderExchangedDocument>
    <ram:ID>{s.number}</ram:ID>
    <ram:TypeCode>{s.type_code}</ram:TypeCode>
    <ram:IssueDateTime><udt:DateTimeString format="102">{_d(s.issue)}</udt:DateTimeString></ram:IssueDateTime>
  </rsm:HeaderExchangedDocument>
  <rsm:SpecifiedSupplyChainTradeTransaction>
    <ram:ApplicableSupplyChainTradeAgreement>
      <ram:SellerTradeParty><ram:Name>{s.seller}</ram:Name>
        <ram:PostalTradeAddress><ram:PostcodeCode>{s.seller_zip}</ram:PostcodeCode><ram:LineOne>{s.seller_street}</ram:LineOne><ram:CityName>{s.seller_city}</ram:CityName><ram:CountryID>DE</ram:CountryID></ram:PostalTradeAddress>
      </ram:SellerTradeParty>
      <ram:BuyerTradeParty><ram:Name>{s.buyer}</ram:Name>
        <ram:PostalTradeAddress><ram:PostcodeCode>{s.buyer_zip}</ram:PostcodeCode><ram:LineOne>{s.buyer_street}</ram:LineOne><ram:CityName>{s.buyer_city}</ram:CityName><ram:CountryID>DE</ram:CountryID></ram:PostalTradeAddress>
      </ram:BuyerTradeParty>
    </ram:ApplicableSupplyChainTradeAgreement>
    <ram:ApplicableSupplyChainTradeSettlement>
      <ram:InvoiceCurrencyCode>{s.currency}</ram:InvoiceCurrencyCode>
      <ram:SpecifiedTradePaymentTerms>
        <ram:DueDateDateTime><udt:DateTimeString format="102">{_d(s.due)}</udt:DateTimeString></ram:DueDateDateTime>
      </ram:SpecifiedTradePaymentTerms>
      <ram:SpecifiedTradeSettlementMonetarySummation>
        <ram:LineTotalAmount currencyID="EUR">{_a(s.net)}</ram:LineTotalAmount>
        <ram:TaxBasisTotalAmount currencyID="EUR">{_a(s.net)}</ram:TaxBasisTotalAmount>
        <ram:TaxTotalAmount currencyID="EUR">{_a(s.tax)}</ram:TaxTotalAmount>
        <ram:GrandTotalAmount currencyID="EUR">{_a(s.total)}</ram:GrandTotalAmount>
        <ram:TotalPrepaidAmount currencyID="EUR">{_a(s.prepaid)}</ram:TotalPrepaidAmount>
        <ram:DuePayableAmount currencyID="EUR">{_a(s.due_amount)}</ram:DuePayableAmount>
      </ram:SpecifiedTradeSettlementMonetarySummation>
    </ram:ApplicableSupplyChainTradeSettlement>{lines}
  </rsm:SpecifiedSupplyChainTradeTransaction>
</rsm:CrossIndustryDocument>
""".encode()


def ubl(s: Sample, credit_note: bool = False) -> bytes:
    """OASIS UBL 2.1 Invoice or CreditNote (XRechnung UBL / Peppol BIS Billing 3.0)."""
    root = "CreditNote" if credit_note else "Invoice"
    line_el = "CreditNoteLine" if credit_note else "InvoiceLine"
    qty_el = "CreditedQuantity" if credit_note else "InvoicedQuantity"
    type_el = "CreditNoteTypeCode" if credit_note else "InvoiceTypeCode"
    due = (
        f"<cac:PaymentMeans><cbc:PaymentMeansCode>58</cbc:PaymentMeansCode><cbc:PaymentDueDate>{s.due}</cbc:PaymentDueDate></cac:PaymentMeans>"
        if credit_note
        else f"<cbc:DueDate>{s.due}</cbc:DueDate>"
    )

    def party(name: str, street: str, zip_: str, city: str) -> str:
        return f"""<cac:Party>
      <cac:PostalAddress><cbc:StreetName>{street}</cbc:StreetName><cbc:CityName>{city}</cbc:CityName><cbc:PostalZone>{zip_}</cbc:PostalZone><cac:Country><cbc:IdentificationCode>DE</cbc:IdentificationCode></cac:Country></cac:PostalAddress>
      <cac:PartyLegalEntity><cbc:RegistrationName>{name}</cbc:RegistrationName></cac:PartyLegalEntity>
    </cac:Party>"""

    lines = "".join(
        f"""
  <cac:{line_el}>
    <cbc:ID>{i + 1}</cbc:ID>
    <cbc:{qty_el} unitCode="C62">{qty:g}</cbc:{qty_el}>
    <cbc:LineExtensionAmount currencyID="{s.currency}">{_a(amount)}</cbc:LineExtensionAmount>
    <cac:Item><cbc:Name>{name}</cbc:Name><cac:ClassifiedTaxCategory><cbc:ID>S</cbc:ID><cbc:Percent>19</cbc:Percent></cac:ClassifiedTaxCategory></cac:Item>
    <cac:Price><cbc:PriceAmount currencyID="{s.currency}">{_a(price)}</cbc:PriceAmount></cac:Price>
  </cac:{line_el}>"""
        for i, (name, qty, price, amount) in enumerate(s.lines)
    )
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<{root} xmlns="urn:oasis:names:specification:ubl:schema:xsd:{root}-2"
 xmlns:cac="urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2"
 xmlns:cbc="urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2">
  <cbc:CustomizationID>urn:cen.eu:en16931:2017#compliant#urn:xeinkauf.de:kosit:xrechnung_3.0</cbc:CustomizationID>
  <cbc:ID>{s.number}</cbc:ID>
  <cbc:IssueDate>{s.issue}</cbc:IssueDate>
  {"" if credit_note else due}
  <cbc:{type_el}>{"381" if credit_note else s.type_code}</cbc:{type_el}>
  <cbc:DocumentCurrencyCode>{s.currency}</cbc:DocumentCurrencyCode>
  <cac:AccountingSupplierParty>{party(s.seller, s.seller_street, s.seller_zip, s.seller_city)}</cac:AccountingSupplierParty>
  <cac:AccountingCustomerParty>{party(s.buyer, s.buyer_street, s.buyer_zip, s.buyer_city)}</cac:AccountingCustomerParty>
  {due if credit_note else ""}
  <cac:TaxTotal><cbc:TaxAmount currencyID="{s.currency}">{_a(s.tax)}</cbc:TaxAmount></cac:TaxTotal>
  <cac:LegalMonetaryTotal>
    <cbc:LineExtensionAmount currencyID="{s.currency}">{_a(s.net)}</cbc:LineExtensionAmount>
    <cbc:TaxExclusiveAmount currencyID="{s.currency}">{_a(s.net)}</cbc:TaxExclusiveAmount>
    <cbc:TaxInclusiveAmount currencyID="{s.currency}">{_a(s.total)}</cbc:TaxInclusiveAmount>
    <cbc:PrepaidAmount currencyID="{s.currency}">{_a(s.prepaid)}</cbc:PrepaidAmount>
    <cbc:PayableAmount currencyID="{s.currency}">{_a(s.due_amount)}</cbc:PayableAmount>
  </cac:LegalMonetaryTotal>{lines}
</{root}>
""".encode()


def _de(x: float) -> str:
    """1234.5 → '1.234,50' (as a German invoice prints it)."""
    text = f"{abs(x):,.2f}".replace(",", "_").replace(".", ",").replace("_", ".")
    return ("-" if x < 0 else "") + text


def _de_date(iso: str) -> str:
    y, m, d = iso.split("-")
    return f"{d}.{m}.{y}"


def page_lines(s: Sample, total_shown: float | None = None) -> list[str]:
    """What the sample's page prints; ``total_shown`` edits the visible total."""
    shown = s.total if total_shown is None else total_shown
    rows = [
        f"{i + 1}  {name}   {qty:g}   {_de(price)}   {_de(amount)}"
        for i, (name, qty, price, amount) in enumerate(s.lines)
    ]
    return [
        s.seller,
        f"{s.seller_street}, {s.seller_zip} {s.seller_city}",
        "",
        "Rechnung an:",
        s.buyer,
        s.buyer_street,
        f"{s.buyer_zip} {s.buyer_city}",
        "",
        f"Rechnungsnummer: {s.number}",
        f"Rechnungsdatum: {_de_date(s.issue)}",
        f"Fällig am: {_de_date(s.due)}",
        "",
        "Pos  Bezeichnung   Menge   Einzelpreis   Betrag",
        *rows,
        "",
        f"Nettobetrag: {_de(s.net)} {s.currency}",
        f"MwSt 19%: {_de(s.tax)} {s.currency}",
        f"Gesamtbetrag: {_de(shown)} {s.currency}",
        f"Anzahlung: {_de(s.prepaid)} {s.currency}",
        f"Zahlbetrag: {_de(s.due_amount)} {s.currency}",
    ]


def make_pdf(path: Path, lines: list[str], attachments: dict[str, bytes] | None = None) -> Path:
    """A born-digital one-page PDF printing ``lines``, with ``attachments`` embedded."""
    import pymupdf

    doc = pymupdf.open()
    page = doc.new_page(width=595, height=842)
    for i, line in enumerate(lines):
        if line:
            page.insert_text((50, 60 + 16 * i), line, fontsize=10)
    for name, data in (attachments or {}).items():
        doc.embfile_add(name, data, filename=name, desc="invoice data")
    doc.save(path)
    doc.close()
    return path


XXE = b"""<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE rsm:CrossIndustryInvoice [ <!ENTITY xxe SYSTEM "file://SECRET"> ]>
<rsm:CrossIndustryInvoice xmlns:rsm="urn:un:unece:uncefact:data:standard:CrossIndustryInvoice:100"
 xmlns:ram="urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:100">
  <rsm:ExchangedDocument><ram:ID>&xxe;</ram:ID></rsm:ExchangedDocument>
</rsm:CrossIndustryInvoice>
"""

BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE Invoice [
  <!ENTITY lol "lol">
  <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
  <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
  <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
  <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
  <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
  <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
  <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
  <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
  <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<Invoice xmlns="urn:oasis:names:specification:ubl:schema:xsd:Invoice-2"
 xmlns:cbc="urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2">
  <cbc:ID>&lol9;</cbc:ID>
</Invoice>
"""


def relink_attachment(path: Path, out: Path, how: str) -> Path:
    """Rewrite a one-attachment PDF the way some producers do: the file listed only in the
    catalog's associated files (``af``), or in a name tree with ``/Kids`` (``kids``)."""
    import re

    import pymupdf

    doc = pymupdf.open(path)
    cat = doc.pdf_catalog()
    names = doc.xref_get_key(cat, "Names/EmbeddedFiles/Names")[1]
    stream = int(re.search(r"/EF<</F (\d+) 0 R", names).group(1))
    spec = doc.get_new_xref()
    doc.update_object(
        spec,
        f"<</Type/Filespec/F(factur-x.xml)/UF(factur-x.xml)/EF<</F {stream} 0 R/UF {stream} 0 R>>/AFRelationship/Alternative>>",
    )
    if how == "af":
        doc.xref_set_key(cat, "Names/EmbeddedFiles", "null")
        doc.xref_set_key(cat, "AF", f"[{spec} 0 R]")
    else:
        leaf = doc.get_new_xref()
        doc.update_object(
            leaf, f"<</Names[(factur-x.xml) {spec} 0 R]/Limits[(factur-x.xml)(factur-x.xml)]>>"
        )
        top = doc.get_new_xref()
        doc.update_object(top, f"<</Kids[{leaf} 0 R]>>")
        doc.xref_set_key(cat, "Names/EmbeddedFiles", f"{top} 0 R")
    doc.save(out)
    doc.close()
    return out
