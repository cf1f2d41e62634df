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

import itertools
import re
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from docvlm.normalize import fold
from docvlm.read.fieldmatch import (
    _STOP,
    _stem,
    field_words,
    folded_words,
    label_words,
    similarity,
    split_name,
)
from docvlm.read.learned import semantic
from docvlm.read.rules.labels import BLOCKED, CONCEPTS, ROLE_LABELS
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

#: German words the phrase lists spell without their umlauts, the way the rules' ``fold``
#: reads them. The similarity here spells an umlaut out ('ä' as 'ae', like identifiers do),
#: so a printed 'Verkäufer' would only half match 'verkaufer': each such phrase is also
#: listed as printed (the plain spelling stays, for text that lost its umlauts)
_UMLAUT_WORDS = {
    "verkaufer": "verkäufer", "kaufer": "käufer", "empfanger": "empfänger",
    "rechnungsempfanger": "rechnungsempfänger", "fallig": "fällig",
    "falligkeitsdatum": "fälligkeitsdatum", "wahrung": "währung", "zuzuglich": "zuzüglich",
}  # fmt: skip


def _with_umlauts(phrases: tuple[str, ...]) -> tuple[str, ...]:
    out = list(phrases)
    for p in phrases:
        spelled = " ".join(_UMLAUT_WORDS.get(w, w) for w in p.split())
        if spelled != p:
            out.append(spelled)
    return tuple(dict.fromkeys(out))


TERMS = {gid: _with_umlauts(phrases) for gid, phrases in TERMS.items()}


@lru_cache(maxsize=1)
def vocabulary_words() -> frozenset[str]:
    """Every word of the term groups' phrases and the rules' label lists, folded as
    :func:`~docvlm.read.fieldmatch.folded_words` folds text (umlauts spelled out)."""
    phrases = [p for group in TERMS.values() for p in group]
    phrases += [p for group in (*BLOCKED.values(), *ROLE_LABELS.values()) for p in group]
    return frozenset(w for p in phrases for w in folded_words(p))


@dataclass(frozen=True)
class FieldPhrases:
    """What a field may be printed as, each phrase with a weight 0..1 (own words: 1)."""

    path: str
    phrases: tuple[tuple[str, float], ...]
    groups: tuple[tuple[str, float], ...]  # term groups the field's words reached
    role: str | None = None  # in arithmetic / date order: total, tax, subtotal, start, end


#: what a field's concept group makes of it in arithmetic and in date order
_ROLE = {
    "subtotal": "subtotal", "net_amount": "subtotal", "tax": "tax", "total": "total",
    "gross_amount": "total", "issue_date": "start", "start_date": "start",
    "due_date": "end", "end_date": "end",
}  # fmt: skip

#: words that say a date opens or closes a span of time (EN/DE/FR/ES)
_START_WORDS = frozenset(
    "from first start begin beginning since opening von ab beginn erste "
    "erster debut premier premiere desde inicio primer primero".split()
)
_END_WORDS = frozenset(
    "to last end ending until till thru through closing bis ende letzte "
    "letzter fin dernier derniere au hasta ultimo final".split()
)


def group_role(groups: tuple[tuple[str, float], ...]) -> str | None:
    """The role of a field whose best concept group (of :func:`field_phrases`) is sure."""
    if groups and groups[0][1] >= 0.6:
        return _ROLE.get(groups[0][0])
    return None


def field_role(spec: FieldSpec, groups: tuple[tuple[str, float], ...]) -> str | None:
    """A date field whose own words say first/last, from/to, start/end opens or closes a
    span (whatever else they match); any other field takes its concept group's role."""
    if spec.is_date:
        # the name and title first; in a sentence "to" and "au" are mostly prepositions
        # ("delivered to the customer"), so a description's other words decide
        for text, skip in ((f"{split_name(spec.name)} {spec.title or ''}", ()),
                           (spec.description or "", ("to", "au"))):  # fmt: skip
            folded = set(fold(text).split()).difference(skip)
            starts, ends = len(folded & _START_WORDS), len(folded & _END_WORDS)
            if starts != ends:
                return "start" if starts > ends else "end"
    return group_role(groups)


#: words that name an attribute of a thing, not the thing: 'vendor name' is the vendor's
#: name, so the field is also known as 'vendor'
_ATTRIBUTE_WORDS = frozenset("name value text field info details".split())


def own_words(spec: FieldSpec, context: tuple[str, ...]) -> list[str]:
    """The field's own phrases: its name, title and description phrases (and those of
    ``context``, the object it belongs to), the name without an attribute word, its examples."""
    words = field_words(spec, context)
    out = [*words.primary, *words.secondary]
    name = split_name(spec.name).split()
    if len(name) > 1 and name[-1].lower() in _ATTRIBUTE_WORDS:
        out.append(" ".join(name[:-1]))
    out.extend(str(x) for x in (spec.examples or ()) if isinstance(x, str) and len(x) < 40)
    return list(dict.fromkeys(p for p in out if p))


#: the kind of value each term group names: a date field reaches date groups only, a number
#: field amounts and counts (and identifiers, when it is an integer)
_DATE_GROUPS = frozenset(("issue_date", "due_date", "delivery_date", "start_date", "end_date"))
_AMOUNT_GROUPS = frozenset(("total", "subtotal", "tax", "gross_amount", "net_amount",
                            "quantity", "tax_rate"))  # fmt: skip
_ID_GROUPS = frozenset(("invoice_number", "order_number", "reference", "customer_number"))


def fits_group(spec: FieldSpec, gid: str) -> bool:
    """Whether a field of ``spec``'s type can be what term group ``gid`` names."""
    if spec.is_date:
        return gid in _DATE_GROUPS
    if spec.is_number:
        return gid in _AMOUNT_GROUPS or (spec.type == "integer" and gid in _ID_GROUPS)
    return True  # a string may hold anything as printed (an amount, a date without format)


def field_groups(spec: FieldSpec, own: tuple[str, ...]) -> tuple[tuple[str, float], ...]:
    """The term groups ``own`` (the field's words) reach that fit the field's type."""
    return tuple(g for g in _group_scores(own) if fits_group(spec, g[0]))


#: a group's first phrases say what it means; the others are printed wordings of it, which
#: a field's words reach a little less surely ('vat amount', 'contract number', 'total cost')
_HEAD_PHRASES, _WORDING_WEIGHT = 6, 0.9
#: a field takes the phrases of the groups its words reach nearly as well as the best one
_GROUP_SPREAD = 0.3


@lru_cache(maxsize=512)
def _group_scores(own: tuple[str, ...]) -> tuple[tuple[str, float], ...]:
    """The groups the field's own phrases reach, best first: by their letters (lexical
    similarity) or, for a word that means a group's head phrase without sharing its letters
    ('retailer', 'sum'), by word vectors (:mod:`docvlm.read.learned.semantic`)."""
    meant = semantic.group_scores(own)
    scores = []
    for gid, phrases in TERMS.items():
        best = max(
            (similarity(o, p) * (1.0 if k < _HEAD_PHRASES else _WORDING_WEIGHT)
             for o in own for k, p in enumerate(phrases)),
            default=0.0,
        )  # fmt: skip
        best = max(best, meant.get(gid, 0.0))
        if best >= 0.45:
            scores.append((gid, round(best, 4)))
    return tuple(sorted(scores, key=lambda x: -x[1]))


def field_phrases(spec: FieldSpec, context: tuple[str, ...] = ()) -> FieldPhrases:
    """The field's own phrases (weight 1) plus the phrases of the term groups its words
    reach (weight = how well they reach it)."""
    own = own_words(spec, context)
    if not own:
        own = [split_name(spec.name)]
    groups = field_groups(spec, tuple(own))
    phrases: dict[str, float] = dict.fromkeys(own, 1.0)
    best = groups[0][1] if groups else 0.0
    for gid, w in groups[:3]:
        if w < best - _GROUP_SPREAD:
            break  # a group reached only through a shared word ('invoice to' for a number)
        for p in TERMS[gid]:
            phrases[p] = max(phrases.get(p, 0.0), w)
    return FieldPhrases(spec.path, tuple(phrases.items()), groups, field_role(spec, groups))


class PhraseIndex:
    """Fast best-match of texts against many weighted phrases, with the same measure as
    :func:`docvlm.read.fieldmatch.similarity` (token Dice and character-trigram Dice).

    The shared tokens and trigrams of a batch of texts with every phrase are two sparse
    matrix products (texts x vocabulary times vocabulary x phrases), so a document's texts
    are scored in one pass instead of phrase by phrase. An index may hold several phrase
    lists (one per field of a schema, :meth:`of_lists`): a text is then scored against all
    of them in the same pass, one best per list."""

    def __init__(
        self,
        phrases: tuple[tuple[str, float], ...],
        owner: list[int] | None = None,
        n_lists: int = 1,
    ) -> None:
        weights, n_tok, n_gram, owners = [], [], [], []
        tok_cells: list[tuple[int, int]] = []
        gram_cells: list[tuple[int, int]] = []
        for j, (text, w) in enumerate(phrases):
            toks, grams = _text_ids(text)
            if not len(toks):
                continue
            k = len(weights)
            weights.append(w)
            n_tok.append(len(toks))
            n_gram.append(len(grams))
            owners.append(owner[j] if owner is not None else 0)
            tok_cells.extend((int(t), k) for t in toks)
            gram_cells.extend((int(g), k) for g in grams)
        # ids are global: one vocabulary for every index and text
        self.weights = np.asarray(weights, dtype=np.float64)
        self.n_tok = np.asarray(n_tok, dtype=np.int64)
        self.n_gram = np.asarray(n_gram, dtype=np.int64)
        self.owner = np.asarray(owners, dtype=np.int64)
        self.n_lists = n_lists
        self._tok_post = _postings(tok_cells)
        self._gram_post = _postings(gram_cells)
        # each text scored so far: its row of bests (one column per list) in _store
        self._row: dict[str, int] = {}
        self._store = np.zeros((64, self.n_lists), dtype=np.float64)

    @classmethod
    def of_lists(cls, lists: tuple[tuple[tuple[str, float], ...], ...]) -> PhraseIndex:
        """One index over several phrase lists; :meth:`column` ``k`` reads list ``k``.
        (Each list's phrases stay together, in list order: :meth:`_score_block` relies on
        it.)"""
        flat = tuple(p for phrases in lists for p in phrases)
        owner = [k for k, phrases in enumerate(lists) for _ in phrases]
        return cls(flat, owner, len(lists))

    def best(self, text: str) -> float:
        """The best weighted similarity of ``text`` to any phrase, 0..1."""
        return self.best_many([text])[0]

    def best_many(self, texts: list[str]) -> list[float]:
        """:meth:`best` of each text, computed together (cached per text)."""
        return self.column(texts).tolist()

    def column(self, texts: list[str], k: int = 0) -> np.ndarray:
        """The best weighted similarity of each text to a phrase of list ``k``."""
        rows = self.rows(texts)  # first: scoring new texts may grow the store
        return self._store[rows, k]

    def rows(self, texts: list[str]) -> np.ndarray:
        """Each text's row in the store of scores; texts not seen before are scored (all
        together, against every list)."""
        row = self._row
        todo = [t for t in dict.fromkeys(texts) if t not in row]
        if todo and len(row) + len(todo) > 50000:
            row.clear()  # bounded: start afresh with this batch's texts
            todo = list(dict.fromkeys(texts))
        if todo:
            n0 = len(row)
            need = n0 + len(todo)
            if need > len(self._store):  # grown by doubling: copies stay linear overall
                grown = np.zeros((max(need, 2 * len(self._store)), self.n_lists), np.float64)
                grown[:n0] = self._store[:n0]
                self._store = grown
            self._store[n0:need] = self._score(todo)
            row.update(zip(todo, range(n0, need), strict=True))
        return np.fromiter((row[t] for t in texts), dtype=np.int64, count=len(texts))

    def _score(self, texts: list[str]) -> np.ndarray:
        """Each text's best weighted similarity per list, in blocks of texts (a block's
        texts x phrases cells stay small enough to be counted in cache)."""
        best = np.zeros((len(texts), self.n_lists), dtype=np.float64)
        if len(self.weights):
            for at in range(0, len(texts), _BLOCK):
                self._score_block(texts[at : at + _BLOCK], best[at : at + _BLOCK])
        return best

    def _score_block(self, texts: list[str], best: np.ndarray) -> None:
        n, n_phr = len(texts), len(self.weights)
        ids = [_text_ids(t) for t in texts]
        sizes = np.array([(len(t), len(g)) for t, g in ids], dtype=np.int64).reshape(n, 2)
        nt, ng = sizes[:, 0], sizes[:, 1]

        def shared(which: int, postings: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
            """Per (text, phrase) cell: how many of the text's ids the phrase has."""
            ptr, phrase = postings
            text_ids = np.fromiter(itertools.chain.from_iterable(x[which] for x in ids), np.int64)
            rows = np.repeat(np.arange(n), nt if which == 0 else ng)
            top = len(ptr) - 1  # ids from here on (new since the index was built): none
            clipped = np.minimum(text_ids, top)
            lo = ptr[clipped]
            hits = ptr[np.minimum(clipped + 1, top)] - lo
            # every posting of every id: a run of `hits` postings from `lo`
            run_start = np.repeat(np.cumsum(hits) - hits, hits)
            at = np.repeat(lo, hits) + np.arange(int(hits.sum())) - run_start
            cells = np.repeat(rows, hits) * n_phr + phrase[at]
            return np.bincount(cells, minlength=n * n_phr)

        sg = shared(1, self._gram_post)
        cells = np.flatnonzero(sg)  # a shared token always means shared trigrams
        if not len(cells):
            return
        st = shared(0, self._tok_post)[cells]
        rows, cols = cells // n_phr, cells % n_phr
        dice = 2 * st / (nt[rows] + self.n_tok[cols])
        tri = 2 * sg[cells] / (ng[rows] + self.n_gram[cols])
        values = self.weights[cols] * (0.6 * dice + 0.4 * tri)
        # cells run by text, then phrase, and a list's phrases are contiguous: each (text,
        # list) pair is one run of cells, whose best is a max over that run
        owner = self.owner[cols]
        key = rows * self.n_lists + owner
        starts = np.flatnonzero(np.concatenate(([True], key[1:] != key[:-1])))
        best[rows[starts], owner[starts]] = np.maximum.reduceat(values, starts)


#: texts scored together in one block of :meth:`PhraseIndex._score`
_BLOCK = 256


def _postings(cells: list[tuple[int, int]]) -> tuple[np.ndarray, np.ndarray]:
    """``(vocabulary id, phrase)`` cells as ``(ptr, phrase)``: id ``i``'s phrases are
    ``phrase[ptr[i]:ptr[i + 1]]`` (ids from ``len(ptr) - 1`` on have none)."""
    if not cells:
        return np.zeros(1, np.int64), np.zeros(0, np.int64)
    arr = np.asarray(sorted(cells), dtype=np.int64)
    ids = arr[:, 0]
    return np.searchsorted(ids, np.arange(ids[-1] + 2), "left"), arr[:, 1].copy()


#: one vocabulary of tokens and one of trigrams for every index and text (id = order seen)
_TOKEN_IDS: dict[str, int] = {}
_GRAM_IDS: dict[str, int] = {}


@lru_cache(maxsize=65536)
def _text_ids(text: str) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """The vocabulary ids of a text's distinct tokens and trigrams (none without tokens):
    those of :func:`~docvlm.read.fieldmatch.tokens` and :func:`~docvlm.read.fieldmatch._grams`.

    The trigrams of the tokens joined by spaces are each token's own, padded with a space
    on both sides, and one across each space between two tokens (last letter, space, first
    letter): both are found per word once and for all (candidate texts are new pieces of
    the same words)."""
    split = label_words(text)
    try:
        seen = [_WORDS[w] for w in split]
    except KeyError:  # a word not seen before
        seen = [_word_ids(w) for w in split]
    words = [w for w in seen if w is not None]
    if not words:
        return (), ()
    grams = set().union(*[w[2] for w in words])
    if len(words) > 1:
        g_ids = _GRAM_IDS
        across = [f"{a[0][-1]} {b[0][0]}" for a, b in zip(words, words[1:], strict=False)]
        grams.update([g_ids.setdefault(g, len(g_ids)) for g in across])
    return tuple({w[1] for w in words}), tuple(grams)


#: each folded word seen: its token, the token's id and its padded trigrams' ids (None: a
#: stop word, which is no token)
_WORDS: dict[str, tuple[str, int, tuple[int, ...]] | None] = {}


def _word_ids(word: str) -> tuple[str, int, tuple[int, ...]] | None:
    got = _WORDS.get(word, _UNSEEN)
    if got is _UNSEEN:
        if word in _STOP:
            got = None
        else:
            token = _stem(word)
            padded = f" {token} "
            g_ids = _GRAM_IDS
            got = (
                token,
                _TOKEN_IDS.setdefault(token, len(_TOKEN_IDS)),
                tuple(
                    {
                        g_ids.setdefault(padded[i : i + 3], len(g_ids))
                        for i in range(len(padded) - 2)
                    }
                ),
            )
        _WORDS[word] = got
    return got


_UNSEEN = object()


@lru_cache(maxsize=256)
def phrase_index(phrases: tuple[tuple[str, float], ...]) -> PhraseIndex:
    return PhraseIndex(phrases)


@lru_cache(maxsize=64)
def lists_index(lists: tuple[tuple[tuple[str, float], ...], ...]) -> PhraseIndex:
    """:meth:`PhraseIndex.of_lists`, once per schema (a schema's fields' phrase lists)."""
    return PhraseIndex.of_lists(lists)


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
    return all_term_similarity_many([text])[0]


def all_term_similarity_many(texts: list[str]) -> list[float]:
    """:func:`all_term_similarity` of each text, in one pass."""
    global _ALL_INDEX
    if _ALL_INDEX is None:
        _ALL_INDEX = phrase_index(_ALL)
    # a text without letters shares no token or trigram with any (worded) phrase
    cleaned = [_clean(t) for t in texts]
    wanted = [bool(t) and len(t) <= 60 and _LETTER.search(t) is not None for t in cleaned]
    scored = _ALL_INDEX.best_many([t for t, w in zip(cleaned, wanted, strict=True) if w])
    it = iter(scored)
    return [next(it) if w else 0.0 for w in wanted]


_LETTER = re.compile(r"[^\W\d_]")


_ALL_INDEX: PhraseIndex | None = None
