"""The EN 16931 business terms docvlm maps to schemas, with their words and their XML paths.

Each term carries its name and description from EN 16931-1 plus synonyms in English, German
and French (what invoices print and what schema authors write), so a schema field can be
matched to a term by its own words (:mod:`docvlm.read.fieldmatch`). Paths are written with
local element names (``Parent/Child``, ``Child[@attr='v']``, ``Child/@attr``); namespaces are
ignored when they are evaluated, so one path serves ZUGFeRD 1 (``ram:12``) and CII D16B
(``ram:100``) alike. Alternatives are tried in order; the first non-empty value wins.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Kind = Literal[
    "text", "identifier", "date", "amount", "quantity", "percent", "code", "address", "count"
]


@dataclass(frozen=True)
class Term:
    """One EN 16931 business term (BT) or group (BG) docvlm can read from an e-invoice.

    Attributes:
        id: ``BT-112``; derived terms (not in EN 16931) end in ``.count``.
        level: ``header`` for the invoice, ``line`` for each invoice line (BG-25).
        cii: Paths from the CII root (ZUGFeRD 1 and D16B alternatives), or from the line
            element for line terms.
        ubl: Paths from the UBL root (Invoice or CreditNote), or from the line element.
    """

    id: str
    name: str
    kind: Kind
    level: Literal["header", "line"]
    description: str
    synonyms: tuple[str, ...] = ()
    cii: tuple[str, ...] = ()
    ubl: tuple[str, ...] = ()

    @property
    def words(self) -> tuple[str, ...]:
        """Every phrase that names this term: its name, then its synonyms."""
        return (self.name, *self.synonyms)


# CII: D16B (ZUGFeRD 2, Factur-X, XRechnung CII) first, then ZUGFeRD 1 (CrossIndustryDocument)
_EX = ("ExchangedDocument", "HeaderExchangedDocument")
_AG = (
    "SupplyChainTradeTransaction/ApplicableHeaderTradeAgreement",
    "SpecifiedSupplyChainTradeTransaction/ApplicableSupplyChainTradeAgreement",
)
_DL = (
    "SupplyChainTradeTransaction/ApplicableHeaderTradeDelivery",
    "SpecifiedSupplyChainTradeTransaction/ApplicableSupplyChainTradeDelivery",
)
_ST = (
    "SupplyChainTradeTransaction/ApplicableHeaderTradeSettlement",
    "SpecifiedSupplyChainTradeTransaction/ApplicableSupplyChainTradeSettlement",
)
_SUM = (
    _ST[0] + "/SpecifiedTradeSettlementHeaderMonetarySummation",
    _ST[1] + "/SpecifiedTradeSettlementMonetarySummation",
)
CII_LINES = (
    "SupplyChainTradeTransaction/IncludedSupplyChainTradeLineItem",
    "SpecifiedSupplyChainTradeTransaction/IncludedSupplyChainTradeLineItem",
)
UBL_LINES = ("InvoiceLine", "CreditNoteLine")


def _cii(bases: tuple[str, ...], *tails: str) -> tuple[str, ...]:
    return tuple(f"{b}/{t}" for t in tails for b in bases)


_SELLER = ("the seller", "seller", "vendor", "supplier", "issuer", "merchant", "shop", "store",
           "company", "Verkäufer", "Lieferant", "Rechnungssteller", "Händler", "fournisseur",
           "vendeur", "émetteur", "commerçant")  # fmt: skip
_BUYER = ("the buyer", "buyer", "customer", "client", "bill to", "billed to", "sold to",
          "Käufer", "Kunde", "Rechnungsempfänger", "acheteur", "destinataire")  # fmt: skip


def _party_terms(role: Literal["seller", "buyer"]) -> list[Term]:
    ids = {
        "seller": ("BT-27", "BT-28", "BT-31", "BT-32", "BG-5", "BT-35", "BT-37", "BT-38", "BT-40"),
        "buyer": ("BT-44", "BT-45", "BT-48", "", "BG-8", "BT-50", "BT-52", "BT-53", "BT-55"),
    }[role]
    words = _SELLER if role == "seller" else _BUYER
    de, fr = ("Verkäufer", "vendeur") if role == "seller" else ("Käufer", "acheteur")
    cii_party = tuple(
        f"{a}/{'SellerTradeParty' if role == 'seller' else 'BuyerTradeParty'}" for a in _AG
    )
    ubl_party = (
        "AccountingSupplierParty/Party" if role == "seller" else "AccountingCustomerParty/Party"
    )
    r = role.capitalize()
    terms = [
        Term(ids[0], f"{r} name", "text", "header",
             f"The full formal name by which the {role} is registered; the {role} party of the invoice.",
             (*words, f"{role} name", f"name of the {role}", f"{role} company", f"{role} company name",
              *((("vendor name", "supplier name", "company name", "issued by", "party issuing the invoice",
                  "Lieferantenname", "Firmenname", "nom du fournisseur", "raison sociale"))
                if role == "seller" else
                ("customer name", "client name", "recipient", "addressee", "party the invoice is addressed to",
                 "Kundenname", "Empfänger", "nom du client"))),
             _cii(cii_party, "Name"),
             (f"{ubl_party}/PartyLegalEntity/RegistrationName", f"{ubl_party}/PartyName/Name")),
        Term(ids[1], f"{r} trading name", "text", "header",
             f"A name by which the {role} is known, other than its registered name.",
             (f"{role} trading name", "trading name", "brand name", "Handelsname", "nom commercial"),
             _cii(cii_party, "SpecifiedLegalOrganization/TradingBusinessName"),
             (f"{ubl_party}/PartyName/Name",)),
        Term(ids[2], f"{r} VAT identifier", "identifier", "header",
             f"The {role}'s VAT identification number.",
             (f"{role} VAT number", f"{role} VAT ID", f"{role} tax ID", "VAT number", "VAT ID",
              *(f"{w} VAT ID" for w in (("vendor", "supplier") if role == "seller" else ("customer",))),
              "VAT registration number", "USt-IdNr", "Umsatzsteuer-Identifikationsnummer",
              f"USt-IdNr des {de}s", "numéro de TVA intracommunautaire", f"TVA {fr}"),
             _cii(cii_party, "SpecifiedTaxRegistration/ID[@schemeID='VA']"),
             (f"{ubl_party}/PartyTaxScheme/CompanyID",)),
        Term(ids[3], f"{r} tax registration identifier", "identifier", "header",
             f"The local tax registration number of the {role} (not the VAT number).",
             (f"{role} tax number", "tax number", "Steuernummer", "numéro fiscal"),
             _cii(cii_party, "SpecifiedTaxRegistration/ID[@schemeID='FC']"), ()),
        Term(ids[4], f"{r} postal address", "address", "header",
             f"The postal address of the {role}: street, post code, city, country.",
             (f"{role} address", f"address of the {role}", f"{role} postal address",
              *(("vendor address", "supplier address", "Anschrift des Verkäufers", "Lieferantenadresse",
                 "adresse du fournisseur", "adresse du vendeur", "address", "Anschrift", "adresse")
               if role == "seller" else
                ("customer address", "billing address", "bill to address", "Rechnungsadresse",
                 "Kundenadresse", "adresse de facturation", "adresse du client"))),
             _cii(cii_party, "PostalTradeAddress"), (f"{ubl_party}/PostalAddress",)),
        Term(ids[5], f"{r} address line 1", "text", "header",
             f"The main address line (street and number) of the {role}'s address.",
             (f"{role} street", "street", "street address", "Straße", "rue"),
             _cii(cii_party, "PostalTradeAddress/LineOne"), (f"{ubl_party}/PostalAddress/StreetName",)),
        Term(ids[6], f"{r} city", "text", "header",
             f"The city or town of the {role}'s address.",
             (f"{role} city", "city", "town", "Ort", "Stadt", "ville"),
             _cii(cii_party, "PostalTradeAddress/CityName"), (f"{ubl_party}/PostalAddress/CityName",)),
        Term(ids[7], f"{r} post code", "identifier", "header",
             f"The postal code of the {role}'s address.",
             (f"{role} post code", f"{role} zip code", "postal code", "zip", "Postleitzahl", "PLZ",
              "code postal"),
             _cii(cii_party, "PostalTradeAddress/PostcodeCode"), (f"{ubl_party}/PostalAddress/PostalZone",)),
        Term(ids[8], f"{r} country code", "code", "header",
             f"The ISO 3166 country code of the {role}'s address.",
             (f"{role} country", "country", "country code", "Land", "pays"),
             _cii(cii_party, "PostalTradeAddress/CountryID"),
             (f"{ubl_party}/PostalAddress/Country/IdentificationCode",)),
    ]  # fmt: skip
    return [t for t in terms if t.id]  # the buyer has no tax registration term


_MT = "LegalMonetaryTotal"

TERMS: tuple[Term, ...] = (
    Term("BT-1", "Invoice number", "identifier", "header",
         "A unique identification of the invoice.",
         ("invoice number", "invoice no", "invoice id", "invoice identifier", "document number",
          "bill number", "credit note number", "Rechnungsnummer", "Rechnungs-Nr", "Belegnummer",
          "Gutschriftsnummer", "numéro de facture", "n° de facture", "numéro d'avoir"),
         _cii(_EX, "ID"), ("ID",)),
    Term("BT-2", "Invoice issue date", "date", "header",
         "The date when the invoice was issued.",
         ("invoice date", "date", "Datum", "issue date", "date of issue", "issued on", "billing date", "document date",
          "Rechnungsdatum", "Ausstellungsdatum", "Belegdatum", "date de facture", "date d'émission",
          "date de facturation"),
         _cii(_EX, "IssueDateTime/DateTimeString"), ("IssueDate",)),
    Term("BT-3", "Invoice type code", "code", "header",
         "A code specifying the functional type of the invoice (380 invoice, 381 credit note).",
         ("document type", "invoice type", "type code", "Rechnungsart", "Belegart", "type de facture",
          "type de document"),
         _cii(_EX, "TypeCode"), ("InvoiceTypeCode", "CreditNoteTypeCode")),
    Term("BT-5", "Invoice currency code", "code", "header",
         "The currency in which all invoice amounts are given (ISO 4217).",
         ("currency", "currency code", "invoice currency", "Währung", "Währungscode", "devise",
          "monnaie", "code devise"),
         _cii(_ST, "InvoiceCurrencyCode"), ("DocumentCurrencyCode",)),
    Term("BT-9", "Payment due date", "date", "header",
         "The date when the payment is due.",
         ("due date", "payment due", "payment due date", "pay by", "payable by", "date due",
          "Fälligkeitsdatum", "fällig am", "zahlbar bis", "Zahlungsziel", "date d'échéance",
          "échéance", "à payer avant le"),
         _cii(_ST, "SpecifiedTradePaymentTerms/DueDateDateTime/DateTimeString"),
         ("DueDate", "PaymentMeans/PaymentDueDate")),
    Term("BT-10", "Buyer reference", "identifier", "header",
         "An identifier assigned by the buyer used for internal routing purposes (Leitweg-ID).",
         ("buyer reference", "customer reference", "your reference", "Leitweg-ID", "routing id",
          "Käuferreferenz", "Ihre Referenz", "référence acheteur", "votre référence"),
         _cii(_AG, "BuyerReference"), ("BuyerReference",)),
    Term("BT-13", "Purchase order reference", "identifier", "header",
         "An identifier of a referenced purchase order, issued by the buyer.",
         ("purchase order", "purchase order number", "order number", "PO number", "order reference",
          "Bestellnummer", "Auftragsnummer", "Bestellung", "numéro de commande", "bon de commande"),
         _cii(_AG, "BuyerOrderReferencedDocument/IssuerAssignedID"), ("OrderReference/ID",)),
    Term("BT-20", "Payment terms", "text", "header",
         "A textual description of the payment terms that apply to the amount due for payment.",
         ("payment terms", "terms of payment", "terms", "Zahlungsbedingungen", "Zahlungsbedingung",
          "conditions de paiement", "conditions de règlement"),
         _cii(_ST, "SpecifiedTradePaymentTerms/Description"), ("PaymentTerms/Note",)),
    Term("BT-72", "Actual delivery date", "date", "header",
         "The date on which the supply of goods or services was made or completed.",
         ("delivery date", "date of delivery", "date of supply", "service date", "performance date",
          "Lieferdatum", "Leistungsdatum", "Liefertermin", "date de livraison", "date de prestation"),
         _cii(_DL, "ActualDeliverySupplyChainEvent/OccurrenceDateTime/DateTimeString"),
         ("Delivery/ActualDeliveryDate",)),
    Term("BT-83", "Remittance information", "text", "header",
         "A textual value used to link the payment to the invoice (payment reference).",
         ("payment reference", "remittance information", "reference for payment", "Verwendungszweck",
          "Zahlungsreferenz", "référence de paiement", "référence du virement"),
         _cii(_ST, "PaymentReference"), ("PaymentMeans/PaymentID",)),
    Term("BT-84", "Payment account identifier", "identifier", "header",
         "The account to which payment should be made: IBAN or a national account number.",
         ("IBAN", "bank account", "account number", "payee account", "Kontonummer",
          "Bankverbindung", "IBAN des Zahlungsempfängers", "compte bancaire", "RIB",
          "numéro de compte"),
         _cii(_ST, "SpecifiedTradeSettlementPaymentMeans/PayeePartyCreditorFinancialAccount/IBANID",
              "SpecifiedTradeSettlementPaymentMeans/PayeePartyCreditorFinancialAccount/ProprietaryID"),
         ("PaymentMeans/PayeeFinancialAccount/ID",)),
    *_party_terms("seller"),
    *_party_terms("buyer"),
    Term("BT-106", "Sum of invoice line net amount", "amount", "header",
         "Sum of all invoice line net amounts in the invoice.",
         ("line total", "lines total", "sum of line amounts", "total of lines", "items total",
          "merchandise total", "Summe der Positionen", "Positionssumme", "Warenwert",
          "Summe Positionen", "total des lignes", "somme des lignes", "total articles"),
         _cii(_SUM, "LineTotalAmount"), (f"{_MT}/LineExtensionAmount",)),
    Term("BT-107", "Sum of allowances on document level", "amount", "header",
         "Sum of all allowances (discounts) on document level in the invoice.",
         ("discount", "discounts", "allowances", "total discount", "Rabatt", "Nachlass",
          "Abzüge", "remise", "remises", "rabais"),
         _cii(_SUM, "AllowanceTotalAmount"), (f"{_MT}/AllowanceTotalAmount",)),
    Term("BT-108", "Sum of charges on document level", "amount", "header",
         "Sum of all charges (surcharges, shipping, fees) on document level in the invoice.",
         ("charges", "surcharge", "shipping", "fees", "Zuschläge", "Zuschlag", "Versandkosten",
          "frais", "frais de port", "majoration"),
         _cii(_SUM, "ChargeTotalAmount"), (f"{_MT}/ChargeTotalAmount",)),
    Term("BT-109", "Invoice total amount without VAT", "amount", "header",
         "The total amount of the invoice without VAT (net total, tax basis).",
         ("subtotal", "sub total", "net total", "net amount", "total net", "total excluding tax",
          "total before tax", "total excl VAT", "amount before tax", "taxable amount",
          "Nettobetrag", "Zwischensumme", "Summe netto", "Gesamtbetrag netto", "Nettosumme",
          "total HT", "montant HT", "sous-total", "total hors taxes"),
         _cii(_SUM, "TaxBasisTotalAmount"), (f"{_MT}/TaxExclusiveAmount",)),
    Term("BT-110", "Invoice total VAT amount", "amount", "header",
         "The total VAT amount for the invoice.",
         ("VAT", "tax", "tax amount", "VAT amount", "total VAT", "VAT total", "total tax", "sales tax",
          "GST", "MwSt", "USt", "Mehrwertsteuer", "Umsatzsteuer", "Steuerbetrag", "MwSt-Betrag",
          "TVA", "montant TVA", "total TVA", "montant de la taxe"),
         _cii(_SUM, "TaxTotalAmount"), ("TaxTotal/TaxAmount",)),
    Term("BT-112", "Invoice total amount with VAT", "amount", "header",
         "The total amount of the invoice with VAT (grand total).",
         ("total", "grand total", "invoice total", "total amount", "gross total", "gross amount",
          "total including tax", "total incl VAT", "total with tax", "amount including tax",
          "Gesamtbetrag", "Bruttobetrag", "Rechnungsbetrag", "Gesamtsumme", "Endbetrag",
          "Summe brutto", "total TTC", "montant TTC", "total toutes taxes comprises"),
         _cii(_SUM, "GrandTotalAmount"), (f"{_MT}/TaxInclusiveAmount",)),
    Term("BT-113", "Paid amount", "amount", "header",
         "The sum of amounts which have been paid in advance.",
         ("prepaid amount", "paid amount", "already paid", "advance payment", "deposit",
          "Anzahlung", "bereits gezahlt", "Vorauszahlung", "acompte", "déjà payé", "acompte versé"),
         _cii(_SUM, "TotalPrepaidAmount"), (f"{_MT}/PrepaidAmount",)),
    Term("BT-115", "Amount due for payment", "amount", "header",
         "The outstanding amount that is requested to be paid.",
         ("amount due", "balance due", "payable amount", "amount payable", "amount to pay",
          "total due", "outstanding amount", "Zahlbetrag", "zu zahlender Betrag", "fälliger Betrag",
          "Restbetrag", "net à payer", "reste à payer", "montant dû", "montant à payer"),
         _cii(_SUM, "DuePayableAmount"), (f"{_MT}/PayableAmount",)),
    Term("BG-25.count", "Number of invoice lines", "count", "header",
         "How many invoice lines (BG-25) the invoice has; derived, not an EN 16931 term.",
         ("line item count", "number of line items", "number of lines", "number of items",
          "item count", "line count", "count of positions", "Anzahl Positionen",
          "Anzahl der Positionen", "Positionsanzahl", "nombre de lignes", "nombre d'articles"),
         CII_LINES, UBL_LINES),
    # BG-25 invoice line (paths from the line element)
    Term("BT-126", "Invoice line identifier", "identifier", "line",
         "A unique identifier for the individual line within the invoice (position number).",
         ("line number", "line id", "position", "position number", "item number", "line no", "Pos",
          "Positionsnummer", "Position", "numéro de ligne", "ligne"),
         ("AssociatedDocumentLineDocument/LineID",), ("ID",)),
    Term("BT-129", "Invoiced quantity", "quantity", "line",
         "The quantity of items (goods or services) that is charged in the invoice line.",
         ("quantity", "qty", "units", "number of units", "count", "Menge", "Anzahl", "Stück",
          "quantité", "qté", "nombre"),
         ("SpecifiedLineTradeDelivery/BilledQuantity", "SpecifiedSupplyChainTradeDelivery/BilledQuantity"),
         ("InvoicedQuantity", "CreditedQuantity")),
    Term("BT-130", "Invoiced quantity unit of measure", "code", "line",
         "The unit of measure that applies to the invoiced quantity (UN/ECE Rec 20 code).",
         ("unit", "unit of measure", "UoM", "unit code", "Einheit", "Mengeneinheit", "unité",
          "unité de mesure"),
         ("SpecifiedLineTradeDelivery/BilledQuantity/@unitCode",
          "SpecifiedSupplyChainTradeDelivery/BilledQuantity/@unitCode"),
         ("InvoicedQuantity/@unitCode", "CreditedQuantity/@unitCode")),
    Term("BT-131", "Invoice line net amount", "amount", "line",
         "The total amount of the invoice line: quantity times net price, less line allowances.",
         ("amount", "line amount", "line total", "total", "net amount", "line net amount",
          "extended amount", "Betrag", "Gesamtpreis", "Gesamt", "Positionsbetrag", "Summe",
          "Nettobetrag", "montant", "montant HT", "total ligne", "prix total"),
         ("SpecifiedLineTradeSettlement/SpecifiedTradeSettlementLineMonetarySummation/LineTotalAmount",
          "SpecifiedSupplyChainTradeSettlement/SpecifiedTradeSettlementMonetarySummation/LineTotalAmount"),
         ("LineExtensionAmount",)),
    Term("BT-146", "Item net price", "amount", "line",
         "The price of an item, exclusive of VAT, after subtracting item price discount (unit price).",
         ("unit price", "price", "price per unit", "net price", "rate", "unit cost", "Einzelpreis",
          "Stückpreis", "Preis", "Nettopreis", "Einheitspreis", "prix unitaire", "PU", "prix net"),
         ("SpecifiedLineTradeAgreement/NetPriceProductTradePrice/ChargeAmount",
          "SpecifiedSupplyChainTradeAgreement/NetPriceProductTradePrice/ChargeAmount"),
         ("Price/PriceAmount",)),
    Term("BT-148", "Item gross price", "amount", "line",
         "The unit price, exclusive of VAT, before subtracting item price discount (list price).",
         ("gross price", "list price", "Bruttopreis", "Listenpreis", "prix brut", "prix catalogue"),
         ("SpecifiedLineTradeAgreement/GrossPriceProductTradePrice/ChargeAmount",
          "SpecifiedSupplyChainTradeAgreement/GrossPriceProductTradePrice/ChargeAmount"),
         ("Price/AllowanceCharge/BaseAmount",)),
    Term("BT-152", "Invoiced item VAT rate", "percent", "line",
         "The VAT rate, as a percentage, that applies to the invoiced item.",
         ("VAT rate", "tax rate", "VAT %", "tax %", "MwSt-Satz", "Steuersatz", "USt %",
          "taux de TVA", "taux TVA"),
         ("SpecifiedLineTradeSettlement/ApplicableTradeTax/RateApplicablePercent",
          "SpecifiedSupplyChainTradeSettlement/ApplicableTradeTax/ApplicablePercent"),
         ("Item/ClassifiedTaxCategory/Percent",)),
    Term("BT-153", "Item name", "text", "line",
         "A name for the item (goods or service); what the item column of the invoice prints.",
         ("description", "item", "item name", "product", "product name", "service", "article",
          "designation", "goods", "Bezeichnung", "Beschreibung", "Artikel", "Leistung",
          "Artikelbezeichnung", "Produkt", "désignation", "libellé", "produit", "article"),
         ("SpecifiedTradeProduct/Name",), ("Item/Name",)),
    Term("BT-154", "Item description", "text", "line",
         "A longer, detailed text about the item, beyond its name.",
         ("detailed description", "long description", "item details", "additional text",
          "Langtext", "Zusatztext", "Artikelbeschreibung", "description détaillée"),
         ("SpecifiedTradeProduct/Description",), ("Item/Description",)),
    Term("BT-155", "Item seller's identifier", "identifier", "line",
         "An identifier for the item, assigned by the seller (article number, SKU).",
         ("article number", "item code", "product code", "SKU", "part number", "item id",
          "Artikelnummer", "Art.-Nr.", "Artikel-Nr", "référence", "référence article", "code article"),
         ("SpecifiedTradeProduct/SellerAssignedID",), ("Item/SellersItemIdentification/ID",)),
)  # fmt: skip

BY_ID: dict[str, Term] = {t.id: t for t in TERMS}
LINE_GROUP = Term(
    "BG-25", "Invoice line", "text", "header",
    "A group of business terms providing information on individual invoice lines.",
    ("invoice lines", "line items", "items", "lines", "positions", "item table", "articles",
     "Rechnungspositionen", "Positionen", "Posten", "lignes de facture", "lignes", "articles"),
    CII_LINES, UBL_LINES,
)  # fmt: skip

__all__ = ["BY_ID", "CII_LINES", "LINE_GROUP", "TERMS", "UBL_LINES", "Term"]
