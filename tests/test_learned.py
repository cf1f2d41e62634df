"""The learned reader: multilingual label matching, typed candidates, the constraint decoder,
calibration, the shipped ONNX scorer, a tiny training run and accuracy on generated layouts
the shipped model never saw."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pymupdf
import pytest

from docvlm.datamodel import Page, ReaderOptions
from docvlm.errors import ConfigError
from docvlm.evaluate import normalise
from docvlm.lines import build_lines
from docvlm.read import get_reader
from docvlm.read.base import DocumentContent
from docvlm.read.learned.decode import FieldChoice, decode
from docvlm.read.learned.features import FEATURES, Candidate, DocLines, typed_candidates
from docvlm.read.learned.generator import HELD_OUT_TEMPLATES, generate_labelled, write_folder
from docvlm.read.learned.scorer import EMBEDDED, Calibration, Scorer
from docvlm.read.learned.vocab import field_phrases, label_similarity
from docvlm.schema import FieldSpec, schema_from_dict


def _spec(name: str, description: str, **kw) -> FieldSpec:
    return FieldSpec(
        path=name, name=name, type=kw.pop("type", "string"), description=description, **kw
    )


@pytest.mark.parametrize(
    "label", ["Contract #", "Order No.", "Rechnungsnummer", "N° de facture", "Bestellnummer"]
)
def test_number_labels_match_across_languages(label):
    field = _spec("doc_ref", "The contract, order or invoice number")
    fp = field_phrases(field)
    score = label_similarity(fp, label)
    unrelated = max(label_similarity(fp, t) for t in ("Remit Address", "Date", "Phone"))
    assert score >= 0.45, (label, score)
    assert score > unrelated + 0.2


@pytest.mark.parametrize(
    ("name", "description", "label", "other"),
    [("seller", "Name of the seller", "Verkäufer", "Käufer"),
     ("buyer", "Name of the buyer", "Rechnungsempfänger", "Verkäufer"),
     ("due", "Payment due date", "Fällig am", "Rechnungsdatum"),
     ("currency", "Currency code", "Währung", "Gesamtbetrag")],
)  # fmt: skip
def test_german_labels_match_with_their_umlauts(name, description, label, other):
    fp = field_phrases(_spec(name, description))
    score = label_similarity(fp, label)
    # as printed, and as text that lost its umlauts
    assert score >= 0.9, (label, score)
    assert label_similarity(fp, label.replace("ä", "a")) >= 0.9
    assert score > label_similarity(fp, other) + 0.3


@pytest.mark.parametrize(
    ("name", "description", "label", "other"),
    [
        ("total", "Total amount including tax", "Bruttosumme", "Positionssumme"),
        ("invoice_number", "Invoice number", "Schlussrechnung Nr.", "Steuernummer"),
        ("buyer", "Name of the buyer", "Warenempfänger", "Lieferant"),
    ],
)
def test_german_compounds_match_by_their_head(name, description, label, other):
    """A compound the vocabulary does not list reads as its parts when it ends in a vocabulary
    word ('Bruttosumme' as 'brutto summe', the vocabulary's 'summe brutto')."""
    fp = field_phrases(_spec(name, description))
    assert label_similarity(fp, label) >= 0.6, label
    assert label_similarity(fp, label) > label_similarity(fp, other) + 0.1


@pytest.mark.parametrize(
    "word", ["workshop", "prestation", "invalidate", "therefrom", "rechnungsnummer", "receipts"]
)
def test_words_that_are_no_compounds_stay_whole(word):
    """English and French words, inflections of known words and the vocabulary's own
    compounds are never cut ('workshop' is no 'shop', 'prestation' no 'station')."""
    from docvlm.read.fieldmatch import compound_parts

    assert compound_parts(word) == (word,)


def test_labels_of_other_fields_score_lower():
    total = field_phrases(_spec("amount_payable", "Total amount to pay", type="number"))
    assert label_similarity(total, "Gesamtbetrag") > label_similarity(total, "Rechnungsdatum")
    start = field_phrases(_spec("flight_from", "First day the ads run", format="date"))
    assert label_similarity(start, "Flight Start Date") > label_similarity(start, "Remit Address")


def _page(lines: list[tuple]) -> list[Page]:
    """A text-layer page of ``(x, y, text[, font size])`` lines."""
    doc = pymupdf.open()
    pg = doc.new_page(width=595, height=842)
    for x, y, text, *size in lines:
        pg.insert_text((x, y), text, fontsize=size[0] if size else 10)
    from docvlm.datamodel import Word

    words = [Word(text=w[4], bbox=(w[0], w[1], w[2], w[3])) for w in pg.get_text("words")]
    return [Page(number=1, width=595, height=842, dpi=72, has_text_layer=True,
                 lines=build_lines(words, 1))]  # fmt: skip


def test_candidates_follow_the_schema_type():
    pages = _page([(50, 50, "Order date: 05.03.2021"), (50, 70, "Total: 1.234,50 EUR"),
                   (50, 90, "Ref AB-4711")])  # fmt: skip
    doc = DocLines.build(pages)
    dates = typed_candidates(doc, _spec("d", "date", format="date"))
    amounts = typed_candidates(doc, _spec("t", "total", type="number"))
    currency = typed_candidates(doc, _spec("c", "currency", pattern="^[A-Z]{3}$"))
    assert {c.value for c in dates if not c.alt} == {"2021-03-05"}  # dotted: day first
    assert {c.value for c in dates if c.alt} == {"2021-05-03"}  # the other order, flagged
    assert {c.kind for c in dates} == {"date"}
    assert 1234.5 in {c.value for c in amounts} and all(c.kind == "amount" for c in amounts)
    assert "EUR" in {c.value for c in currency}
    strings = typed_candidates(doc, _spec("r", "reference"))
    assert "AB-4711" in {c.value for c in strings}


def test_date_order_features_say_which_reading_and_what_the_document_shows():
    """An ambiguous date gives two candidates flagged with the order each reads in; the
    document's currency, decimal mark and unambiguous dates are there for the model."""
    from docvlm.read.learned.features import _F, base_matrix

    spec = _spec("d", "date", format="date")
    us = DocLines.build(_page([(50, 50, "Date 03/04/2021"), (50, 70, "Total $12.50")]))
    cands = typed_candidates(us, spec)
    X = base_matrix(us, cands)
    reads = {c.value: X[i, _F["reads_month_first"]] for i, c in enumerate(cands)}
    assert reads == {"2021-03-04": 1.0, "2021-04-03": 0.0}  # month first, then day first
    assert all(X[:, _F["date_ambiguous"]] == 1) and all(X[:, _F["doc_usd"]] == 1)
    eu = DocLines.build(_page([(50, 50, "Datum 25.03.2021"), (50, 70, "Netto 10,50"),
                               (50, 90, "Summe 12,50 EUR")]))  # fmt: skip
    cands = typed_candidates(eu, spec)
    X = base_matrix(eu, cands)
    assert [c.value for c in cands] == ["2021-03-25"] and X[0, _F["date_ambiguous"]] == 0
    assert X[0, _F["doc_order_evidence"]] == 1 and X[0, _F["doc_decimal_comma"]] == 1
    assert X[0, _F["doc_usd"]] == 0 and X[0, _F["doc_no_currency"]] == 0


def _cand(value, line, start=0, end=5) -> Candidate:
    return Candidate("amount", value, str(value), line, start, end, (line,), (0, 0, 1, 1), 1)


def test_decoder_prefers_amounts_that_add_up_and_uses_a_span_once():
    sub = [_cand(100.0, 1), _cand(90.0, 2)]
    tax = [_cand(19.0, 3), _cand(10.0, 4)]
    total = [_cand(125.0, 5), _cand(119.0, 6)]
    groups = lambda g: ((g, 1.0),)  # noqa: E731
    fields = [
        FieldChoice("net", sub, np.array([0.6, 0.5]), groups("subtotal")),
        FieldChoice("vat", tax, np.array([0.5, 0.55]), groups("tax")),
        FieldChoice("sum", total, np.array([0.6, 0.55]), groups("total")),
    ]
    picks = decode(fields)
    assert [picks[p].cand.value for p in ("net", "vat", "sum")] == [100.0, 19.0, 119.0]
    assert all(picks[p].constrained for p in ("net", "vat", "sum"))
    shared = _cand(5.0, 9)
    two = decode([FieldChoice("a", [shared, _cand(6.0, 8)], np.array([0.9, 0.2])),
                  FieldChoice("b", [shared, _cand(7.0, 7)], np.array([0.8, 0.3]))])  # fmt: skip
    assert two["a"].cand.value == 5.0 and two["b"].cand.value == 7.0


def test_decoder_checks_tax_and_total_against_a_printed_net_amount():
    # no subtotal field: total 110 with tax 10 holds because the page prints 100 (the net);
    # the likelier 100 as the total has no net amount to go with any tax
    tax = [_cand(10.0, 3), _cand(19.0, 4)]
    total = [_cand(100.0, 5), _cand(110.0, 6), _cand(7.5, 7)]
    fields = [
        FieldChoice("vat", tax, np.array([0.7, 0.2]), (("tax", 1.0),)),
        FieldChoice("sum", total, np.array([0.6, 0.4, 0.1]), (("total", 1.0),)),
    ]
    picks = decode(fields)
    assert (picks["vat"].cand.value, picks["sum"].cand.value) == (10.0, 110.0)
    assert picks["sum"].constrained
    # without the net amount on the page, nothing holds and the likelier total stays
    other = [_cand(100.0, 5), _cand(112.0, 6)]
    fields[1] = FieldChoice("sum", other, np.array([0.6, 0.4]), (("total", 1.0),))
    picks = decode(fields)
    assert picks["sum"].cand.value == 100.0 and not picks["sum"].constrained


def test_amount_sums_see_totals_parts_and_running_sums():
    doc = DocLines.build(_page([
        (40, 40, "Coffee 3.50"), (40, 60, "Cake 6.50"), (40, 80, "Subtotal 10.00"),
        (40, 100, "Tax 0.80"), (40, 120, "Total 10.80"), (40, 140, "Cash 50.00"),
        (40, 160, "Change 39.20"), (40, 180, "Table 12"),
    ]))  # fmt: skip
    sums = doc.amount_sums()
    assert {1000, 1080, 5000} <= sums.sum_of_two[1]  # 3.50+6.50, 10.00+0.80, 10.80+39.20
    assert {80, 1000, 3920} <= sums.part_of_sum[1]
    assert 1200 not in sums.sum_of_two[1] | sums.part_of_sum[1]  # printed without decimals
    line = {ln.text: i for i, ln in enumerate(doc.lines)}
    assert (line["Subtotal 10.00"], 1000) in sums.sum_above  # the items above it
    assert (line["Total 10.80"], 1080) in sums.sum_above  # subtotal + tax above it
    assert (line["Tax 0.80"], 80) not in sums.sum_above
    spec = _spec("total", "Total amount paid", type="number")
    cands = typed_candidates(doc, spec)
    from docvlm.read.learned.features import _F, base_matrix

    X = base_matrix(doc, cands)
    by_value = {c.value: X[k] for k, c in enumerate(cands)}
    assert by_value[10.8][_F["sum_above"]] == 1 and by_value[10.8][_F["sum_of_two"]] == 1
    assert by_value[0.8][_F["sum_of_two"]] == 0 and by_value[0.8][_F["part_of_sum"]] == 1


def test_a_heading_beside_a_value_is_told_from_a_label_by_its_height():
    from docvlm.read.learned.features import _F, base_matrix

    doc = DocLines.build(_page([(40, 60, "INVOICE", 30), (380, 50, "Hale Ltd"),
                                (40, 120, "Invoice #"), (200, 120, "TH-0311")]))  # fmt: skip
    spec = _spec("invoice_number", "Invoice number")
    cands = [c for c in typed_candidates(doc, spec) if c.kind == "segment"]
    X = base_matrix(doc, cands)
    ratio = dict(zip([c.text for c in cands], X[:, _F["left_h_ratio"]], strict=True))
    assert ratio["Hale Ltd"] > 2.0  # the title is three times its height
    assert 0.7 < ratio["TH-0311"] < 1.4  # its label is set like it
    assert ratio["INVOICE"] == 0  # nothing on its left


def test_decoder_keeps_end_dates_after_start_dates():
    def d(v, line):
        return Candidate("date", v, v, line, 0, 10, (line,), (0, 0, 1, 1), 1)

    fields = [
        FieldChoice("begin", [d("2021-05-01", 1), d("2021-03-01", 2)], np.array([0.7, 0.6]),
                    (("start_date", 1.0),)),
        FieldChoice("finish", [d("2021-04-01", 3), d("2021-06-01", 4)], np.array([0.7, 0.5]),
                    (("end_date", 1.0),)),
    ]  # fmt: skip
    picks = decode(fields)
    assert picks["begin"].cand.value <= picks["finish"].cand.value


def test_calibration_is_monotone_and_fits_rates():
    rng = np.random.default_rng(0)
    scores = rng.random(2000)
    right = rng.random(2000) < scores**2  # the true rate is score²
    cal = Calibration.fit(list(scores), list(right))
    ys = [cal(x) for x in np.linspace(0, 1, 21)]
    assert all(a <= b + 1e-9 for a, b in zip(ys, ys[1:], strict=False))
    assert abs(cal(0.5) - 0.25) < 0.1 and abs(cal(0.9) - 0.81) < 0.1


def test_shipped_scorer_loads_from_the_repo():
    scorer = Scorer()
    assert scorer.folder == EMBEDDED and (EMBEDDED / "scorer.onnx").stat().st_size < 8_000_000
    p = scorer.predict(np.zeros((3, len(FEATURES)), np.float32))
    assert p.shape == (3,) and np.all((p >= 0) & (p <= 1))
    meta = json.loads((EMBEDDED / "scorer.json").read_text())
    assert meta["features"] == list(FEATURES) and meta["trained_on"]


def test_a_model_with_other_features_is_refused(tmp_path):
    for name in ("scorer.onnx", "scorer.json"):
        (tmp_path / name).write_bytes((EMBEDDED / name).read_bytes())
    meta = json.loads((tmp_path / "scorer.json").read_text())
    meta["features"] = meta["features"][:-1]
    (tmp_path / "scorer.json").write_text(json.dumps(meta))
    with pytest.raises(ConfigError, match="other features"):
        Scorer(tmp_path)
    with pytest.raises(ConfigError, match="not a scorer model"):
        Scorer(tmp_path / "nothing")


def _accuracy(reader, docs) -> tuple[float, int]:
    right = total = 0
    for d in docs:
        content = DocumentContent(d.name, d.name, d.pages, image=lambda n: None)
        values = {v.path: v for v in reader.read(content, d.schema).values}
        specs = {f.path: f for f in d.schema.fields}
        for path, truth in d.truth.items():
            total += 1
            got = values.get(path)
            right += got is not None and normalise(specs[path], got.value) == normalise(
                specs[path], truth
            )
    return right / max(total, 1), total


def test_shipped_model_reads_layouts_it_was_not_trained_on():
    """Held out by template and by seed: the shipped model never saw these layouts."""
    docs = generate_labelled(24, seed=777, templates=HELD_OUT_TEMPLATES)
    learned = get_reader(ReaderOptions(kind="learned"))
    rules = get_reader(ReaderOptions(kind="ocr"))
    acc, n = _accuracy(learned, docs)
    base, _ = _accuracy(rules, docs)
    assert n > 80
    assert acc >= 0.6, acc
    assert acc > base, (acc, base)


def test_tiny_training_run_beats_chance(tmp_path):
    from docvlm.read.learned.train import train

    docs = generate_labelled(40, seed=5)
    meta = train(docs, tmp_path / "m", rounds=40)
    assert (tmp_path / "m" / "scorer.onnx").is_file() and meta["positives"] > 20
    reader = get_reader(ReaderOptions(kind="learned", model=str(tmp_path / "m")))
    acc, n = _accuracy(reader, generate_labelled(10, seed=6))
    assert acc >= 0.4, acc  # random choice among candidates is far below (dozens per field)


def test_train_command_on_a_labelled_folder(tmp_path):
    folder = write_folder(tmp_path / "labelled", 12, seed=3)
    model = tmp_path / "model"
    run = subprocess.run(
        [sys.executable, "-m", "docvlm", "train", str(folder), "--schema",
         str(folder / "schema.json"), "--out", str(model), "--rounds", "20"],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-2000:]
    assert (model / "scorer.onnx").is_file()
    assert '"positives"' in run.stdout
    out = tmp_path / "out"
    ex = subprocess.run(
        [sys.executable, "-m", "docvlm", "extract", str(folder), "--schema",
         str(folder / "schema.json"), "--out", str(out), "--reader", "learned", "--model",
         str(model), "--jobs", "0", "-q"],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert ex.returncode in (0, 1), ex.stderr[-2000:]
    import pandas as pd

    prov = pd.read_parquet(out / "provenance.parquet")
    assert set(prov["reader"]) == {"learned"} and prov["confidence"].between(0, 1).all()


def test_schema_from_a_user_is_read_without_training():
    schema = schema_from_dict(
        {"type": "object", "properties": {
            "po": {"type": "string", "description": "Purchase order number"},
            "when": {"type": "string", "format": "date", "description": "Order date"},
            "amount": {"type": "number", "description": "Order total"}}},
        "order",
    )  # fmt: skip
    pages = _page([(50, 50, "ACME Supplies Ltd"), (50, 90, "Purchase Order: PO-88412"),
                   (50, 110, "Order date: 12/03/2024"), (50, 130, "Delivery: 19/03/2024"),
                   (300, 200, "Subtotal 90.00"), (300, 220, "Order total: 99.00")])  # fmt: skip
    reader = get_reader(ReaderOptions(kind="learned"))
    values = {
        v.path: v
        for v in reader.read(DocumentContent("x", "x", pages, lambda n: None), schema).values
    }
    assert values["po"].value == "PO-88412"
    assert values["when"].value == "2024-03-12"
    assert values["amount"].value == 99.0
    assert all(0 <= v.confidence <= 1 and v.reader == "learned" for v in values.values())


def test_phrase_index_batches_score_like_the_pairwise_measure():
    """The batched index gives exactly the weighted best of ``similarity`` per text."""
    from docvlm.read.fieldmatch import similarity
    from docvlm.read.learned.vocab import PhraseIndex

    phrases = (("invoice number", 1.0), ("Rechnungsnummer", 0.8), ("N° de facture", 0.7),
               ("total amount due", 1.0), ("date", 0.5))  # fmt: skip
    texts = ["Invoice No", "Rechnungs-Nr.", "Facture n°", "Amount due", "Datum", "", "1234",
             "the of and", "Total", "INVOICE NUMBER", "Liefer- und Leistungsdatum"]  # fmt: skip
    index = PhraseIndex(phrases)
    got = index.best_many(texts)
    want = [max((w * similarity(t, p) for p, w in phrases), default=0.0) for t in texts]
    assert got == pytest.approx(want, abs=1e-12)
    assert got[0] > 0.5 and got[5] == 0.0 and got[7] == 0.0  # no content words: 0
    assert [index.best(t) for t in texts] == got  # one by one, from the cache, the same


def test_text_ids_are_the_tokens_and_trigrams_of_the_pairwise_measure():
    """Ids built per word (padded trigrams plus one across each space) name exactly the
    distinct tokens and trigrams that ``similarity`` compares."""
    from docvlm.read.fieldmatch import _grams, tokens
    from docvlm.read.learned import vocab

    texts = ["Invoice No.: 4711", "a b", "I a", "the of and", "Straße ÄÖÜ ß", "N° de facture",
             "Rechnungs-Nr. vom 03.10.2025", "x", "", "  ", "ÉTÉ été", "Total (net) of the order",
             "the the total total", "Qty 1 x 12,50 EUR", "Bruttosumme", "Käufer/Leistungsempfänger",
             "Handelsrechnung (380) Nr. 471102"]  # fmt: skip
    for text in texts:
        tok_ids, gram_ids = vocab._text_ids(text)
        names = {v: k for k, v in vocab._TOKEN_IDS.items()}
        grams = {v: k for k, v in vocab._GRAM_IDS.items()}
        assert len(set(tok_ids)) == len(tok_ids) and len(set(gram_ids)) == len(gram_ids)
        assert {names[i] for i in tok_ids} == set(tokens(text)), text
        assert {grams[i] for i in gram_ids} == (set(_grams(text)) if tokens(text) else set())


def test_an_index_of_several_lists_scores_each_like_its_own_index():
    """One pass over texts against several fields' phrase lists gives, per list, exactly
    what that list's own index gives; texts scored before come from the store, also after
    it has grown."""
    from docvlm.read.learned.vocab import PhraseIndex

    lists = ((("invoice number", 1.0), ("Rechnungsnummer", 0.8)),
             (("total amount due", 1.0), ("Gesamtbetrag", 0.9)),
             (),
             (("date", 0.5), ("Rechnungsdatum", 1.0)))  # fmt: skip
    texts = ["Invoice No", "Rechnungs-Nr.", "Amount due", "Datum", "", "1234", "Total"]
    more = [f"Line {i} total due" for i in range(150)]
    index = PhraseIndex.of_lists(lists)
    for k, phrases in enumerate(lists):
        want = PhraseIndex(phrases).best_many(texts + more)
        assert index.column(texts, k).tolist() + index.column(more, k).tolist() == want
    assert index.column(texts, 2).tolist() == [0.0] * len(texts)  # an empty list
    assert index.column(texts, 0)[0] > 0.5 and index.column(texts, 1)[0] == 0.0


def test_first_trees_model_matches_lightgbm_cut_at_those_rounds(tmp_path):
    """The rough model is the same ensemble cut after n rounds (what LightGBM itself
    predicts with ``num_iteration=n``)."""
    import lightgbm as lgb
    import onnx
    import onnxruntime as ort
    from onnxmltools import convert_lightgbm
    from onnxmltools.convert.common.data_types import FloatTensorType

    from docvlm.read.learned.train import first_trees

    rng = np.random.default_rng(0)
    X = rng.normal(size=(600, 6)).astype(np.float32)
    y = (X[:, 0] + 0.5 * X[:, 1] * X[:, 2] > 0).astype(int)
    clf = lgb.LGBMClassifier(n_estimators=30, num_leaves=7, verbose=-1, n_jobs=1).fit(X, y)
    onx = convert_lightgbm(clf, initial_types=[("x", FloatTensorType([None, 6]))], zipmap=False)
    cut = first_trees(onx, 5)
    onnx.checker.check_model(cut)
    sess = ort.InferenceSession(cut.SerializeToString(), providers=["CPUExecutionProvider"])
    got = sess.run(["probabilities"], {"x": X})[0][:, 1]
    want = clf.predict_proba(X, num_iteration=5)[:, 1]
    assert np.allclose(got, want, atol=1e-5)
    assert not np.allclose(got, clf.predict_proba(X)[:, 1], atol=1e-3)  # it is a cut


def test_rough_pass_keeps_each_fields_best_candidates():
    """rough_keep: a field with more candidates than `keep` keeps its best by the rough
    model, in order; a field with fewer keeps them all."""
    scorer = Scorer()
    assert scorer.rough is not None
    rng = np.random.default_rng(1)
    X = rng.uniform(0, 1, size=(scorer.keep * 3, len(FEATURES))).astype(np.float32)
    k_big, k_small = scorer.rough_keep(X), scorer.rough_keep(X[:10])
    assert len(k_big) == scorer.keep and np.all(np.diff(k_big) > 0)
    assert np.array_equal(k_small, np.arange(10))
    rough = scorer.rough.positive(X)
    assert rough[k_big].min() >= np.delete(rough, k_big).max()
    assert not np.allclose(rough, scorer.predict(X), atol=1e-3)  # a rougher model


def test_a_field_with_nothing_to_read_is_left_empty_not_guessed():
    """An invoice that prints no total and no currency: the least bad candidates (the
    number in 'INV-9900', 'OIC' of 'INVOICE') are not written as values."""
    spec = schema_from_dict(
        {
            "type": "object",
            "properties": {
                "invoice_number": {"type": "string", "title": "Invoice number"},
                "total": {"type": "number", "title": "Total amount"},
                "currency": {"type": "string", "pattern": "^[A-Z]{3}$", "title": "Currency"},
            },
        },
        "mini",
    )
    pages = _page([(60, 100, "INVOICE"), (60, 160, "Invoice No.: INV-9900")])
    content = DocumentContent("d", "d.pdf", pages, image=lambda n: None)
    values = {
        v.path: v for v in get_reader(ReaderOptions(kind="learned")).read(content, spec).values
    }
    assert values["invoice_number"].value == "INV-9900"
    assert "total" not in values and "currency" not in values, values


def test_a_block_heading_beside_a_value_is_told_from_a_key_list():
    from docvlm.read.learned.features import _F, base_matrix

    # "Bill To | Deliver To" heads two blocks: under "Bill To" stands a name, not a label
    doc = DocLines.build(_page([
        (40, 60, "Bill To"), (300, 60, "Deliver To"), (40, 75, "Hale Ltd"),
        (300, 75, "Institute of Optics"), (40, 200, "Order No."), (200, 200, "OR-5521"),
        (40, 215, "Date"), (200, 215, "12 March 2024"),
    ]))  # fmt: skip
    spec = _spec("buyer_name", "Name of the customer billed")
    cands = [c for c in typed_candidates(doc, spec) if c.kind == "segment"]
    X = base_matrix(doc, cands)
    below = dict(zip([c.text for c in cands], X[:, _F["left_below_label"]], strict=True))
    assert below["OR-5521"] > below["Deliver To"] + 0.2  # a label under "Order No."
    assert below["Bill To"] == -1  # nothing on its left


def test_a_rule_value_of_the_wrong_type_is_no_candidate():
    from docvlm.read.learned.reader import _fits

    date = _spec("flight_from", "Flight start date", type="string", format="date")
    amount = _spec("gross", "Gross amount", type="number")
    assert _fits(date, normalise(date, "2024-03-12"))
    assert not _fits(date, normalise(date, "POLITICAL/VOTE $1,050.00"))
    assert _fits(amount, normalise(amount, "$1,050.00"))
    assert not _fits(amount, normalise(amount, "Remit Address"))
    assert _fits(_spec("advertiser", "Advertiser"), "anything")


def test_generated_documents_sometimes_print_a_delivery_block_beside_the_buyer():
    from docvlm.read.learned.generator import _SHIP_TO, _check, generate, pdf_text

    labels = [w.lower() for words in _SHIP_TO.values() for w in words]
    with_block = 0
    for seed in range(40):
        doc = generate(seed, "colon", False)
        _check(doc)  # the buyer's truth is still printed and reads back
        text = pdf_text(doc).lower()
        with_block += any(label in text for label in labels)
    assert 0 < with_block < 40


def test_a_name_is_also_offered_without_its_trailing_code():
    doc = DocLines.build(_page([(40, 60, "Advertiser"), (200, 60, "Bernie 2020 Inc (33287)"),
                                (40, 80, "Agent: Blue Media S(135252")]))  # fmt: skip
    cands = typed_candidates(doc, _spec("advertiser", "The advertiser"))
    trimmed = {c.value for c in cands if c.kind == "trimmed"}
    assert {"Bernie 2020 Inc", "Blue Media S"} <= trimmed
    assert "Bernie 2020 Inc (33287)" in {c.value for c in cands if c.kind == "segment"}
    assert not any(c.kind == "trimmed" for c in cands if c.line == 0)  # no code to cut


def test_a_date_is_no_amount_candidate():
    doc = DocLines.build(_page([(40, 60, "Invoice date: 2024-07-01"), (40, 80, "Total 12.05"),
                                (40, 100, "Due 03.08.2024 amount 310.00")]))  # fmt: skip
    values = {c.value for c in typed_candidates(doc, _spec("total", "Total", type="number"))}
    assert 12.05 in values and 310.0 in values
    assert not values & {2024.0, 7.0, 1.0, 3.08, 8.2024, 3.0}


@pytest.mark.parametrize(
    ("name", "description", "role"),
    [
        ("flight_from", "First day the ads run", "start"),
        ("flight_to", "Last day the ads run", "end"),
        ("leistung_bis", "Ende des Leistungszeitraums", "end"),
        ("periode_debut", "Début de la période", "start"),
        ("delivery_date", "When the goods were delivered to the customer", None),
        ("due_date", "Payment due", "end"),  # no span words: the concept group decides
    ],
)
def test_a_date_fields_own_words_say_whether_it_opens_or_closes_a_span(name, description, role):
    spec = _spec(name, description, format="date")
    assert field_phrases(spec).role == role


def _base_rows(lines: list, spec, keep, key) -> dict:
    """The base feature rows of the candidates of ``spec`` on a page of ``lines`` that
    ``keep`` accepts, by ``key`` of the candidate."""
    from docvlm.read.learned.features import base_matrix

    doc = DocLines.build(_page(lines))
    cands = [c for c in typed_candidates(doc, spec) if keep(c)]
    X = base_matrix(doc, cands)
    return {key(c): X[k] for k, c in enumerate(cands)}


def test_range_features_mark_the_two_dates_of_a_range():
    from docvlm.read.learned.features import _F

    by_text = _base_rows([(40, 60, "Flight 04/22/20 - 06/09/20"), (40, 80, "Order date 03/01/20")],
                         _spec("start", "Start", format="date"),
                         lambda c: c.kind == "date", lambda c: c.text)  # fmt: skip
    assert by_text["04/22/20"][_F["range_first"]] == 1
    assert by_text["04/22/20"][_F["range_second"]] == 0
    assert by_text["06/09/20"][_F["range_second"]] == 1
    assert by_text["06/09/20"][_F["range_first"]] == 0
    assert by_text["03/01/20"][[_F["range_first"], _F["range_second"]]].sum() == 0


def test_decoder_orders_dates_by_the_fields_own_words():
    def d(v, line):
        return Candidate("date", v, v, line, 0, 10, (line,), (0, 0, 1, 1), 1)

    # both fields reach the same concept group; their words say which opens the span
    fields = [
        FieldChoice("flight_from", [d("2020-06-09", 1), d("2020-04-22", 2)],
                    np.array([0.7, 0.6]), (("end_date", 1.0),), "start"),
        FieldChoice("flight_to", [d("2020-04-22", 2), d("2020-06-09", 1)],
                    np.array([0.7, 0.6]), (("end_date", 1.0),), "end"),
    ]  # fmt: skip
    picks = decode(fields)
    assert picks["flight_from"].cand.value < picks["flight_to"].cand.value


def test_a_total_that_adds_up_wins_over_a_likelier_one_that_does_not():
    # the net (100) is printed, so 110 holds with tax 10; 100 as the total holds with nothing
    tax = [_cand(10.0, 3)]
    total = [_cand(100.0, 5), _cand(110.0, 6)]
    fields = [
        FieldChoice("vat", tax, np.array([0.907]), (("tax", 1.0),)),
        FieldChoice("sum", total, np.array([0.666, 0.13]), (("total", 1.0),)),
    ]
    picks = decode(fields)
    assert picks["sum"].cand.value == 110.0 and picks["sum"].constrained


def test_a_code_glued_to_a_number_is_no_amount():
    """'INV-9900' is an identifier ('INV' is no currency); 'EUR 12.50' is an amount."""
    doc = DocLines.build(_page([(50, 50, "Invoice No.: INV-9900"), (50, 70, "Due EUR 12.50"),
                                (50, 90, "Paid 7.00 USD")]))  # fmt: skip
    values = {c.value for c in typed_candidates(doc, _spec("total", "Total", type="number"))}
    assert 9900.0 not in values
    assert {12.5, 7.0} <= values


@pytest.mark.parametrize(
    ("text", "courtesy"),
    [("Welcome To The", True), ("THANK YOU FOR VISITING", True), ("Merci de votre visite", True),
     ("Vielen Dank für Ihren Einkauf", True), ("Good Day Market", False), ("The Sea", False),
     ("Royal Hotel", False)],
)  # fmt: skip
def test_greetings_and_thanks_are_courtesy_text(text, courtesy):
    from docvlm.read.rules.labels import courtesy_ratio

    assert (courtesy_ratio(text) >= 0.75) is courtesy


def _rules_store(head: list[tuple], price: str = "8.50") -> list:
    """The rules' store names of a receipt whose header is ``head`` (then a line and a total)."""
    from docvlm.read.ocr_reader import OcrReader
    from docvlm.read.rules.context import DocContext

    spec = schema_from_dict(
        {"type": "object", "properties": {"store": {"type": "string", "title": "Store name"}}},
        "shop",
    )
    pages = _page([*head, (60, 140, "Cod and chips"), (400, 140, price),
                   (60, 160, "TOTAL"), (400, 160, price)])  # fmt: skip
    values = OcrReader().read_context(DocContext.build(pages), spec, arrays=False).values
    return [v.value for v in values if v.path == "store"]


_HARBOUR = [(200, 60, "Harbour Fish Market", 13), (200, 80, "12 Pier Road"),
            (200, 95, "Portsmouth PO1 2AB")]  # fmt: skip


@pytest.mark.parametrize(
    "first",
    [(200, 40, "Welcome To The", 13),  # a greeting above the name
     (200, 40, "Cashier: Lynda Moreau", 14)],  # a label and its value, in large type
)  # fmt: skip
def test_what_is_printed_above_the_name_is_not_the_shop(first):
    """A greeting, or a label and its value, printed first: the rules' letterhead is the name
    under it."""
    stores = _rules_store([first, *_HARBOUR])
    assert stores and stores[0] == "Harbour Fish Market", stores


@pytest.mark.parametrize(
    ("under", "store"),
    [("Restaurant & Bar", "Basil Thai Restaurant & Bar"),  # the rest of the name
     ("Dallas, TX", "Basil Thai"),  # the address (a comma)
     ("Open daily from noon", "Basil Thai"),  # a slogan (more words)
     ("Store 12", "Basil Thai")],  # a number
)  # fmt: skip
def test_a_short_line_centred_under_a_name_continues_it(under, store):
    """The rules' letterhead joins a one-line name with a short line of words centred under
    it; an address, a slogan or a numbered line under the name stays out of it."""

    def centred(y, text, size):  # a line centred on x = 300
        return (300 - pymupdf.get_text_length(text, fontsize=size) / 2, y, text, size)

    stores = _rules_store([centred(40, "Basil Thai", 14), centred(58, under, 12),
                           centred(78, "1175 Folsom Street", 10),
                           centred(92, "San Francisco CA 94103", 10)], "12.50")  # fmt: skip
    assert stores and stores[0] == store, stores


def test_block_features_tell_a_centred_name_from_a_name_over_its_address():
    from docvlm.read.learned.features import _F, base_matrix

    doc = DocLines.build(_page([(250, 40, "HARBOUR FISH", 14), (262, 58, "MARKET", 14),
                                (60, 120, "Acme Trading Ltd", 14), (60, 136, "12 Pier Road", 9)]))  # fmt: skip
    cands = [c for c in typed_candidates(doc, _spec("name", "Name")) if c.kind == "block2"]
    X = base_matrix(doc, cands)
    row = {c.text: X[k] for k, c in enumerate(cands)}
    centred, over_address = row["HARBOUR FISH MARKET"], row["Acme Trading Ltd 12 Pier Road"]
    assert centred[_F["block_centered"]] == 1 and over_address[_F["block_centered"]] == 0
    assert centred[_F["block_h_ratio"]] > 0.9 > over_address[_F["block_h_ratio"]]


def test_a_trimmed_name_agrees_with_the_rules_name_without_its_code():
    from docvlm.read.learned.features import _F
    from docvlm.read.learned.reader import field_choices

    spec = schema_from_dict(
        {"type": "object", "properties": {"advertiser": {"type": "string",
                                                         "title": "Advertiser"}}},
        "order",
    )  # fmt: skip
    doc = DocLines.build(_page([(50, 60, "Advertiser: Bernie 2020 Inc (33287)"),
                                (50, 80, "Agency: Bully Pulpit Interactive")]))  # fmt: skip
    choices, matrices = field_choices(doc, spec, None)
    agree = {c.text: matrices["advertiser"][k, _F["rule_agree"]]
             for k, c in enumerate(choices[0].cands)}  # fmt: skip
    assert agree["Bernie 2020 Inc (33287)"] == 1
    assert agree["Bernie 2020 Inc"] == 1  # the trimmed candidate
    assert agree["Bully Pulpit Interactive"] == 0


def test_calibration_is_fitted_out_of_fold_on_real_documents(tmp_path):
    """With enough real documents the calibration also sees each one read by a model that
    was trained without it (generated documents alone never trigger this)."""
    from docvlm.read.learned.train import train

    docs = generate_labelled(45, seed=11)
    for d in docs:
        d.source = "user"
    meta = train(docs, tmp_path / "m", rounds=30, calibration_folds=3)
    n_fit = meta["trained_on"]["user"]
    assert n_fit >= 30 and 0 < meta["calibration_out_of_fold"] <= 8 * n_fit
    ys = meta["calibration"]["y"]
    assert all(a <= b for a, b in zip(ys, ys[1:], strict=False))  # monotone
    generated = train(generate_labelled(45, seed=11), tmp_path / "g", rounds=30)
    assert "calibration_out_of_fold" not in generated


def test_a_value_printed_on_every_page_is_taken_where_it_first_appears():
    def d(v, line, page):
        return Candidate("date", v, v, line, 0, 10, (line,), (0, 0, 1, 1), page)

    # the continuation header of page 2 repeats the date; its copy scores a hair higher
    fields = [FieldChoice("issued", [d("2024-02-12", 40, 2), d("2024-02-12", 3, 1),
                                     d("2024-03-13", 5, 1)], np.array([0.87, 0.84, 0.2]))]  # fmt: skip
    pick = decode(fields)["issued"]
    assert (pick.cand.value, pick.cand.page, pick.prob) == ("2024-02-12", 1, 0.87)
    # a copy far less likely stands elsewhere in another role: the pick stays
    fields[0].probs = np.array([0.87, 0.5, 0.2])
    assert decode(fields)["issued"].cand.page == 2


def test_pool_normalised_values_match_normalise_value_by_value():
    """The pools' values are normalised once per distinct value: the result is
    normalise()'s, zeros of either sign (-0.0 == 0.0 reads '-0.00') and repeats included."""
    from docvlm.read.learned.features import normalised

    def c(value):
        return Candidate("amount", value, str(value), 0, 0, 1, (0,), (0, 0, 1, 1), 1)

    values = [12.5, -0.0, 0.0, 12.5, 0, 3, True, "12.50", "Acme Corp", "Acme Corp", ""]
    for spec in (_spec("t", "total", type="number"), _spec("n", "name"),
                 _spec("d", "date", format="date")):  # fmt: skip
        got = normalised(spec, [c(v) for v in values])
        assert got == [normalise(spec, v) for v in values]


def test_a_learned_read_leaves_the_garbage_collector_as_it_found_it():
    import gc

    pages = _page([(50, 50, "Invoice No: 4711"), (50, 70, "Total: 12.50 EUR")])
    content = DocumentContent(doc_id="g", source="g.pdf", pages=pages, image=lambda n: None)
    schema = schema_from_dict({"type": "object", "properties": {"total": {"type": "number"}}}, "g")
    reader = get_reader(ReaderOptions(kind="learned"))
    assert gc.isenabled()
    reader.read(content, schema)
    assert gc.isenabled()
    gc.disable()
    try:
        reader.read(content, schema)
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_a_value_under_a_column_head_sees_the_head_past_rows_of_numbers():
    """'Montant TVA' heads its column through a rule and a row of other numbers: the
    nearest line above a cell is a number, its column head is the worded line further up."""
    from docvlm.read.learned.features import _F, FieldFeatures, base_matrix

    doc = DocLines.build(_page([
        (300, 100, "Base TVA"), (420, 100, "Montant TVA"),
        (300, 120, "----------"), (420, 120, "----------"),
        (300, 140, "11,00"), (420, 140, "2,20"),
        (300, 160, "27,00"), (420, 160, "2,70"),
    ]))  # fmt: skip
    spec = _spec("vat_amount", "VAT amount", type="number")
    cands = typed_candidates(doc, spec)
    X = FieldFeatures(doc, spec).matrix(cands, base=base_matrix(doc, cands))
    row = {c.value: X[k] for k, c in enumerate(cands)}
    # the line above 2,70 is 2,20 (no words): its head is still 'Montant TVA'
    assert row[2.7][_F["s_above"]] == 0
    assert row[2.7][_F["s_header"]] > 0.5
    assert row[2.7][_F["s_header"]] > row[27.0][_F["s_header"]]  # 'Base TVA' reads less so
    assert row[2.7][_F["d_header"]] > row[2.2][_F["d_header"]] > 0


def test_a_date_introduced_by_a_dating_word_and_one_with_a_time_after_it():
    from docvlm.read.learned.features import _F

    row = _base_rows([(40, 60, "Handelsrechnung Nr. R25-31 vom 03.10.2025"),
                      (40, 90, "Leistungsdatum: 25.10.2025"),
                      (40, 120, "Datum: 30.10.2024 Zeit: 04:59:13")],
                     _spec("invoice_date", "Invoice date", format="date"),
                     lambda c: not c.alt, lambda c: c.value)  # fmt: skip
    assert row["2025-10-03"][_F["date_intro"]] == 1
    assert row["2025-10-25"][_F["date_intro"]] == 0
    assert row["2024-10-30"][_F["time_after"]] == 1
    assert row["2025-10-03"][_F["time_after"]] == 0


def test_text_features_count_like_the_character_methods():
    """The byte-deletion counts of ASCII texts and the currency precheck give what the plain
    per-character definition gives, for ASCII and other texts."""
    import random
    import string

    from docvlm.read.learned.features import _CURRENCY, _DECIMALS, _text_features

    rng = random.Random(11)
    chars = string.printable + "".join(map(chr, range(32))) + "\x7fÄéß€£¥"
    texts = ["", " ", "Total: 12,50 EUR", "$ 3.99", "ÉTÉ 2024", "AB CD", "ABC", "x\x1cy"]
    texts += ["".join(rng.choice(chars) for _ in range(rng.randint(0, 40))) for _ in range(3000)]
    for text in texts:
        n = max(len(text), 1)
        digits = sum(map(str.isdigit, text))
        alpha = sum(map(str.isalpha, text))
        upper = sum(map(str.isupper, text))
        want = (len(text), len(text.split()), digits / n, alpha / n, upper / max(alpha, 1),
                bool(_DECIMALS.search(text)), bool(_CURRENCY.search(text)))  # fmt: skip
        assert _text_features(text) == want, repr(text)
