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


def _ctx(*lines: Line) -> DocContext:
    return DocContext.build([Page(number=1, width=762, height=1000, dpi=72, lines=list(lines))])


def _pair(cands: P.Candidates, key: str, value: str) -> int | None:
    """The index of the candidate pair with these key and value texts (None when absent)."""
    for n, (k, v) in enumerate(cands.pairs):
        if cands.units[k].text == key and cands.units[v].text == value:
            return n
    return None


def test_label_wrapped_over_lines_is_one_key():
    # a column header of two centred lines over a number
    ctx = _ctx(_line("Filter", 300, 100), _line("Plug Length", 283, 100 + 1.05 * LINE_H),
               _line("20 mm", 300, 100 + 3.0 * LINE_H))  # fmt: skip
    units, keys = P.units_of(ctx)
    block = [u for u in units if u.kind == P.KEY_BLOCK]
    assert [u.text for u in block] == ["Filter Plug Length"]
    assert units.index(block[0]) in keys and len(block[0].lines) == 2
    cands = P.candidates(ctx)
    n = _pair(cands, "Filter Plug Length", "20 mm")
    assert n is not None and cands.X[n, P.BASE.index("direction")] == 2
    # a value never is a wrapped label, and a line far under a label does not join it
    assert _pair(cands, "20 mm", "Filter Plug Length") is None
    far = _ctx(_line("Filter", 300, 100), _line("Plug Length", 283, 100 + 2.5 * LINE_H))
    assert not [u for u in P.units_of(far)[0] if u.kind == P.KEY_BLOCK]


def test_value_written_above_its_label_is_a_candidate():
    # a signature line: the name above the printed label, none of it to the right
    ctx = _ctx(_line("J. Smith", 80, 200), _line("Signature", 70, 200 + 1.2 * LINE_H))
    cands = P.candidates(ctx)
    n = _pair(cands, "Signature", "J. Smith")
    assert n is not None and cands.X[n, P.BASE.index("direction")] == 4
    # not from far above, nor from a text that does not overlap the label
    ctx = _ctx(_line("J. Smith", 80, 200), _line("Signature", 70, 200 + 4 * LINE_H),
               _line("Leeds", 400, 300 - 1.2 * LINE_H), _line("Town", 200, 300))  # fmt: skip
    cands = P.candidates(ctx)
    assert _pair(cands, "Signature", "J. Smith") is None and _pair(cands, "Town", "Leeds") is None


def test_value_lower_than_its_label_row_is_right_or_below():
    # a handwritten value a little off the label's line, to the right
    ctx = _ctx(_line("Project Title:", 60, 100), _line("Newport Lights", 200, 100 - 0.65 * LINE_H))
    cands = P.candidates(ctx)
    n = _pair(cands, "Project Title:", "Newport Lights")
    assert n is not None and cands.X[n, P.BASE.index("direction")] == 1
    # a value under a small label that overlaps its row: below it
    ctx = _ctx(_line("CODE", 60, 100), _line("B73", 62, 100 + 0.55 * LINE_H))
    cands = P.candidates(ctx)
    n = _pair(cands, "CODE", "B73")
    assert n is not None and cands.X[n, P.BASE.index("direction")] == 2


def test_value_block_takes_a_centred_last_line():
    ctx = _ctx(_line("Approved by:", 60, 100), _line("Director of Technical Operations", 160, 118),
               _line("Tobacco", 250, 133))  # fmt: skip
    texts = {u.text for u in P.units_of(ctx)[0] if u.kind == P.BLOCK}
    assert "Director of Technical Operations Tobacco" in texts
    # an unaligned line under it is not part of it
    ctx = _ctx(_line("Approved by:", 60, 100), _line("Director of Technical Operations", 160, 118),
               _line("Tobacco", 420, 133))  # fmt: skip
    texts = {u.text for u in P.units_of(ctx)[0] if u.kind == P.BLOCK}
    assert "Director of Technical Operations Tobacco" not in texts


def test_decode_shares_a_value_only_when_sure():
    # a table cell under its column header and right of its row label
    ctx = _ctx(_line("Weight", 200, 100), _line("Tar", 60, 130), _line("31.0", 205, 130))
    cands = P.candidates(ctx)
    a, b = _pair(cands, "Weight", "31.0"), _pair(cands, "Tar", "31.0")
    assert a is not None and b is not None
    probs = np.zeros(len(cands.pairs))
    probs[a], probs[b] = 0.9, 0.6
    two = P.decode(cands, probs, threshold=0.3, second=1.1, share=0.5)
    assert sorted(lk.key.text for lk in two) == ["Tar", "Weight"]
    one = P.decode(cands, probs, threshold=0.3, second=1.1, share=0.7)
    assert [lk.key.text for lk in one] == ["Weight"]
    assert [lk.key.text for lk in P.decode(cands, probs, threshold=0.3)] == ["Weight"]


def test_ranks_and_nearer_sums_by_group():
    groups = np.array([0, 1, 0, 0, 1])
    dist = np.array([3.0, 1.0, 1.0, 2.0, 0.0])
    rank, size = P._ranks(groups, dist)
    assert rank.tolist() == [2, 1, 0, 1, 0] and size.tolist() == [3, 2, 3, 3, 2]
    near = P._nearer(groups, dist, np.array([1.0, 10.0, 100.0, 1000.0, 10000.0]))
    assert near.tolist() == [1100.0, 10000.0, 0.0, 100.0, 0.0]


def test_decode_chains_a_column_under_its_header():
    # a header over a column of cells, then a cell far under the column
    ctx = _ctx(_line("SCORE", 200, 100), _line("1.0", 205, 130), _line("2.0", 205, 148),
               _line("3.0", 205, 166), _line("9.0", 205, 166 + 5 * LINE_H))  # fmt: skip
    cands = P.candidates(ctx)
    cells = [_pair(cands, "SCORE", c) for c in ("1.0", "2.0", "3.0", "9.0")]
    assert None not in cells
    probs = np.zeros(len(cands.pairs))
    probs[cells] = [0.9, 0.05, 0.04, 0.05]
    chained = P.decode(cands, probs, threshold=0.3, chain=0.02)
    assert sorted(lk.value.text for lk in chained) == ["1.0", "2.0", "3.0"]  # not the far one
    assert [lk.value.text for lk in P.decode(cands, probs, threshold=0.3, chain=0.045)] == [
        "1.0",
        "2.0",
    ]  # the chain stops at the first cell below its threshold
    assert [lk.value.text for lk in P.decode(cands, probs, threshold=0.3)] == ["1.0"]


def _joined(parts: list[str], x: float, y: float, gap: float) -> Line:
    """One OCR line of several fields, ``gap`` apart (a table's row read as one line)."""
    words, cx = [], x
    for part in parts:
        for w in part.split():
            words.append(Word(text=w, bbox=(cx, y, cx + CHAR_W * len(w), y + LINE_H), conf=0.95))
            cx += CHAR_W * (len(w) + 1)
        cx += gap - CHAR_W
    return Line(text=" ".join(w.text for w in words), bbox=(x, y, words[-1].bbox[2], y + LINE_H),
                words=words, conf=0.95, page=1)  # fmt: skip


def test_line_cut_at_wide_gaps_into_segments():
    ctx = _ctx(_joined(["17,000", "25,500", "Consumer Sampling"], 60, 200, 3 * LINE_H))
    units, keys = P.units_of(ctx)
    segs = {u.text for u in units if u.kind == P.SEGMENT}
    assert {"17,000", "25,500", "Consumer Sampling", "17,000 25,500"} <= segs
    assert "17,000 25,500 Consumer Sampling" not in segs  # the whole line is its own unit
    seg = next(u for u in units if u.text == "25,500")
    assert seg.bbox[0] > 60 + 3 * LINE_H and seg.bbox[2] < seg.bbox[0] + CHAR_W * 7
    assert units.index(seg) in keys and len(seg.toks) == 1
    # words at an ordinary gap stay together
    ctx = _ctx(_line("Consumer Sampling 20s", 60, 200))
    assert not [u for u in P.units_of(ctx)[0] if u.kind == P.SEGMENT]


def test_decode_lets_fields_of_one_line_serve_two_keys():
    # two column headers over one OCR line holding both cells
    ctx = _ctx(_line("ACTUAL", 60, 100), _line("TOTAL", 60 + 8 * LINE_H, 100),
               _joined(["17,000", "25,500"], 60, 100 + 1.5 * LINE_H, 6 * LINE_H))  # fmt: skip
    cands = P.candidates(ctx)
    a, b = _pair(cands, "ACTUAL", "17,000"), _pair(cands, "TOTAL", "25,500")
    whole = _pair(cands, "ACTUAL", "17,000 25,500")
    assert None not in (a, b, whole)
    probs = np.zeros(len(cands.pairs))
    probs[[a, b]] = 0.8
    links = P.decode(cands, probs, threshold=0.3)
    assert sorted((lk.key.text, lk.value.text) for lk in links) == [("ACTUAL", "17,000"),
                                                                     ("TOTAL", "25,500")]  # fmt: skip
    # but a word is used once: the whole line, taken first, blocks both cells
    probs[whole] = 0.9
    links = P.decode(cands, probs, threshold=0.3)
    assert [(lk.key.text, lk.value.text) for lk in links] == [("ACTUAL", "17,000 25,500")]


def test_training_leaves_out_the_same_words_elsewhere():
    ctx = _ctx(_line("Date:", 60, 100), _line("9/3/92", 140, 100),
               _line("Date:", 60, 400), _line("9/3/92", 140, 400))  # fmt: skip
    cands = P.candidates(ctx)
    truth = [{"key": "Date:", "value": "9/3/92", "key_box": (60, 100, 95, 114),
              "value_box": (140, 100, 182, 114)}]  # fmt: skip
    y, off = P.pair_labels(cands, truth), P.off_truth(cands, truth)
    texts = [(cands.units[k].bbox[1], cands.units[v].bbox[1]) for k, v in cands.pairs]
    assert {texts[n] for n in np.nonzero(y & ~off)[0]} == {(100, 100)}
    assert (400, 400) in {texts[n] for n in np.nonzero(off)[0]}
    # without boxes nothing is left out
    assert not P.off_truth(cands, [{"key": "Date:", "value": "9/3/92"}]).any()
