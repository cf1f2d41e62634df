"""Field words that mean a term group without sharing its letters ('retailer' → seller).

Lexical similarity (:func:`docvlm.read.fieldmatch.similarity`) matches 'vendor_name' to the
seller group but cannot know that 'retailer' or 'sum' mean the seller or the total. Here each
English word has a small vector (``docvlm/models/words/words.npz``: all-MiniLM-L6-v2's view of
the word on its own, 64 dimensions, built by ``benchmarks/build_word_vectors.py``), read with
numpy only, once, on first use.

A phrase is its content words: folded, stop-words and unknown words skipped ('#', 'no', 'nr'
read as 'number'), a trailing 'name' / 'amount' / 'value' taken off ('retailer name' names the
retailer). Two phrases are compared on the words they do not share: each of one's own words
paired with one of the other's, the pairing's weakest cosine (every differing word must mean its
partner: 'invoice number' ~ 'bill number' through invoice ~ bill alone, where an average over
whole phrases would let the shared 'number' carry 'contract number' to 'customer number').
Phrases with the same words are the same (cosine 1: lexical similarity has them); a phrase whose
words are a part of the other's, or one that differs by a different number of words, is left to
lexical similarity too. Phrases resting on a direction word ('bill to', 'sold by', 'from') are
not compared at all: their vectors lose the direction, and 'biller' would meet 'bill to'.

A field phrase reaches a group when that group holds its best head phrase (the first
six of the group, its English meaning), by a cosine of at least :data:`LO`, at least
:data:`MARGIN` ahead of every other group, and not by sameness (that is lexical similarity's
match, which the caller keeps). Word vectors put antonyms and neighbours close ('seller' ~
'buyer' 0.72, 'amount' ~ 'quantity' 0.67), so only one clear winner counts.

How cosines become scores on the lexical scale (0.45: a field reaches a group; 0.6: the group
decides a field's role; 0.9: a printed wording; 1: a head phrase) was chosen on the term groups
themselves, never on the dev sets; :func:`calibration` recomputes the figures. Each head phrase
against its own group's other head phrases (another wording of the same meaning: the positives,
111 pairs) and against each other group's (the negatives, 2232), sameness left out:

==========  =====  =====  =====  =====  =====
quantile     0.5    0.75   0.9    0.95   0.99
==========  =====  =====  =====  =====  =====
positives    0.34   0.53   0.67
negatives                  0.29   0.35   0.44
==========  =====  =====  =====  =====  =====

And which group each of the 121 head phrases (as words) reaches by the rule above, with the
phrase itself left out, for a few thresholds (margin 0.1):

=====  ==========  ====================================================================
LO     own group   another group
=====  ==========  ====================================================================
0.45   37          7: seller/buyer (antonyms), vat (tax/tax_rate), net, nettobetrag
                   (net_amount/subtotal overlap), payment due → total, amount due → due
0.50   33          6: as above less vat
0.55   24          4: seller/buyer, net, nettobetrag
0.60   23          4: the same
0.65   15          3
=====  ==========  ====================================================================

:data:`LO` = 0.55 is the lowest threshold at which the only other groups reached are the
antonyms and the overlapping net groups (and it is over the negatives' 99th percentile); it maps
to the reach threshold 0.45. :data:`HI` = 0.67, the positives' 90th percentile, maps to
:data:`SCORE_HI` = 0.8, linear between, no higher: a synonym stays below a printed wording.
Checked after the choice (not chosen on): 'retailer' → seller 0.66, 'sum' → total 0.47; wrong
but close in the vectors: 'count' → total 0.51, 'recipient' → email 0.48, 'cash' → currency
0.51; 'payee' (not a vocabulary word), 'biller', 'restaurant', 'outlet', 'business name',
'consignee', 'proprietor' reach nothing.
"""

from __future__ import annotations

import itertools
import json
import logging
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from docvlm.normalize import fold
from docvlm.read.fieldmatch import _STOP

log = logging.getLogger(__name__)

WORDS = Path(__file__).resolve().parents[2] / "models" / "words" / "words.npz"

#: cosine at which a field phrase reaches a group (→ score 0.45), and where the score stops
#: growing (→ :data:`SCORE_HI`); the best group must lead the next by :data:`MARGIN`
LO, HI, MARGIN = 0.55, 0.67, 0.10
SCORE_LO, SCORE_HI = 0.45, 0.8
#: at most this many content words in a phrase (longer ones are sentences)
MAX_WORDS = 3

_VALUE_OF = frozenset({"name", "amount", "value"})
_DIRECTION = frozenset("to from by until till thru through".split())
_NUMBER = {"no": "number", "nr": "number", "num": "number"}
_WORD = re.compile(r"[a-z]+")


@dataclass(frozen=True)
class WordVectors:
    """Unit-length word vectors, a row per word."""

    rows: dict[str, int]
    vectors: np.ndarray  # float32, words x dims
    meta: dict


@lru_cache(maxsize=1)
def word_vectors() -> WordVectors | None:
    """The shipped word vectors, loaded once (None, with a warning, when the file is missing)."""
    try:
        with np.load(WORDS, allow_pickle=False) as z:
            q, words, meta = z["vectors"], z["words"], z["meta"]
    except OSError as e:
        log.warning("word vectors not loaded (%s): field words match term groups lexically only", e)
        return None
    vectors = q.astype(np.float32)
    vectors /= np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-9)
    names = words.tobytes().decode().split("\n")
    return WordVectors(
        {w: i for i, w in enumerate(names)}, vectors, json.loads(meta.tobytes().decode())
    )


@lru_cache(maxsize=4096)
def phrase_words(text: str) -> tuple[str, ...] | None:
    """A phrase's known content words, in order (None: nothing to compare it by)."""
    wv = word_vectors()
    words = _WORD.findall(fold(text.replace("#", " number ")))
    if wv is None or not words or _DIRECTION.intersection(words):
        return None
    words = [_NUMBER.get(w, w) for w in words if w not in _STOP]
    if len(words) > 1 and words[-1] in _VALUE_OF:
        words.pop()
    known = []
    for w in words:
        if w not in wv.rows and w.endswith("s") and w[:-1] in wv.rows:
            w = w[:-1]  # 'retailers' is in the vocabulary; a rarer plural may not be
        if w in wv.rows:
            known.append(w)
    known = list(dict.fromkeys(known))
    return tuple(known) if 0 < len(known) <= MAX_WORDS else None


def words_cosine(a: tuple[str, ...], b: tuple[str, ...]) -> float | None:
    """How alike two phrases' content words are, -1..1: the weakest cosine of the best pairing
    of the words each has and the other lacks (1: the same words; None: not comparable)."""
    mine, theirs = [w for w in a if w not in b], [w for w in b if w not in a]
    if not mine and not theirs:
        return 1.0
    if not mine or not theirs or len(mine) != len(theirs):
        return None
    wv = word_vectors()
    assert wv is not None  # phrase_words gave words
    cos = wv.vectors[[wv.rows[w] for w in mine]] @ wv.vectors[[wv.rows[w] for w in theirs]].T
    n = len(mine)
    return max(
        float(min(cos[i, j] for i, j in enumerate(order)))
        for order in itertools.permutations(range(n))
    )


@lru_cache(maxsize=1)
def _heads() -> tuple[tuple[str, tuple[tuple[str, ...], ...]], ...]:
    # vocab imports this module; a group's first phrases are its English meaning
    from docvlm.read.learned.vocab import _HEAD_PHRASES, TERMS

    out = []
    for gid, phrases in TERMS.items():
        words = (phrase_words(p) for p in phrases[:_HEAD_PHRASES])
        out.append((gid, tuple(dict.fromkeys(w for w in words if w))))
    return tuple(out)


@lru_cache(maxsize=1)
def _wordings() -> frozenset[frozenset[str]]:
    """The words of every phrase of every group: a field phrase with the same words is a
    known wording, which lexical similarity matches (even where it is no head phrase)."""
    from docvlm.read.learned.vocab import TERMS

    words = (phrase_words(p) for phrases in TERMS.values() for p in phrases)
    return frozenset(frozenset(w) for w in words if w)


def _best_by_group(words: tuple[str, ...], skip: tuple[str, ...] | None = None) -> dict[str, float]:
    """Per group, the best cosine of ``words`` to one of its head phrases (``skip``: a head
    phrase's words to leave out, for :func:`calibration`)."""
    best: dict[str, float] = {}
    for gid, heads in _heads():
        cosines = [c for h in heads if h != skip for c in [words_cosine(words, h)] if c is not None]
        if cosines:
            best[gid] = max(cosines)
    return best


def to_score(cosine: float) -> float:
    """A winning cosine on the lexical 0..1 scale (0 below :data:`LO`)."""
    if cosine < LO:
        return 0.0
    return SCORE_LO + (SCORE_HI - SCORE_LO) * min(1.0, (cosine - LO) / (HI - LO))


@lru_cache(maxsize=512)
def group_scores(own: tuple[str, ...]) -> dict[str, float]:
    """The term groups a field's own phrases clearly mean, each with a score on the lexical
    scale (0.45..0.8); groups they match by sameness are left to lexical similarity."""
    out: dict[str, float] = {}
    for phrase in own:
        words = phrase_words(phrase)
        if words is None or frozenset(words) in _wordings():
            continue
        ranked = sorted(_best_by_group(words).items(), key=lambda x: -x[1])
        if not ranked:
            continue
        gid, cos = ranked[0]
        runner_up = ranked[1][1] if len(ranked) > 1 else -1.0
        if cos >= 1.0 or cos < LO or cos - runner_up < MARGIN:
            continue
        out[gid] = max(out.get(gid, 0.0), round(to_score(cos), 4))
    return out


def calibration() -> dict[str, object]:
    """The figures :data:`LO` and :data:`HI` were chosen on: each head phrase against its own
    group's other head phrases (positives) and each other group's (negatives), sameness left
    out; and which group each head phrase reaches by the rule of :func:`group_scores`."""
    positives, negatives, own, other = [], [], [], []
    for gid, heads in _heads():
        for words in heads:
            best = _best_by_group(words, skip=words)
            for g, c in best.items():
                if c < 1.0:
                    (positives if g == gid else negatives).append(c)
            ranked = sorted(best.items(), key=lambda x: -x[1])
            if ranked and ranked[0][1] >= LO and ranked[0][1] < 1.0:
                runner_up = ranked[1][1] if len(ranked) > 1 else -1.0
                if ranked[0][1] - runner_up >= MARGIN:
                    (own if ranked[0][0] == gid else other).append(" ".join(words))
    q = lambda xs, p: round(float(np.quantile(xs, p)), 3)  # noqa: E731
    return {
        "positives": len(positives),
        "negatives": len(negatives),
        "positive_q50": q(positives, 0.5),
        "positive_q75": q(positives, 0.75),
        "positive_q90": q(positives, 0.9),
        "negative_q90": q(negatives, 0.9),
        "negative_q95": q(negatives, 0.95),
        "negative_q99": q(negatives, 0.99),
        "head_phrases": sum(len(h) for _, h in _heads()),
        "reach_own": own,
        "reach_other": other,
    }


__all__ = ["LO", "HI", "MARGIN", "calibration", "group_scores", "phrase_words", "word_vectors"]
