"""Merging answers: one candidate per scalar field (the most confident), array items of all
table regions in reading order, and an explicit error for every field an answer failed."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from docvlm.datamodel import ErrorItem, FieldValue
from docvlm.engines.vlm.base import VlmAnswerError
from docvlm.read.vlm.answer import Answer
from docvlm.read.vlm.guard import looks_like_instructions
from docvlm.read.vlm.parsing import get_path, leaf_spans, parse_answer, raw_text, span_confidence
from docvlm.schema import field_keys, field_pointer

if TYPE_CHECKING:
    from docvlm.schema import ArraySpec, SchemaSpec


@dataclass
class Merger:
    """Folds answers into the best value per field, array parts and errors.

    Attributes:
        reader: The reader name recorded in provenance.
        default_confidence: Confidence of a value when the engine gives no token probabilities.
    """

    reader: str
    default_confidence: float
    best: dict[str, FieldValue] = field(default_factory=dict)
    items: dict[str, list[list[dict[str, FieldValue]]]] = field(default_factory=dict)
    errors: list[ErrorItem] = field(default_factory=list)

    def _confidence(self, answer: Answer, keys: tuple[Any, ...], spans: dict) -> float:
        c = answer.completion
        if c is None or not c.token_probs or not c.token_bytes or keys not in spans:
            return self.default_confidence
        return span_confidence(c.text, spans[keys], c.token_bytes, c.token_probs)

    def _field_value(
        self, answer: Answer, path: str, value: Any, raw: Any, keys: tuple[Any, ...], spans: dict
    ) -> FieldValue:
        q = answer.query
        return FieldValue(
            path=path,
            value=value,
            raw=raw_text(raw),
            page=q.page,
            bbox=q.bbox,
            region_class=q.region_class,
            reader=self.reader,
            confidence=round(self._confidence(answer, keys, spans), 4),
            suspicious=looks_like_instructions(value) or looks_like_instructions(raw),
        )

    def harvest(
        self,
        answer: Answer,
    ) -> None:
        """Fold one answer into the best candidates, the array parts and the errors."""
        q = answer.query
        if answer.error is not None:
            kind = type(answer.error).__name__
            detail = str(answer.error)
            if isinstance(answer.error, VlmAnswerError):
                detail += f" | last answer: {answer.error.last_raw[:500]}"
            where = f"page {q.page} {q.region_class}"
            for path in [f.path for f in q.fields] + [a.path for a in q.arrays]:
                self.errors.append(
                    ErrorItem(
                        stage="read",
                        error_type=kind,
                        message=f"{self.reader} reader, {where}: {detail}",
                        path=field_pointer(path),
                    )
                )
            return
        data = answer.data or {}
        raw_data: Any = None
        spans: dict = {}
        try:
            raw_data, start = parse_answer(answer.raw)
            spans = leaf_spans(answer.raw, start)
        except ValueError:
            pass
        invalid = answer.invalid
        last_raw = answer.raw[:500]

        def rejected(ptr: str) -> str | None:
            for bad, msg in invalid.items():
                if ptr == bad or ptr.startswith(bad + "/") or (bad and bad.startswith(ptr + "/")):
                    return msg
            return None

        for f in q.fields:
            keys = field_keys(f.path)
            value = get_path(data, keys)
            msg = rejected(field_pointer(f.path))
            if msg is not None:
                self.errors.append(
                    ErrorItem(
                        stage="read",
                        error_type="VlmAnswerError",
                        message=f"{self.reader} reader, page {q.page} {q.region_class}: {msg} "
                        f"| last answer: {last_raw}",
                        path=field_pointer(f.path),
                    )
                )
                continue
            if value is None:
                continue
            fv = self._field_value(answer, f.path, value, get_path(raw_data, keys), keys, spans)
            old = self.best.get(f.path)
            if old is None or fv.confidence > old.confidence:
                self.best[f.path] = fv
        for arr in q.arrays:
            keys = field_keys(arr.path)
            rows = get_path(data, keys)
            if not isinstance(rows, list):
                continue
            part = []
            for n, row in enumerate(rows):
                if not isinstance(row, dict):
                    continue
                entry = {}
                for f in arr.items:
                    ptr = field_pointer(f"{arr.path}/{n}/{f.name}")
                    msg = rejected(ptr)
                    if msg is not None:
                        self.errors.append(
                            ErrorItem(
                                stage="read",
                                error_type="VlmAnswerError",
                                message=f"{self.reader} reader, page {q.page} {q.region_class}: "
                                f"{msg} | last answer: {last_raw}",
                                path=ptr,
                            )
                        )
                        continue
                    value = row.get(f.name)
                    if value is None:
                        continue
                    k = (*keys, n, f.name)
                    entry[f.name] = self._field_value(
                        answer, f"{arr.path}/{n}/{f.name}", value, get_path(raw_data, k), k, spans
                    )
                if entry:
                    part.append(entry)
            if part:
                self.items.setdefault(arr.path, []).append(part)

    def values(self, schema: SchemaSpec, arrays: list[ArraySpec]) -> list[FieldValue]:
        """The merged values: scalar fields in schema order, then array items renumbered."""
        order = [f.path for f in schema.fields]
        values = sorted(self.best.values(), key=lambda v: order.index(v.path))
        for arr in arrays:
            index = 0
            for part in self.items.get(arr.path, []):
                for entry in part:
                    for name, fv in entry.items():
                        values.append(fv.model_copy(update={"path": f"{arr.path}/{index}/{name}"}))
                    index += 1
        return values

    def unique_errors(self, values: list[FieldValue] | None = None) -> list[ErrorItem]:
        """The errors without repeats (one field can fail in several regions alike), and a
        ``SuspiciousValue`` error for each of ``values`` that reads like an instruction."""
        seen, out = set(), []
        flagged = [
            ErrorItem(
                stage="validate",
                error_type="SuspiciousValue",
                message=f"{self.reader} reader, page {v.page}: the value of {v.path} reads "
                f"like an instruction to the model (possible prompt injection): "
                f"{str(v.value)[:200]!r}",
                path=field_pointer(v.path),
            )
            for v in values or []
            if v.suspicious
        ]
        for e in [*self.errors, *flagged]:
            key = (e.path, e.error_type, e.message)
            if key not in seen:
                seen.add(key)
                out.append(e)
        return out
