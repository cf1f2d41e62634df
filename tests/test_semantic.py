"""Field words reach term groups through the shipped word vectors (docvlm/models/words)."""

from __future__ import annotations

import subprocess
import sys
from unittest import mock

import pytest

from docvlm.read.learned import semantic, vocab
from docvlm.schema import schema_from_dict

PARTY_AND_AMOUNT = {"seller", "buyer", "advertiser", "agency", "total", "subtotal", "tax",
                    "gross_amount", "net_amount"}  # fmt: skip


def _spec(name: str, **prop):
    schema = {"type": "object", "properties": {name: {"type": "string", **prop}}}
    return schema_from_dict(schema, "t").fields[0]


def _groups(name: str) -> dict[str, float]:
    return dict(vocab.field_phrases(_spec(name)).groups)


def _lexical_groups(name: str) -> dict[str, float]:
    vocab._group_scores.cache_clear()
    try:
        with mock.patch.object(semantic, "group_scores", lambda own: {}):
            return dict(vocab.field_phrases(_spec(name)).groups)
    finally:
        vocab._group_scores.cache_clear()


def test_vectors_file_is_small_and_says_what_it_was_built_from():
    assert semantic.WORDS.stat().st_size <= 2_000_000
    wv = semantic.word_vectors()
    assert wv is not None
    assert wv.meta["model"] == "sentence-transformers/all-MiniLM-L6-v2"
    assert wv.meta["model_licence"] == "Apache-2.0"
    assert wv.vectors.shape == (len(wv.rows), wv.meta["dims"])
    assert 20000 <= len(wv.rows) <= 25000
    # docvlm's own words are there even where the model's vocabulary has only pieces
    assert {"invoice", "vat", "retailer", "seller"} <= wv.rows.keys()


def test_vectors_load_without_torch():
    code = (
        "import sys; from docvlm.read.learned import semantic, vocab; "
        "assert semantic.word_vectors.cache_info().currsize == 0; "  # loaded on first use
        "assert semantic.word_vectors() is not None; "
        "assert semantic.group_scores(('retailer',)); "
        "bad = {'torch', 'transformers'} & set(sys.modules); assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.parametrize(("name", "group"), [("retailer", "seller"), ("sum", "total")])
def test_a_synonym_reaches_its_group(name, group):
    assert group not in _lexical_groups(name)  # what the words alone could not do
    groups = vocab.field_phrases(_spec(name)).groups
    assert groups and groups[0][0] == group
    assert 0.45 <= groups[0][1] <= semantic.SCORE_HI


@pytest.mark.parametrize("name", ["colour", "weight", "signature", "page", "notes", "quantity",
                                  "description", "price", "amount", "item"])  # fmt: skip
def test_unrelated_words_reach_no_party_or_amount_group(name):
    assert not set(semantic.group_scores((name.replace("_", " "),))) & PARTY_AND_AMOUNT
    # and nothing beyond what their letters already reach
    assert _groups(name).keys() - _lexical_groups(name).keys() == set()


@pytest.mark.parametrize("name", ["vendor", "invoice_number", "total", "date", "address",
                                  "flight_from", "contract_number", "advertiser", "contract",
                                  "seller_name", "customer_name"])  # fmt: skip
def test_known_wordings_keep_their_lexical_groups(name):
    assert _groups(name) == _lexical_groups(name)


def test_direction_words_and_antonyms_do_not_cross_parties():
    # 'bill to' rests on its 'to': its vector alone would make 'biller' a buyer
    assert semantic.phrase_words("bill to") is None
    assert "buyer" not in semantic.group_scores(("biller",))
    # 'seller' and 'buyer' are close in the vectors; a seller's field never gains the buyer
    assert "buyer" not in semantic.group_scores(("seller name", "Seller"))
    assert "seller" not in semantic.group_scores(("purchaser",))


def test_phrase_words():
    assert semantic.phrase_words("Retailer name") == ("retailer",)
    assert semantic.phrase_words("Invoice No.") == ("invoice", "number")
    assert semantic.phrase_words("order #") == ("order", "number")
    assert semantic.phrase_words("the xqzzy") is None  # unknown words are skipped
    assert semantic.phrase_words("name") == ("name",)  # alone it stays


def test_words_cosine_pairs_the_words_that_differ():
    assert semantic.words_cosine(("invoice", "number"), ("number", "invoice")) == 1.0
    same_number = semantic.words_cosine(("invoice", "number"), ("bill", "number"))
    assert same_number == pytest.approx(semantic.words_cosine(("invoice",), ("bill",)))
    assert semantic.words_cosine(("tax", "id"), ("tax",)) is None  # a part: lexical's match
    assert semantic.words_cosine(("a", "b"), ("c",)) is None


def test_field_phrases_of_a_retailer_field_hold_the_seller_group():
    fp = vocab.field_phrases(_spec("retailer", title="Retailer"))
    phrases = dict(fp.phrases)
    assert fp.groups[0][0] == "seller"
    assert set(vocab.TERMS["seller"]) <= phrases.keys()
    assert phrases["vendor"] == pytest.approx(fp.groups[0][1])
    assert vocab.label_similarity(fp, "Vendor:") > 0.6


def test_the_mapping_agrees_with_its_calibration():
    c = semantic.calibration()
    assert c["negative_q99"] < semantic.LO < c["positive_q90"]
    assert semantic.HI == pytest.approx(c["positive_q90"], abs=0.03)
    # on the term groups, another group is reached only by the antonyms and the net overlap
    assert set(c["reach_other"]) <= {"seller", "buyer", "net", "nettobetrag"}
    assert len(c["reach_own"]) >= 20
    assert semantic.to_score(semantic.LO) == pytest.approx(0.45)
    assert semantic.to_score(1.0) == semantic.SCORE_HI
    assert semantic.to_score(semantic.LO - 0.01) == 0.0


@pytest.mark.parametrize(
    ("name", "prop", "expected"),
    [("retailer", {}, (None, "seller", "name")),  # by word vectors: no word list names it
     ("amount", {"type": "number"}, ("total", None, None)),
     ("amount", {}, (None, None, None)),  # a string is no total
     ("flight_from", {"format": "date"}, (None, None, None)),  # a date is no party
     ("weather", {}, (None, None, None))],
)  # fmt: skip
def test_the_rules_read_a_field_their_word_lists_do_not_name(name, prop, expected):
    """The layout rules take the concept or party a field's words clearly mean in the
    learned reader's vocabulary, when their own word lists know none of its words."""
    from docvlm.read.rules.labels import labels_for

    labels = labels_for(_spec(name, **prop))
    assert (labels.concept, labels.role, labels.part) == expected


def test_labels_of_a_field_with_unhashable_examples():
    """Label phrases are found once per field; a field whose examples or enum cannot be
    hashed (a list, an object) is read all the same."""
    from docvlm.read.rules.labels import labels_for

    spec = schema_from_dict(
        {"type": "object", "properties": {"retailer": {"type": "string", "examples": [[1, 2]],
                                                       "enum": ["a", {"b": 1}]}}},
        "t",
    ).fields[0]  # fmt: skip
    with pytest.raises(TypeError):
        hash(spec)
    assert labels_for(spec).role == "seller"
