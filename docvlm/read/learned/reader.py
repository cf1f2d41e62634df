"""The learned reader: typed candidates, scored by a trained model, decoded jointly.

``LearnedReader`` is the reader kind ``learned``. For every scalar field of any schema it
takes the candidates that fit the field's type (:mod:`.features`), scores them with the
ONNX model (:mod:`.scorer`), picks one per field under the constraints of :mod:`.decode` and
reports a calibrated confidence. Arrays (line items, key/value pairs) are read by the
layout rules of :mod:`docvlm.read.rules.items`, which are generic table/form geometry.
"""

from __future__ import annotations

import gc
import re
from collections.abc import Iterator
from contextlib import contextmanager

from docvlm.datamodel import FieldValue, ReaderOptions
from docvlm.read.base import DocumentContent, Reader, ReadResult
from docvlm.read.learned.decode import Decoded, FieldChoice, decode
from docvlm.read.learned.features import (
    CandArrays,
    Candidate,
    DocLines,
    FieldFeatures,
    alone_matrix,
    base_matrix,
    normalised,
    pool_key,
    rule_candidate,
    trim_code,
    typed_candidates,
)
from docvlm.read.learned.scorer import Scorer
from docvlm.read.learned.vocab import field_phrases, lists_index
from docvlm.read.rules.items import read_array
from docvlm.schema import FieldSpec, SchemaSpec

#: a pick less sure than this is no value: on the dev sets' test halves 1 of 14 such picks
#: was right (a field with nothing to read gets its least bad candidate at ~0.05)
MIN_CONFIDENCE = 0.3


def raw_confidence(d: Decoded) -> float:
    """The score calibration maps: the model's probability, raised half-way to 1 when the
    value satisfies a constraint with other fields."""
    return d.prob if not d.constrained else 1.0 - (1.0 - d.prob) / 2.0


def _context(schema: SchemaSpec, spec: FieldSpec) -> tuple[str, ...]:
    parts = spec.path.split(".")[:-1]
    return tuple(reversed(parts))


def rule_values(doc: DocLines, schema: SchemaSpec) -> dict[str, FieldValue]:
    """What the layout-rule reader finds, per scalar field. It reads the learned reader's
    own context (lines, rows, dates) and skips the arrays, which the learned reader reads
    itself."""
    from docvlm.assemble import assemble
    from docvlm.read.ocr_reader import OcrReader

    values = OcrReader().read_context(doc.ctx, schema, arrays=False).values
    _, chosen = assemble(values, schema)
    specs = {f.path for f in schema.fields}
    return {v.path: v for v in chosen if v.path in specs and v.value is not None}


_ISO = re.compile(r"\d{4}-\d{2}-\d{2}")
_DECIMAL = re.compile(r"-?\d+\.\d{2}")


def _fits(spec: FieldSpec, norm: str) -> bool:
    """Whether a normalised value is of the field's type (a rule may return text for a
    date or a number field: that is no candidate for it)."""
    if spec.is_date:
        return bool(_ISO.fullmatch(norm))
    if spec.is_number:
        return bool(_DECIMAL.fullmatch(norm))
    return True


def field_choices(
    doc: DocLines,
    schema: SchemaSpec,
    scorer: Scorer | None,
    wanted: list[str] | None = None,
) -> tuple[list[FieldChoice], dict]:
    """Candidates and (with a scorer) their probabilities for each scalar field; also the
    feature matrices, for training (without a scorer: every candidate's row; with one, the
    rows of the candidates the rough pass kept, so that a long document's matrices are
    never all held at once)."""
    import numpy as np

    from docvlm.evaluate import normalise

    rules = rule_values(doc, schema)
    specs = [s for s in schema.fields if wanted is None or s.path in wanted]
    pools: dict[tuple, tuple[list, np.ndarray, list[str], CandArrays]] = {}
    kinds: dict[tuple, int] = {}
    for spec in specs:
        key = pool_key(spec)
        kinds[key[:1]] = kinds.get(key[:1], 0) + 1
        if key not in pools:
            cands = typed_candidates(doc, spec)
            arrays = CandArrays.of(doc, cands)
            pools[key] = (cands, base_matrix(doc, cands), normalised(spec, cands), arrays)
    # the rule's value of each field, as one more candidate (their rows built together)
    rule_of: dict[str, tuple] = {}
    extra: list[Candidate] = []
    for spec in specs:
        fv = rules.get(spec.path)
        if fv is not None and _fits(spec, normalise(spec, fv.value)):
            # the rule's name without its trailing code: what a trimmed candidate agrees with
            bare = trim_code(fv.value) if isinstance(fv.value, str) else fv.value
            rule = (normalise(spec, fv.value), fv.confidence, normalise(spec, bare))
            rc = rule_candidate(doc, fv.value, fv.raw or "", fv.page, fv.bbox)
            rule_of[spec.path] = (rule, len(extra) if rc is not None else -1)
            if rc is not None:
                extra.append(rc)
    extra_base = alone_matrix(doc, extra)
    # every field's label similarities from one index of their phrase lists, and every text
    # a field asks about (lines, text before and of each candidate) scored in one pass
    phrases = {spec.path: field_phrases(spec, _context(schema, spec)) for spec in specs}
    index = lists_index(tuple(phrases[spec.path].phrases for spec in specs))
    texts = [t for t in doc.label_texts() if t]
    for _, _, _, arrays in pools.values():
        texts += arrays.prefix.distinct + arrays.own.distinct
    index.rows(texts)
    matrices, field_cands = {}, {}
    for k, spec in enumerate(specs):
        key = pool_key(spec)
        cands, base, norms, arrays = pools[key]
        rule, at = rule_of.get(spec.path, (None, -1))
        own = at >= 0  # a new matrix of the pool's rows and the rule's (else the pool's own)
        if own:  # the rule's value competes as one more candidate
            rc = extra[at]
            cands, norms = [*cands, rc], [*norms, rule[0]]
            base = np.concatenate([base, extra_base[at : at + 1]])
            arrays = arrays + CandArrays.of(doc, [rc])
        field_cands[spec.path] = cands
        features = FieldFeatures(doc, spec, phrases[spec.path], (index, k))
        X = features.matrix(cands, kinds[key[:1]], base, rule, norms, arrays, own_base=own)
        if scorer is not None:
            kept = scorer.rough_keep(X)
            if len(kept) < len(X):
                X, field_cands[spec.path] = X[kept], [cands[k] for k in kept]
        matrices[spec.path] = X
    # every field's rows in one run of the model (a run has a fixed cost of its own)
    stacked = [matrices[spec.path] for spec in specs]
    if scorer is not None and stacked:
        probs = scorer.predict(np.concatenate(stacked))
    else:
        probs = np.zeros(sum(len(X) for X in stacked))
    choices, start = [], 0
    for spec, X in zip(specs, stacked, strict=True):
        choices.append(
            FieldChoice(spec.path, field_cands[spec.path], probs[start : start + len(X)],
                        phrases[spec.path].groups, phrases[spec.path].role)
        )  # fmt: skip
        start += len(X)
    return choices, matrices


@contextmanager
def _no_gc() -> Iterator[None]:
    """The cyclic garbage collector paused: a read makes ~1000 candidates a page, none in a
    cycle (freed by reference counting), yet their count sets off collections that walk
    every object the process holds (a fifth of a read's time on a long document)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


class LearnedReader(Reader):
    """Reads any plain schema with a model trained on data (see module doc)."""

    name = "learned"

    def __init__(self, options: ReaderOptions | None = None) -> None:
        super().__init__(options)
        self.scorer: Scorer | None = None

    def initialize(self) -> None:
        self.scorer = Scorer(getattr(self.options, "model", None) or None)

    def read(
        self,
        doc: DocumentContent,
        schema: SchemaSpec,
        wanted: list[str] | None = None,
        prior: list[FieldValue] | None = None,
    ) -> ReadResult:
        self.ensure_ready()
        with _no_gc():
            return self._read(doc, schema, wanted)

    def _read(
        self, doc: DocumentContent, schema: SchemaSpec, wanted: list[str] | None
    ) -> ReadResult:
        lines = DocLines.build(doc.pages)
        choices, _ = field_choices(lines, schema, self.scorer, wanted)
        picks = decode(choices)
        result = ReadResult()
        calibrate = self.scorer.calibration
        for fc in choices:
            d = picks.get(fc.path)
            if d is None:
                continue
            confidence = round(calibrate(raw_confidence(d)), 4)
            if confidence < MIN_CONFIDENCE:
                continue  # left empty: a required field shows as missing, not as a guess
            line = lines.lines[d.cand.line]
            result.values.append(
                FieldValue(
                    path=fc.path,
                    value=d.cand.value,
                    raw=d.cand.text,
                    page=d.cand.page,
                    bbox=d.cand.bbox,
                    region_class=line.region_class,
                    reader=self.name,
                    confidence=confidence,
                )
            )
        for arr in schema.arrays:
            if wanted is not None and not any(w.startswith(arr.path) for w in wanted):
                continue
            result.values.extend(read_array(arr, lines.ctx, (), self.name))
        return result
