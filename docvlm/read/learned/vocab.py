"""A multilingual vocabulary of business terms, and the printed labels a field may have.

A field is known by its own words (name, title, description, examples: see
:func:`docvlm.read.fieldmatch.field_words`). Printed labels are often in another language or
wording than the schema ('Rechnungsnummer', 'N° de facture', 'Contract #'), so the field's
words are matched against *term groups*: sets of phrases that mean the same thing in EN, DE,
FR and ES. A field that matches a group well also gets the group's other phrases as labels,
weighted by how well it matched. Nothing here is keyed on a field name: the groups are general
business vocabulary and a field reaches them only through similarity of its words.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from docvlm.read.fieldmatch import _grams, field_words, similarity, split_name, tokens
from docvlm.read.rules.labels import CONCEPTS
from docvlm.schema import FieldSpec

# group -> phrases (the first few are the English meaning the field's words are matched on)
TERMS: dict[str, tuple[str, ...]] = {
    "order_number": ("order number", "order no", "order #", "purchase order", "po number",
                     "po #", "contract number", "contract no", "contract #", "contract",
                     "bestellnummer", "auftragsnummer", "auftrag nr", "bestell nr",
                     "numero de commande", "n de commande", "bon de commande",
                     "numero de pedido", "pedido", "estimate #", "order"),
    "reference": ("reference", "reference number", "ref", "ref no", "your reference",
                  "our reference", "referenz", "ihr zeichen", "unser zeichen", "votre reference",
                  "referencia"),
    "customer_number": ("customer number", "customer no", "customer id", "account number",
                        "account no", "client number", "kundennummer", "kunden nr",
                        "numero client", "n client", "numero de cliente"),
    "seller": ("seller", "vendor", "supplier", "merchant", "store", "shop", "company",
               "issuer", "from", "sold by", "lieferant", "verkaufer", "anbieter", "firma",
               "fournisseur", "vendeur", "societe", "proveedor", "vendedor", "empresa",
               "station", "licensee"),
    "buyer": ("buyer", "customer", "client", "bill to", "billed to", "sold to", "ship to",
              "invoice to", "purchaser", "kunde", "rechnungsempfanger", "empfanger", "kaufer",
              "auftraggeber", "acheteur", "facture a", "destinataire", "cliente", "comprador"),
    "advertiser": ("advertiser", "advertiser name", "product", "brand", "campaign", "client",
                   "werbetreibender", "annonceur", "anunciante"),
    "agency": ("agency", "agency name", "buyer agency", "agentur", "agence", "agencia"),
    "address": ("address", "street", "postal address", "location", "anschrift", "adresse",
                "strasse", "direccion", "domicilio"),
    "phone": ("phone", "telephone", "tel", "mobile", "fax", "telefon", "telefono"),
    "email": ("email", "e mail", "mail", "courriel", "correo"),
    "start_date": ("start date", "from", "begin", "start", "flight start", "period from",
                   "valid from", "beginn", "von", "ab", "date de debut", "du", "desde",
                   "fecha de inicio", "flight dates", "flight from"),
    "end_date": ("end date", "to", "until", "end", "flight end", "period to", "valid until",
                 "thru", "through", "ende", "bis", "date de fin", "au", "hasta",
                 "fecha de fin", "flight to"),
    "delivery_date": ("delivery date", "date of delivery", "service date", "ship date",
                      "lieferdatum", "leistungsdatum", "liefer und leistungsdatum",
                      "date de livraison", "fecha de entrega"),
    "gross_amount": ("gross amount", "gross", "gross total", "total gross", "brutto",
                     "bruttobetrag", "montant brut", "importe bruto", "total cost",
                     "total order", "grand total"),
    "net_amount": ("net amount", "net", "net total", "netto", "nettobetrag", "montant net",
                   "importe neto"),
    "quantity": ("quantity", "qty", "units", "menge", "anzahl", "quantite", "cantidad"),
    "tax_rate": ("tax rate", "vat rate", "vat %", "steuersatz", "mwst satz", "taux de tva",
                 "tasa de iva"),
}  # fmt: skip

# the rule reader's concepts are general business terms too: reuse their label phrases
for _cid, (_triggers, _labels) in CONCEPTS.items():
    TERMS.setdefault(_cid, tuple(dict.fromkeys((*_triggers, *_labels))))


@dataclass(frozen=True)
class FieldPhrases:
    """What a field may be printed as, each phrase with a weight 0..1 (own words: 1)."""

    path: str
    phrases: tuple[tuple[str, float], ...]
    groups: tuple[tuple[str, float], ...]  # term groups the field's words reached


def _own_words(spec: FieldSpec, context: tuple[str, ...]) -> list[str]:
    words = field_words(spec, context)
    out = [*words.primary, *words.secondary]
    out.extend(str(x) for x in (spec.examples or ()) if isinstance(x, str) and len(x) < 40)
    return list(dict.fromkeys(p for p in out if p))


@lru_cache(maxsize=512)
def _group_scores(own: tuple[str, ...]) -> tuple[tuple[str, float], ...]:
    scores = []
    for gid, phrases in TERMS.items():
        best = max((similarity(o, p) for o in own for p in phrases[:6]), default=0.0)
        if best >= 0.45:
            scores.append((gid, round(best, 4)))
    return tuple(sorted(scores, key=lambda x: -x[1]))


def field_phrases(spec: FieldSpec, context: tuple[str, ...] = ()) -> FieldPhrases:
    """The field's own phrases (weight 1) plus the phrases of the term groups its words
    reach (weight = how well they reach it)."""
    own = _own_words(spec, context)
    if not own:
        own = [split_name(spec.name)]
    groups = _group_scores(tuple(own))
    phrases: dict[str, float] = dict.fromkeys(own, 1.0)
    for gid, w in groups[:3]:
        for p in TERMS[gid]:
            phrases[p] = max(phrases.get(p, 0.0), w)
    return FieldPhrases(spec.path, tuple(phrases.items()), groups)


class PhraseIndex:
    """Fast best-match of a text against many weighted phrases, with the same measure as
    :func:`docvlm.read.fieldmatch.similarity` (token Dice and character-trigram Dice),
    computed from posting lists instead of phrase by phrase."""

    def __init__(self, phrases: tuple[tuple[str, float], ...]) -> None:
        self.weights: list[float] = []
        self.n_tok: list[int] = []
        self.n_gram: list[int] = []
        self.tok_post: dict[str, list[int]] = {}
        self.gram_post: dict[str, list[int]] = {}
        for text, w in phrases:
            toks, grams = set(tokens(text)), _grams(text)
            if not toks:
                continue
            k = len(self.weights)
            self.weights.append(w)
            self.n_tok.append(len(toks))
            self.n_gram.append(len(grams))
            for t in toks:
                self.tok_post.setdefault(t, []).append(k)
            for g in grams:
                self.gram_post.setdefault(g, []).append(k)
        self._cache: dict[str, float] = {}

    def best(self, text: str) -> float:
        got = self._cache.get(text)
        if got is not None:
            return got
        toks, grams = set(tokens(text)), _grams(text)
        score = 0.0
        if toks and self.weights:
            shared_t: dict[int, int] = {}
            for t in toks:
                for k in self.tok_post.get(t, ()):
                    shared_t[k] = shared_t.get(k, 0) + 1
            shared_g: dict[int, int] = {}
            for g in grams:
                for k in self.gram_post.get(g, ()):
                    shared_g[k] = shared_g.get(k, 0) + 1
            nt, ng = len(toks), len(grams)
            for k, sg in shared_g.items():
                dice = 2 * shared_t.get(k, 0) / (nt + self.n_tok[k])
                tri = 2 * sg / (ng + self.n_gram[k])
                score = max(score, self.weights[k] * (0.6 * dice + 0.4 * tri))
        if len(self._cache) > 50000:
            self._cache.clear()
        self._cache[text] = score
        return score


@lru_cache(maxsize=256)
def phrase_index(phrases: tuple[tuple[str, float], ...]) -> PhraseIndex:
    return PhraseIndex(phrases)


def _clean(text: str) -> str:
    return text.strip().rstrip(":#.").strip()


def label_similarity(fp: FieldPhrases, text: str) -> float:
    """How well printed ``text`` reads as a label of the field, 0..1."""
    text = _clean(text)
    if not text or len(text) > 80:
        return 0.0
    return phrase_index(fp.phrases).best(text)


_ALL = tuple(dict.fromkeys((p, 1.0) for phrases in TERMS.values() for p in phrases))


def all_term_similarity(text: str) -> float:
    """How much ``text`` reads like any business label at all (labels are seldom values)."""
    global _ALL_INDEX
    text = _clean(text)
    if not text or len(text) > 60:
        return 0.0
    if _ALL_INDEX is None:  # built once: looking it up by its key hashed ~800 phrases a call
        _ALL_INDEX = phrase_index(_ALL)
    return _ALL_INDEX.best(text)


_ALL_INDEX: PhraseIndex | None = None
