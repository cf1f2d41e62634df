"""Match a schema's fields to named concepts by their words (names, titles, descriptions).

A *concept* is anything with an ``id``, a ``kind`` and phrases that name it (``words``) plus a
``description``: EN 16931 business terms for the e-invoice reader, label vocabularies for a
generalising page reader. A field is described by its own words only — its name split into
words, its title, its description (cut into phrases at brackets and commas), and the name and
title of the object it belongs to — never by a list of known field names.

Similarity is lexical and multilingual by construction: token overlap (Dice) plus character
trigram overlap, so 'Rechnungs-Nr.' meets 'Rechnungsnummer' and 'invoice_no' meets 'Invoice
number'; a bag-of-words term, weighted by how rare each word is among the concepts, breaks
ties with the descriptions. Assignment is one-to-one, best pairs first.

Public entry points: :func:`similarity` and :func:`match_fields`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Protocol

from docvlm.normalize import ascii_words, fold
from docvlm.schema import FieldSpec

_STOP = frozenset(
    "a an the of for to in on by at with and or is are be as its it this that which from per "
    "der die das des dem den ein eine einer und oder für von im am zu zum zur mit "
    "le la les l d de du des un une et ou pour par au aux en sur".split()
)  # fmt: skip
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
# list separators only: a sentence's qualifiers ('Total incl. VAT') stay with it
_DESC_SPLIT = re.compile(r"[(),;:/\[\]]|\s[-–]\s|\be\.g\.|\bi\.e\.")


class Concept(Protocol):
    """What the matcher needs of a concept."""

    id: str
    kind: str
    description: str

    @property
    def words(self) -> tuple[str, ...]: ...


@dataclass(frozen=True)
class FieldMatch:
    """A field's concept and how sure the match is (1.0 when pinned by the schema)."""

    path: str
    concept: str
    score: float
    pinned: bool = False


def split_name(name: str) -> str:
    """``invoiceNo`` / ``invoice_no`` / ``invoice-no`` → ``invoice no``."""
    return " ".join(_CAMEL.sub(" ", name).replace("_", " ").replace("-", " ").split())


def _stem(token: str) -> str:
    if len(token) > 5 and token.endswith("ing"):
        return token[:-3]
    if len(token) > 4 and token.endswith("ed") and not token.endswith("eed"):
        return token[:-2]
    if len(token) > 4 and token.endswith("ies"):
        return token[:-3] + "y"
    if len(token) > 3 and token.endswith("s") and not token.endswith("ss"):
        return token[:-1]
    return token


_UMLAUTS = str.maketrans(
    {"ä": "ae", "ö": "oe", "ü": "ue", "ß": "ss", "Ä": "Ae", "Ö": "Oe", "Ü": "Ue"}
)


#: a compound's head and the part before it: at least this long ('invalidate' is no 'date',
#: 'prestation' no 'station', 'therefrom' no 'from')
_HEAD_MIN, _MODIFIER_MIN = 5, 4


@lru_cache(maxsize=1)
def _compound_words() -> tuple[frozenset[str], frozenset[str]]:
    """The words a compound may end in (each word of the business vocabulary's phrases, five
    letters or more) and the words never split (those, and every word the word vectors know:
    English words and the vocabulary's own compounds, 'rechnungsnummer', 'workshop')."""
    from docvlm.read.learned import semantic
    from docvlm.read.learned.vocab import vocabulary_words

    heads = frozenset(w for w in vocabulary_words() if len(w) >= _HEAD_MIN)
    wv = semantic.word_vectors()
    known = heads | (frozenset(wv.rows) if wv is not None else frozenset())
    return heads, known


@lru_cache(maxsize=65536)
def compound_parts(word: str) -> tuple[str, ...]:
    """A folded word as the parts a label compound is read by: a German compound that the
    vocabulary does not list ('bruttosumme', 'handelsrechnung', 'leistungsempfaenger') as the
    part before its head and the head, when the head is a vocabulary word ('summe', 'rechnung',
    'empfaenger'); any other word as itself. The longest such head wins."""
    if len(word) < _HEAD_MIN + _MODIFIER_MIN or not word.isalpha():
        return (word,)
    heads, known = _compound_words()
    # a known word, or one inflected ('receipts', 'billing')
    if word in known or any(word[:-k] in known for k in (1, 2, 3)):
        return (word,)
    for cut in range(_MODIFIER_MIN, len(word) - _HEAD_MIN + 1):
        if word[cut:] in heads:
            return (word[:cut], word[cut:])
    return (word,)


def folded_words(text: str) -> list[str]:
    """The words of ``text`` folded (German umlauts as 'ae', 'oe', 'ue', the way identifiers
    spell them; an ASCII text has none to spell out)."""
    return ascii_words(text) if text.isascii() else fold(text.translate(_UMLAUTS)).split()


def label_words(text: str) -> list[str]:
    """:func:`folded_words`, each compound as its parts (:func:`compound_parts`): the words
    that label similarity compares, stop words still in."""
    return [p for w in folded_words(text) for p in compound_parts(w)]


@lru_cache(maxsize=8192)
def tokens(text: str) -> tuple[str, ...]:
    """Stemmed content words of ``text``: its :func:`label_words` without stop words."""
    return tuple(_stem(w) for w in label_words(text) if w not in _STOP)


@lru_cache(maxsize=8192)
def _grams(text: str) -> frozenset[str]:
    s = " " + " ".join(tokens(text)) + " "
    return frozenset(s[i : i + 3] for i in range(len(s) - 2))


def similarity(a: str, b: str) -> float:
    """How alike two short phrases are, 0..1: token Dice and character-trigram Dice."""
    ta, tb = tokens(a), tokens(b)
    if not ta or not tb:
        return 0.0
    if ta == tb:
        return 1.0
    sa, sb = set(ta), set(tb)
    dice = 2 * len(sa & sb) / (len(sa) + len(sb))
    ga, gb = _grams(a), _grams(b)
    tri = 2 * len(ga & gb) / (len(ga) + len(gb)) if ga and gb else 0.0
    return 0.6 * dice + 0.4 * tri


def description_phrases(text: str | None) -> list[str]:
    """A description cut into the phrases it lists ('Total (net, Nettobetrag)' → 3)."""
    if not text:
        return []
    parts = [p.strip().rstrip(".").strip() for p in _DESC_SPLIT.split(text)]
    return [p for p in parts if p and len(tokens(p)) <= 8]


@dataclass(frozen=True)
class FieldWords:
    """The words of one field: primary (name, title, with the parent's) and descriptive."""

    primary: tuple[str, ...]
    secondary: tuple[str, ...]
    bag: frozenset[str]


def field_words(spec: FieldSpec, context: Sequence[str] = ()) -> FieldWords:
    """The phrases a field is known by. ``context``: name/title/description of the object or
    array the field belongs to (nearest first)."""
    name = split_name(spec.name)
    primary = [name]
    if spec.title:
        primary.append(spec.title)
    parents = [c for c in context[:2] if c]
    for parent in parents:
        primary.append(f"{split_name(parent)} {name}")
        if spec.title and not set(tokens(parent)) & set(tokens(spec.title)):
            primary.append(f"{split_name(parent)} {spec.title}")
    secondary = description_phrases(spec.description)
    secondary.extend(str(x) for x in spec.labels)
    bag = set()
    for text in (*primary, *secondary, *context):
        bag.update(tokens(text))
    return FieldWords(
        tuple(dict.fromkeys(primary)), tuple(dict.fromkeys(secondary)), frozenset(bag)
    )


class _Idf:
    def __init__(self, concepts: Sequence[Concept]) -> None:
        df: dict[str, int] = {}
        self.bags: dict[str, frozenset[str]] = {}
        for c in concepts:
            bag = frozenset(t for text in (*c.words, c.description) for t in tokens(text))
            self.bags[c.id] = bag
            for t in bag:
                df[t] = df.get(t, 0) + 1
        n = max(len(concepts), 1)
        self.weight = {t: math.log(1 + n / d) for t, d in df.items()}
        self.unknown = math.log(1 + n)

    def cosine(self, words: frozenset[str], concept_id: str) -> float:
        bag = self.bags[concept_id]
        if not words or not bag:
            return 0.0
        w = lambda t: self.weight.get(t, self.unknown)  # noqa: E731
        shared = sum(w(t) ** 2 for t in words & bag)
        norm = math.sqrt(sum(w(t) ** 2 for t in words) * sum(w(t) ** 2 for t in bag))
        return shared / norm if norm else 0.0


def score(words: FieldWords, concept: Concept, idf: _Idf | None = None) -> float:
    """How well a field's words name ``concept``, 0..1."""
    best_primary = max(
        (similarity(p, q) for p in words.primary for q in concept.words), default=0.0
    )
    best_desc = max((similarity(p, q) for p in words.secondary for q in concept.words), default=0.0)
    bag = idf.cosine(words.bag, concept.id) if idf else 0.0
    return 0.75 * max(best_primary, 0.9 * best_desc) + 0.25 * bag


def match_fields(
    fields: Sequence[FieldSpec],
    concepts: Sequence[Concept],
    *,
    context: Mapping[str, Sequence[str]] | None = None,
    compatible: Callable[[FieldSpec, Concept], float] | None = None,
    pins: Mapping[str, str | None] | None = None,
    threshold: float = 0.5,
) -> dict[str, FieldMatch]:
    """Each field's best concept, one-to-one, for the fields whose words match well enough.

    Args:
        fields: Schema fields (``FieldSpec.path`` keys the result).
        concepts: What fields can be matched to.
        context: Per field path, the words of the objects it sits in (nearest first).
        compatible: A factor 0..1 for a field/concept pair (0 forbids it: wrong type).
        pins: Per field path, a concept id chosen by the schema (or None: never match).
        threshold: The least score that counts as a match.

    Returns:
        ``{field path: FieldMatch}``; unmatched fields are absent.
    """
    pins = pins or {}
    context = context or {}
    by_id = {c.id: c for c in concepts}
    result: dict[str, FieldMatch] = {}
    taken: set[str] = set()
    for spec in fields:
        if spec.path in pins:
            cid = pins[spec.path]
            if cid is not None and cid in by_id:
                result[spec.path] = FieldMatch(spec.path, cid, 1.0, pinned=True)
                taken.add(cid)
    idf = _Idf(concepts)
    pairs: list[tuple[float, int, str, str]] = []
    for i, spec in enumerate(fields):
        if spec.path in pins:
            continue
        words = field_words(spec, context.get(spec.path, ()))
        for c in concepts:
            if c.id in taken:
                continue
            factor = compatible(spec, c) if compatible else 1.0
            if factor <= 0:
                continue
            s = score(words, c, idf) * factor
            if s >= threshold:
                pairs.append((s, -i, spec.path, c.id))
    for s, _, path, cid in sorted(pairs, reverse=True):
        if path in result or cid in taken:
            continue
        result[path] = FieldMatch(path, cid, round(s, 4))
        taken.add(cid)
    return result


__all__ = [
    "Concept",
    "FieldMatch",
    "FieldWords",
    "description_phrases",
    "field_words",
    "match_fields",
    "score",
    "similarity",
    "split_name",
    "tokens",
]
