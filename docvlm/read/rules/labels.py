"""Label vocabulary: which printed labels announce which schema field.

A plain JSON Schema is enough: labels come from the property name, its ``title``, phrases in
its ``description`` (comma lists and parentheses) and the vendor hint ``x-docvlm.labels``.
Fields that match a known concept (invoice number, total, due date, ...) also get that
concept's multilingual labels (EN, DE, FR, ES and common receipt wording).
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

from docvlm.normalize import fold
from docvlm.schema import FieldSpec

# concept -> (trigger phrases matched against the folded field name/title, label phrases)
CONCEPTS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "invoice_number": (
        ("invoice number", "invoice no", "invoice id", "invoice num", "bill number",
         "receipt number", "document number", "rechnungsnummer", "numero de facture"),
        ("invoice number", "invoice no", "invoice nr", "invoice #", "invoice num", "invoice id",
         "inv no", "inv #", "invoice", "bill no", "bill number", "receipt no", "receipt #",
         "document no", "doc no", "rechnungsnummer", "rechnungs nr", "rechnung nr",
         "rechnung nummer", "rechnung", "numero de facture", "no de facture", "n de facture",
         "n facture", "facture n", "facture no", "facture", "factura n", "factura"),
    ),
    "due_date": (
        ("due date", "payment due", "due", "faellig", "echeance", "zahlbar bis"),
        ("due date", "payment due", "payment due date", "due by", "due on", "due", "pay by",
         "payable by", "zahlbar bis", "fallig am", "faellig am", "falligkeitsdatum", "fallig",
         "zahlungsziel", "date d echeance", "echeance", "a payer avant", "fecha de vencimiento"),
    ),
    "issue_date": (
        ("invoice date", "issue date", "date of issue", "issued", "document date", "date",
         "purchase date", "transaction date", "rechnungsdatum", "datum"),
        ("invoice date", "date of invoice", "date of issue", "issue date", "issued on",
         "issued", "document date", "transaction date", "purchase date", "date", "dated",
         "rechnungsdatum", "datum", "ausstellungsdatum", "date de facture",
         "date de facturation", "date d emission", "fecha de factura", "fecha", "tarikh"),
    ),
    "subtotal": (
        ("subtotal", "sub total", "net amount", "before tax", "nettobetrag", "zwischensumme",
         "total ht"),
        ("subtotal", "sub total", "net amount", "net total", "net", "total net",
         "total excl", "total excluding tax", "total before tax", "amount before tax",
         "zwischensumme", "nettobetrag", "summe netto", "netto", "gesamt netto",
         "nettosumme", "total ht", "montant ht", "sous total", "base imponible"),
    ),
    "tax": (
        ("tax", "vat", "gst", "mwst", "tva", "sales tax", "ust"),
        ("tax", "tax amount", "total tax", "vat", "vat amount", "gst", "total gst", "sst",
         "sales tax", "service tax", "mwst", "mehrwertsteuer", "ust", "umsatzsteuer",
         "zzgl ust", "zzgl mwst", "zzgl umsatzsteuer", "zuzuglich ust", "zuzuglich mwst",
         "inkl mwst", "inkl ust", "enthaltene mwst", "plus vat", "plus tax", "add vat",
         "tva", "montant tva", "total tva", "iva"),
    ),
    "total": (
        ("total", "amount due", "grand total", "gesamtbetrag", "total ttc", "amount paid"),
        ("grand total", "total amount due", "amount due", "total due", "balance due",
         "total amount", "total payable", "amount payable", "invoice total", "total ttc",
         "montant ttc", "net a payer", "montant total", "gesamtbetrag", "rechnungsbetrag",
         "gesamtsumme", "endbetrag", "bruttobetrag", "gesamt brutto", "summe brutto",
         "zu zahlen", "rounded total", "total rounded", "nett total", "net total rm",
         "total incl", "total inclusive", "total sales", "total rm", "total", "summe",
         "importe total", "amount"),
    ),
    "currency": (("currency", "wahrung", "devise"), ("currency", "wahrung", "devise", "moneda")),
}  # fmt: skip

# Labels that look like a concept's label but announce something else.
BLOCKED: dict[str, tuple[str, ...]] = {
    "total": ("total qty", "total quantity", "total items", "total item", "total discount",
              "total savings", "total saving", "total tax", "total gst", "total excl",
              "total ht", "total net", "total vat", "total tva", "total no", "total number",
              "total pcs", "total units", "sub total", "subtotal", "total before",
              "total points", "total weight"),
    "invoice_number": ("invoice date", "invoice to", "invoice total", "invoice amount",
                       "rechnungsdatum", "rechnungsbetrag", "rechnung an", "facture a",
                       "date de facture", "invoice address", "number of", "no of"),
    "issue_date": ("due date", "date d echeance", "delivery date", "date of birth",
                   "date of supply"),
    "tax": ("tax id", "tax no", "tax number", "tax reg", "vat id", "vat no", "vat number",
            "vat reg", "gst id", "gst no", "gst reg", "ust id", "ust idnr", "tva intra",
            "n tva", "tax invoice", "steuernummer", "steuer nr", "gst summary", "excl tax",
            "incl tax", "inclusive gst", "incl gst", "tax rate"),
    "subtotal": ("net weight", "netto gewicht", "net 7", "net 10", "net 14", "net 15", "net 21",
                 "net 30", "net 45", "net 60", "net 90", "net 30 days", "net cash"),
}  # fmt: skip

ROLE_SELLER = ("seller", "vendor", "supplier", "merchant", "company", "store", "shop",
               "issuer", "biller", "from", "restaurant", "business")  # fmt: skip
ROLE_BUYER = ("buyer", "customer", "client", "bill to", "billed to", "recipient", "consignee",
              "purchaser", "ship to", "sold to", "invoice to")  # fmt: skip
ROLE_LABELS = {
    "seller": ("from", "seller", "vendor", "supplier", "issued by", "sold by", "verkaufer",
               "lieferant", "absender", "fournisseur", "vendeur", "emetteur"),
    "buyer": ("bill to", "billed to", "invoice to", "invoiced to", "sold to", "customer",
              "client", "buyer", "recipient", "ship to", "deliver to", "to",
              "rechnungsempfanger", "rechnungsadresse", "kunde", "rechnung an", "an",
              "empfanger", "facture a", "facturer a", "adresse de facturation",
              "destinataire", "cliente"),
}  # fmt: skip


@dataclass(frozen=True)
class FieldLabels:
    """Label phrases (folded) for one field, best first, plus the ones that block it."""

    concept: str | None
    phrases: tuple[str, ...]
    blocked: tuple[str, ...]
    role: str | None  # seller / buyer, for party name and address fields
    part: str | None  # name / address, for party fields


_SPLIT = re.compile(r"[,;/]|\bor\b|\boder\b|\bou\b")


def _description_phrases(text: str | None) -> list[str]:
    if not text:
        return []
    phrases: list[str] = []
    for inside in re.findall(r"\(([^)]*)\)", text):
        phrases.extend(p for p in _SPLIT.split(inside))
    return [fold(p) for p in phrases if 0 < len(fold(p)) <= 40]


def _words(name: str) -> str:
    return fold(re.sub(r"(?<=[a-z])(?=[A-Z])", " ", name).replace("_", " ").replace(".", " "))


def detect_concept(spec: FieldSpec) -> str | None:
    """The known concept a field stands for, judged from its name and title."""
    text = " " + _words(spec.name) + " " + fold(spec.title or "") + " "
    if spec.is_date and any(t in text for t in (" due ", "faellig", "fallig", "echeance")):
        return "due_date"
    for concept, (triggers, _) in CONCEPTS.items():
        if concept == "due_date":
            continue
        if concept == "issue_date" and not spec.is_date:
            continue
        if concept in ("subtotal", "tax", "total") and not spec.is_number:
            continue
        if any(f" {t} " in text for t in triggers):
            return concept
    return None


def party_of(spec: FieldSpec) -> tuple[str | None, str | None]:
    """(role, part) for name/address fields of a party: ('seller', 'name'), ('buyer', 'address')."""
    if spec.type != "string" or spec.array or spec.is_date:
        return None, None  # ('flight_from' is a date, not the party a 'from' label names)
    parts = spec.path.split(".")
    leaf = _words(parts[-1])
    parent = _words(parts[-2]) if len(parts) > 1 else ""
    title = fold(spec.title or "")
    text = f" {parent} {leaf} {title} "
    if any(w in leaf.split() for w in ("address", "addr", "adresse", "anschrift", "location")):
        part = "address"
    elif "name" in leaf.split() or any(f" {w} " in f" {leaf} " for w in ROLE_SELLER + ROLE_BUYER):
        part = "name"
    else:
        return None, None
    if any(f" {w} " in text for w in ROLE_BUYER):
        return "buyer", part
    if any(f" {w} " in text for w in ROLE_SELLER) or not parent:
        return "seller", part
    return None, None


#: a field's words mean a term group when they reach it at least this well, this much
#: better than the next one ('retailer' reaches the seller at 0.66, by word vectors)
_MEANT_AT, _MEANT_MARGIN = 0.6, 0.1


def meant_by_vocabulary(spec: FieldSpec) -> tuple[str | None, str | None, str | None]:
    """(concept, role, part) of a field no word list here names ('retailer', 'amount'): the
    term group its words reach clearly in the learned reader's vocabulary (by letters or by
    word vectors), when that group is one of the concepts or parties the rules read."""
    from docvlm.read.learned.vocab import field_groups, own_words

    groups = field_groups(spec, tuple(own_words(spec, ())))
    if not groups or groups[0][1] < _MEANT_AT:
        return None, None, None
    if len(groups) > 1 and groups[0][1] - groups[1][1] < _MEANT_MARGIN:
        return None, None, None
    gid = groups[0][0]
    if gid in ("seller", "buyer") and spec.type == "string" and not spec.array:
        return None, gid, "name"
    fits = gid in CONCEPTS and (
        (gid not in ("subtotal", "tax", "total") or spec.is_number)
        and (gid not in ("issue_date", "due_date") or spec.is_date)
    )
    return (gid, None, None) if fits else (None, None, None)


def labels_for(spec: FieldSpec) -> FieldLabels:
    """Every label phrase that may announce ``spec`` on a page (found once per field: the
    rules ask per document and per table column)."""
    try:
        return _labels_for(spec)
    except TypeError:  # an enum member or example that cannot be hashed ([1, 2]): not kept
        return _labels_for.__wrapped__(spec)


@functools.lru_cache(maxsize=4096)
def _labels_for(spec: FieldSpec) -> FieldLabels:
    concept = detect_concept(spec)
    role, part = party_of(spec)
    if concept is None and role is None:
        concept, role, part = meant_by_vocabulary(spec)
    phrases: list[str] = [fold(x) for x in spec.labels]
    if spec.title:
        phrases.append(fold(spec.title))
    phrases.append(_words(spec.name))
    phrases.extend(_description_phrases(spec.description))
    if concept:
        phrases.extend(fold(p) for p in CONCEPTS[concept][1])
    if role and part == "name":
        phrases.extend(fold(p) for p in ROLE_LABELS[role])
    seen: list[str] = []
    for p in phrases:
        p = p.strip()
        if p and p not in seen:
            seen.append(p)
    blocked = tuple(fold(p) for p in BLOCKED.get(concept or "", ()))
    return FieldLabels(concept, tuple(seen), tuple(blocked), role, part)


def match_label(text: str, phrases: tuple[str, ...]) -> tuple[str, str] | None:
    """The longest label phrase that ``text`` starts with, and the rest of the text.

    Matching is on folded text and whole tokens: 'Invoice No.: 42' → ('invoice no', '42').
    """
    folded = fold(text)
    best: str | None = None
    # a phrase can only match a text that begins with the phrase's first word
    for phrase in phrases_by_first_word(phrases).get(folded.split(" ", 1)[0], ()):
        if folded == phrase or folded.startswith(phrase + " "):
            if best is None or len(phrase) > len(best):
                best = phrase
    if best is None:
        return None
    if _glued_value(text, best):
        return None  # 'INV-2014-0042': an identifier that begins like a label
    return best, _strip_label(text, best)


@functools.lru_cache(maxsize=4096)
def phrases_by_first_word(phrases: tuple[str, ...]) -> dict[str, tuple[str, ...]]:
    """``phrases`` (folded) by their first word, in their order: only a text that begins
    with one of these words can match a label (:func:`match_label`; a reader may skip the
    others before asking)."""
    out: dict[str, list[str]] = {}
    for phrase in phrases:
        out.setdefault(phrase.split(" ", 1)[0], []).append(phrase)
    return {k: tuple(v) for k, v in out.items()}


def _glued_value(text: str, phrase: str) -> bool:
    """True when the label's last word runs into a value with '-' or '/' ('INV-2014')."""
    n_tokens = len(phrase.split())
    for i, m in enumerate(re.finditer(r"[^\W_]+|%", text)):
        if i == n_tokens - 1:
            return bool(re.match(r"[-/]\w", text[m.end() :])) and bool(
                re.search(r"\d", text[m.end() :])
            )
    return False


def _strip_label(text: str, phrase: str) -> str:
    """Cut the label off the original text, keeping the value's own punctuation."""
    n_tokens = len(phrase.split())
    tokens = re.finditer(r"[^\W_]+|%", text)
    end = 0
    for i, m in enumerate(tokens):
        if i == n_tokens - 1:
            end = m.end()
            break
    rest = text[end:]
    return rest.lstrip(" .:#-–=\t|/)(").replace("N°", "").strip() if rest else ""


#: words of greetings, thanks and address to the reader (EN/DE/FR/ES): a line made of them
#: ('Welcome to the', 'Thank you for visiting', 'Merci de votre visite') is courtesy text,
#: the value of no field, whatever the field is
_COURTESY_CORE = frozenset(
    """welcome thank thanks visit visiting appreciate enjoy willkommen herzlich danke dank
    besuch bienvenue merci visite bienvenido bienvenidos gracias visita""".split()
)
#: any core word, even inside another (one search instead of one per word)
_COURTESY_ANY = re.compile("|".join(sorted(_COURTESY_CORE)))
COURTESY = _COURTESY_CORE | frozenset(
    """you your yours we our us the a an to for of at in on and with visited again please
    come soon back have nice good great day shopping choosing dining business hope see
    vielen fur ihr ihre ihren einkauf bis bald wieder auf wiedersehen schonen tag de votre
    vos au revoir a bientot bonne journee por su vuelva pronto buen dia""".split()
)


@functools.lru_cache(maxsize=65536)
def courtesy_ratio(text: str) -> float:
    """The share of a text's words that are greeting/thanks words (:data:`COURTESY`); 0
    unless one of them is a greeting or a thanks proper ('Good Day Market' is a name)."""
    # an ASCII text's letters are its fold's (folding only lowers them and turns other
    # characters to spaces, which a word of letters never holds)
    folded = text.lower() if text.isascii() else fold(text)
    if not _COURTESY_ANY.search(folded):
        return 0.0  # no core word even inside another (most texts: found without a split)
    words = re.findall(r"[^\W\d_]+", folded)
    if not words or not any(w in _COURTESY_CORE for w in words):
        return 0.0
    return sum(w in COURTESY for w in words) / len(words)
