"""The learned key→value linker of forms: the shipped model, a tiny training run on synthetic
pages, and ``read_pairs`` on a synthetic form page."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest

from docvlm.datamodel import Line, Page, Word
from docvlm.normalize import compact
from docvlm.read.learned import pairs as P
from docvlm.read.rules.context import DocContext

CHAR_W, LINE_H = 7.0, 14.0


def _line(text: str, x: float, y: float, page: int = 1) -> Line:
    words, cx = [], x
    for w in text.split():
        words.append(Word(text=w, bbox=(cx, y, cx + CHAR_W * len(w), y + LINE_H), conf=0.95))
        cx += CHAR_W * (len(w) + 1)
    return Line(text=" ".join(w.text for w in words), bbox=(x, y, cx - CHAR_W, y + LINE_H),
                words=words, conf=0.95, page=page)  # fmt: skip


LABELS = ["Name", "Date", "Phone", "Company", "City", "Account", "Reference", "Brand",
          "Department", "Signature", "Country", "Amount"]  # fmt: skip
VALUES = ["Harriet Okafor", "9/3/92", "555 1234", "Acme Tools", "Leeds", "AC-1182", "R 7731",
          "Winston", "Research", "J. Smith", "Canada", "12,400"]  # fmt: skip


def _form(rng: random.Random) -> tuple[Page, list[dict]]:
    """A form page: a title, labels with the value to the right (with or without colon) and
    labels with the value below; the truth pairs."""
    lines = [_line("APPLICATION FORM", 250, 40)]
    truth = []
    order = rng.sample(range(len(LABELS)), 8)
    y = 100.0
    for n, i in enumerate(order):
        label, value = LABELS[i], VALUES[i]
        colon = rng.random() < 0.5
        key = f"{label}:" if colon else label
        if n % 2 == 0:  # value to the right
            lines.append(_line(key, 60, y))
            lines.append(_line(value, 60 + CHAR_W * 14 + rng.uniform(10, 60), y))
            y += 2.2 * LINE_H
        else:  # value below, left-aligned
            lines.append(_line(key, 60, y))
            lines.append(_line(value, 60 + rng.uniform(0, 6), y + 1.3 * LINE_H))
            y += 3.4 * LINE_H
        truth.append({"key": key, "value": value})
    lines.append(_line("Please return this form to the office", 60, y + 3 * LINE_H))
    return Page(number=1, width=762, height=1000, dpi=72, lines=lines), truth


def _docs(n: int, seed: int) -> list[tuple[str, DocContext, list[dict]]]:
    rng = random.Random(seed)
    out = []
    for k in range(n):
        page, truth = _form(rng)
        out.append((f"form{k}", DocContext.build([page]), truth))
    return out


def _found(links: list[P.Link], truth: list[dict]) -> int:
    return P.f1_counts(links, truth)[0]


def test_shipped_model_loads_and_scores():
    model = P.PairModel()
    assert model.folder == P.EMBEDDED
    assert 0.0 < model.threshold < 1.0
    assert model.meta["features"] == list(P.FEATURES)
    size = sum((P.EMBEDDED / f).stat().st_size for f in (P.MODEL_FILE, P.ROLES_FILE))
    assert size < 2_000_000
    ((_, ctx, _),) = _docs(1, seed=3)
    cands = P.candidates(ctx)
    probs = model.predict(cands)
    assert probs.shape == (len(cands.pairs),)
    assert len(cands.pairs) > 8
    assert np.all((probs >= 0) & (probs <= 1))
    assert P.shipped() is P.shipped()  # loaded once


def test_units_split_colon_and_words():
    ctx = DocContext.build([Page(number=1, width=762, height=1000, dpi=72,
                                 lines=[_line("Date: 9/3/92", 60, 100), _line("Brand Winston", 60, 140)])])  # fmt: skip
    units, keys = P.units_of(ctx)
    texts = {(u.kind, u.text) for u in units}
    assert (P.KEY_PART, "Date") in texts and (P.VALUE_PART, "9/3/92") in texts
    assert (P.SPLIT_KEY, "Brand") in texts and (P.SPLIT_VALUE, "Winston") in texts
    value = next(u for u in units if u.text == "9/3/92")
    assert value.bbox[0] > 60 + CHAR_W * 4  # the value's own box starts after the colon
    assert all(units[k].kind != P.VALUE_PART for k in keys)


def test_tiny_training_links_right_and_below(tmp_path):
    train = _docs(16, seed=1)
    meta = P.train_pairs(train, tmp_path / "m", rounds=40, folds=2, repeats=1)
    assert meta["positives"] > 0 and meta["reachable_pairs"] == meta["truth_pairs"]
    assert (tmp_path / "m" / P.MODEL_FILE).is_file() and (tmp_path / "m" / P.ROLES_FILE).is_file()
    model = P.PairModel(tmp_path / "m")
    found = total = 0
    for _, ctx, truth in _docs(4, seed=99):
        links = model.links(ctx)
        found += _found(links, truth)
        total += len(truth)
        assert len(links) <= len(truth) + 2
    assert found >= 0.85 * total


def test_read_pairs_links_right_and_below_with_provenance():
    from docvlm.read.rules.items import read_pairs
    from docvlm.schema import load_schema

    schema = load_schema(Path(__file__).resolve().parent.parent / "schemas" / "form.schema.json")
    (arr,) = [a for a in schema.arrays if a.is_key_value]
    lines = [
        _line("MEMBERSHIP APPLICATION", 200, 40),
        _line("Name:", 60, 100),
        _line("Harriet Okafor", 200, 100),
        _line("Address:", 60, 150),
        _line("12 Elm Street, Leeds", 60, 168),
    ]
    ctx = DocContext.build([Page(number=1, width=762, height=1000, dpi=72, lines=lines)])
    values = read_pairs(arr, ctx, "ocr")
    by_path = {v.path: v for v in values}
    pairs = {}
    for path, v in by_path.items():
        if path.endswith("/key"):
            value = by_path.get(path[: -len("key")] + "value")
            pairs[compact(v.value)] = (v, value)
    assert set(pairs) >= {"name", "address"}
    key, value = pairs["name"]
    assert value is not None and value.value == "Harriet Okafor"
    assert value.page == 1 and value.bbox[0] == pytest.approx(200) and value.reader == "ocr"
    assert key.bbox[2] <= value.bbox[0] and 0 < value.confidence <= 1
    key, value = pairs["address"]
    assert value is not None and value.value == "12 Elm Street, Leeds"
    assert value.bbox[1] == pytest.approx(168) and value.page == 1
