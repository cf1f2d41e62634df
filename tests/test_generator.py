"""The procedural document generator: determinism, variety, truth printed, folder output."""

from __future__ import annotations

import json
from functools import lru_cache

from docvlm.evaluate import normalise
from docvlm.normalize import compact, parse_amount, parse_date
from docvlm.read.learned.features import DocLines, typed_candidates
from docvlm.read.learned.generator import (
    HELD_OUT_TEMPLATES,
    TEMPLATES,
    TRAIN_TEMPLATES,
    _check,
    generate,
    generate_labelled,
    pdf_text,
    to_labelled,
    write_folder,
)
from docvlm.schema import load_schema, schema_from_dict


@lru_cache(maxsize=1)
def _docs():
    return [generate(s) for s in range(40)]


def test_same_seed_same_document():
    a, b = generate(123), generate(123)
    assert a.truth == b.truth and a.schema == b.schema and a.template == b.template
    assert pdf_text(a) == pdf_text(b)
    c = generate(123, template="receipt")
    assert c.template == "receipt"
    assert generate(124).truth != a.truth


def test_variety_over_forty_seeds():
    docs = _docs()
    assert len({d.template for d in docs}) >= 6
    assert len({d.language for d in docs}) >= 3
    names = {k for d in docs for k in d.truth}
    assert len(names) >= 15
    assert all(4 <= len(d.truth) <= 8 for d in docs)
    assert any(d.pages > 1 for d in generate_docs_multi())


def generate_docs_multi():
    return [generate(s) for s in range(40, 70)]


def test_every_truth_value_is_printed():
    for d in _docs():
        _check(d)
        text = compact(pdf_text(d))
        spec = schema_from_dict(d.schema, "t")
        for f in spec.fields:
            truth, shown = d.truth[f.path], d.printed[f.path]
            assert compact(shown) in text, (d.seed, f.path, shown)
            if f.is_date:
                assert parse_date(shown, d.dayfirst) == truth, (d.seed, f.path, shown)
            elif f.is_number:
                assert normalise(f, parse_amount(shown, d.decimal_comma)) == normalise(f, truth)
            elif f.enum:
                assert truth in f.enum
            else:
                assert normalise(f, shown) == normalise(f, truth), (d.seed, f.path, shown)


def test_labelled_pages_hold_the_true_candidates():
    """Most truth values are among the candidates the scorer ranks (text layer)."""
    found = total = 0
    for d in _docs()[:12]:
        lab = to_labelled(d, f"t{d.seed}.pdf")
        assert lab.pages and all(p.dpi == 150 and p.lines for p in lab.pages)
        assert all(w.origin == "pdf" and w.conf == 1.0 for p in lab.pages for w in p.words)
        lines = DocLines.build(lab.pages)
        for f in lab.schema.fields:
            want = normalise(f, lab.truth[f.path])
            total += 1
            found += any(normalise(f, c.value) == want for c in typed_candidates(lines, f))
    assert found >= 0.9 * total, (found, total)


def test_scan_noise():
    clean, noisy = generate(7), generate(7, scan=True)
    a, b = to_labelled(clean, "a.pdf"), to_labelled(noisy, "b.pdf")
    wa = [w for p in a.pages for w in p.words]
    wb = [w for p in b.pages for w in p.words]
    assert all(w.origin == "ocr" and w.conf < 1 for w in wb)
    assert [w.bbox for w in wa] != [w.bbox for w in wb]
    assert a.truth == b.truth
    texts = [w.text for w in wb]
    assert texts == [w.text for p in to_labelled(noisy, "c.pdf").pages for w in p.words]


def test_generate_labelled():
    docs = generate_labelled(4, seed=2)
    assert len(docs) == 4 and all(d.source == "generated" for d in docs)
    for i, d in enumerate(docs):
        template = d.name.split("-")[1]
        assert d.name == f"gen-{template}-{200000 + i}.pdf" and template in TRAIN_TEMPLATES
        assert set(d.truth) == {f.path for f in d.schema.fields}


def test_write_folder(tmp_path):
    folder = write_folder(tmp_path / "f", 3, seed=4)
    pdfs = sorted(folder.glob("*.pdf"))
    labels = sorted((folder / "labels").glob("*.json"))
    assert len(pdfs) == 3 and len(labels) == 3
    assert [p.stem for p in pdfs] == [p.stem for p in labels]
    spec = load_schema(folder / "schema.json")
    for lab in labels:
        assert set(json.loads(lab.read_text())) == {f.path for f in spec.fields}


def test_held_out_templates():
    assert len(HELD_OUT_TEMPLATES) == 2
    assert not set(HELD_OUT_TEMPLATES) & set(TRAIN_TEMPLATES)
    assert set(HELD_OUT_TEMPLATES) | set(TRAIN_TEMPLATES) == set(TEMPLATES)
    docs = generate_labelled(3, seed=9, templates=HELD_OUT_TEMPLATES)
    assert all(d.meta["template"] in HELD_OUT_TEMPLATES for d in docs)
