"""Train the candidate scorer: LightGBM on candidate features, exported to ONNX.

A labelled document is its page content plus a truth JSON shaped like its schema (the
dev-set layout: ``DIR/<doc>`` with ``DIR/labels/<stem>.json`` or ``DIR/<stem>.json``). Each
candidate of each labelled field is one example; it is positive when its value, normalised
like ``docvlm eval`` does, equals the truth. A fifth of the documents (by a hash of their
name) is kept aside to stop boosting and to fit the calibration of the confidences.

``docvlm train LABELLED_DIR --schema S --out MODEL`` trains on a user's folder, optionally
together with generated documents (``--generated N``); ``reader: {kind: learned, model:
MODEL}`` then uses the new model.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from docvlm.datamodel import Page
from docvlm.evaluate import _flatten, normalise
from docvlm.read.learned.decode import decode
from docvlm.read.learned.features import FEATURES, DocLines
from docvlm.read.learned.scorer import (
    META_FILE,
    MODEL_FILE,
    ROUGH_FILE,
    ROUGH_KEEP,
    ROUGH_TREES,
    Calibration,
    Scorer,
)
from docvlm.schema import SchemaSpec

logger = logging.getLogger(__name__)
MAX_NEGATIVES = 150  # per field and document: string fields have hundreds of candidates


@dataclass
class LabelledDoc:
    name: str
    pages: list[Page]
    schema: SchemaSpec
    truth: dict
    source: str = "user"  # where it came from, for the training report
    meta: dict = field(default_factory=dict)


def _truth_values(doc: LabelledDoc) -> dict[str, str]:
    specs = {f.path: f for f in doc.schema.fields}
    out = {}
    for path, value in _flatten(doc.truth).items():
        spec = specs.get(path)
        if spec is None or isinstance(value, list):
            continue
        norm = normalise(spec, value)
        if norm:
            out[path] = norm
    return out


def examples(docs: Iterable[LabelledDoc], seed: int = 0):
    """Feature rows, labels and the document index of every row."""
    from docvlm.read.learned.reader import field_choices

    rng = np.random.default_rng(seed)
    xs, ys, owners = [], [], []
    built: tuple[int, DocLines] | None = None  # variants of a document share its pages
    for k, doc in enumerate(docs):
        truth = _truth_values(doc)
        if not truth:
            continue
        if built is None or built[0] != id(doc.pages):
            built = (id(doc.pages), DocLines.build(doc.pages))
        lines = built[1]
        specs = {f.path: f for f in doc.schema.fields}
        choices, matrices = field_choices(lines, doc.schema, None, list(truth))
        for fc in choices:
            spec = specs[fc.path]
            y = np.array([normalise(spec, c.value) == truth[fc.path] for c in fc.cands], bool)
            X = matrices[fc.path]
            neg = np.flatnonzero(~y)
            if len(neg) > MAX_NEGATIVES:
                keep = np.concatenate([np.flatnonzero(y), rng.choice(neg, MAX_NEGATIVES, False)])
                X, y = X[keep], y[keep]
            xs.append(X)
            ys.append(y)
            owners.append(np.full(len(y), k))
    if not xs:
        return np.zeros((0, len(FEATURES)), np.float32), np.zeros(0, bool), np.zeros(0, int)
    return np.concatenate(xs), np.concatenate(ys), np.concatenate(owners)


def with_variants(docs: list[LabelledDoc], n: int, seed: int = 0) -> list[LabelledDoc]:
    """``docs`` and, after each real (not generated) one, ``n`` copies read with reworded
    schemas (:mod:`.reword`). A copy keeps its document's name, so it falls on the same side
    of every split as the document itself."""
    import random

    from docvlm.read.learned.reword import variant
    from docvlm.schema import schema_from_dict

    out = []
    for doc in docs:
        out.append(doc)
        if doc.source == "generated":
            continue  # generated documents draw their schema wording already
        for k in range(n):
            rng = random.Random(f"{seed}:{doc.name}:{k}")
            schema, truth = variant(doc.schema.schema, doc.truth, rng)
            spec = schema_from_dict(schema, doc.schema.name, doc.schema.path)
            out.append(LabelledDoc(doc.name, doc.pages, spec, truth, doc.source,
                                   {**doc.meta, "variant": k + 1}))  # fmt: skip
    return out


def _held_out(name: str) -> bool:
    return int(hashlib.sha1(name.encode()).hexdigest()[:4], 16) % 5 == 0


def decoded_confidences(docs: Iterable[LabelledDoc], scorer: Scorer) -> list[tuple[float, bool]]:
    """``(raw confidence, right)`` of the decoded value of every labelled field."""
    from docvlm.read.learned.reader import field_choices, raw_confidence

    pairs = []
    for doc in docs:
        truth = _truth_values(doc)
        if not truth:
            continue
        specs = {f.path: f for f in doc.schema.fields}
        lines = DocLines.build(doc.pages)
        choices, _ = field_choices(lines, doc.schema, scorer, None)
        picks = decode(choices)
        for path, norm in truth.items():
            d = picks.get(path)
            right = d is not None and normalise(specs[path], d.cand.value) == norm
            pairs.append((raw_confidence(d) if d else 0.0, right))
    return pairs


def train(
    docs: list[LabelledDoc],
    out_dir: str | Path,
    *,
    rounds: int = 400,
    seed: int = 0,
    learning_rate: float = 0.05,
    calibration_folds: int = 3,
    schema_variants: int = 0,
) -> dict:
    """Fit the scorer on ``docs`` and write ``out_dir/scorer.{onnx,json}``; returns a
    report (examples, positives, held-out accuracy of the decoded values, timings).

    The confidence calibration is fitted on the held-out fifth and, when there are at
    least ``10 * calibration_folds`` real (not generated) training documents, also on
    out-of-fold picks: a model trained without one fold of them reads that fold. Generated
    documents are easier than real ones; a calibration fitted mostly on them promises more
    than the model keeps on real pages.

    ``schema_variants``: each real document is also read with this many reworded copies of
    its schema (:func:`with_variants`), so that the model does not learn one wording."""
    started = time.perf_counter()
    if schema_variants:
        docs = with_variants(docs, schema_variants, seed)
    fit_docs = [d for d in docs if not _held_out(d.name)]
    val_docs = [d for d in docs if _held_out(d.name)] or fit_docs[-max(1, len(fit_docs) // 5) :]
    X, y, owners = examples(fit_docs, seed)
    Xv, yv, _ = examples(val_docs, seed + 1)
    if not y.any():
        from docvlm.errors import ConfigError

        raise ConfigError("no candidate of the training documents matches its label")
    clf = _fit(X, y, Xv, yv, rounds, seed, learning_rate)
    out = Path(out_dir)
    _write(clf, out)
    meta = {
        "features": list(FEATURES),
        "calibration": {"x": [0.0, 1.0], "y": [0.0, 1.0]},
        "trained_on": _sources(fit_docs),
        "held_out": _sources(val_docs),
        "examples": int(len(y)),
        "positives": int(y.sum()),
        "rounds": int(clf.best_iteration_ or rounds),
        "rough": {"trees": ROUGH_TREES, "keep": ROUGH_KEEP},
    }
    (out / META_FILE).write_text(json.dumps(meta, indent=1), encoding="utf-8")
    pairs = decoded_confidences(val_docs, Scorer(out))
    meta["held_out_accuracy"] = round(sum(r for _, r in pairs) / max(len(pairs), 1), 4)
    oof = _out_of_fold(fit_docs, X, y, owners, Xv, yv, calibration_folds, rounds, seed,
                       learning_rate)  # fmt: skip
    if oof:
        meta["calibration_out_of_fold"] = len(oof)
    calib = Calibration.fit([c for c, _ in pairs + oof], [r for _, r in pairs + oof])
    meta["calibration"] = calib.to_json()
    meta["train_seconds"] = round(time.perf_counter() - started, 1)
    (out / META_FILE).write_text(json.dumps(meta, indent=1), encoding="utf-8")
    return meta


def _fit(X, y, Xv, yv, rounds: int, seed: int, learning_rate: float):
    import lightgbm as lgb

    clf = lgb.LGBMClassifier(
        n_estimators=rounds,
        learning_rate=learning_rate,
        num_leaves=31,
        min_child_samples=10,
        subsample=0.8,
        subsample_freq=1,
        colsample_bytree=0.8,
        reg_lambda=1.0,
        random_state=seed,
        n_jobs=2,
        verbose=-1,
    )
    callbacks = [lgb.early_stopping(40, verbose=False)] if yv.any() and len(set(yv)) > 1 else []
    clf.fit(
        X,
        y.astype(int),
        eval_X=Xv if callbacks else None,
        eval_y=yv.astype(int) if callbacks else None,
        callbacks=callbacks,
    )
    return clf


def _write(clf, out: Path) -> None:
    """The model as ONNX (all trees, and the first ones for the rough pass), with a
    minimal meta file (its features) so that :class:`Scorer` can load the folder."""
    from onnxmltools import convert_lightgbm
    from onnxmltools.convert.common.data_types import FloatTensorType

    out.mkdir(parents=True, exist_ok=True)
    onx = convert_lightgbm(
        clf, initial_types=[("features", FloatTensorType([None, len(FEATURES)]))], zipmap=False
    )
    (out / MODEL_FILE).write_bytes(onx.SerializeToString())
    (out / ROUGH_FILE).write_bytes(first_trees(onx, ROUGH_TREES).SerializeToString())
    meta_file = out / META_FILE
    if not meta_file.exists():
        identity = {"x": [0.0, 1.0], "y": [0.0, 1.0]}
        meta_file.write_text(json.dumps({"features": list(FEATURES), "calibration": identity}),
                             encoding="utf-8")  # fmt: skip


def _out_of_fold(fit_docs, X, y, owners, Xv, yv, folds: int, rounds: int, seed: int,
                 learning_rate: float) -> list[tuple[float, bool]]:  # fmt: skip
    """``(raw confidence, right)`` of real training documents, each read by a model that
    was trained without it (see :func:`train`)."""
    import tempfile

    real = [i for i, d in enumerate(fit_docs) if d.source != "generated"]
    if folds < 2 or len(real) < 10 * folds:
        return []
    fold_of = {i: int(hashlib.sha1(fit_docs[i].name.encode()).hexdigest()[4:8], 16) % folds
               for i in real}  # fmt: skip
    pairs: list[tuple[float, bool]] = []
    for k in range(folds):
        fold = [i for i in real if fold_of[i] == k]
        keep = ~np.isin(owners, fold)
        clf = _fit(X[keep], y[keep], Xv, yv, rounds, seed, learning_rate)
        with tempfile.TemporaryDirectory() as tmp:
            _write(clf, Path(tmp))
            pairs += decoded_confidences([fit_docs[i] for i in fold], Scorer(tmp))
    return pairs


def first_trees(model, n: int):
    """A copy of an ONNX tree-ensemble model with only its first ``n`` trees (boosting's
    first rounds: a cheaper, rougher score with the same features)."""
    import copy

    out = copy.deepcopy(model)
    for node in out.graph.node:
        if not node.op_type.startswith("TreeEnsemble"):
            continue
        attrs = {a.name: a for a in node.attribute}
        for prefix, ids in (("nodes_", "nodes_treeids"), ("class_", "class_treeids"),
                            ("target_", "target_treeids")):  # fmt: skip
            if ids not in attrs:
                continue
            keep = [i for i, t in enumerate(attrs[ids].ints) if t < n]
            for a in node.attribute:
                if not a.name.startswith(prefix):
                    continue
                for kind in ("ints", "floats", "strings"):
                    values = list(getattr(a, kind))
                    if values:
                        del getattr(a, kind)[:]
                        getattr(a, kind).extend(values[i] for i in keep)
    return out


def _sources(docs: list[LabelledDoc]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for d in docs:
        counts[d.source] = counts.get(d.source, 0) + 1
    return counts


def labelled_folder(folder: str | Path, schema: SchemaSpec, pipeline=None) -> Iterator[LabelledDoc]:
    """The labelled documents of ``folder`` (``labels/<stem>.json`` or ``<stem>.json``),
    their page content read by the product's own render/detect/OCR stages."""
    from docvlm.pipeline import Pipeline
    from docvlm.sources import iter_paths

    folder = Path(folder)
    pipeline = pipeline or Pipeline()
    for path in iter_paths([folder]):
        p = Path(path)
        if p.suffix.lower() == ".json":
            continue
        label = folder / "labels" / f"{p.stem}.json"
        if not label.is_file():
            label = p.with_suffix(".json")
        if not label.is_file():
            logger.warning("%s: no label (%s), skipped", p, label.name)
            continue
        yield LabelledDoc(p.name, page_content(pipeline, p), schema,
                          json.loads(label.read_text(encoding="utf-8")), source=folder.name)  # fmt: skip


def page_content(pipeline, path: str | Path) -> list[Page]:
    """The pages of one file as the pipeline reads them (errors are logged, not raised)."""
    from docvlm.sources import inspect_file

    errors: list = []
    stats = dict.fromkeys(("render_s", "detect_s", "ocr_s", "read_s", "ocr_pages"), 0.0)
    pages = pipeline.page_content(inspect_file(path), errors, stats)
    for e in errors:
        logger.warning("%s: %s", path, e.message)
    return pages
