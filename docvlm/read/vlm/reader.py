"""The VLM reader: one document through a vision-language model, region by region.

The flow for one document (:meth:`VlmReader.read`):

1. **Per page, per region** (:mod:`~docvlm.read.vlm.regions`). Each detected region is asked
   only for the schema fields plausible there (by region class: tables for line items and
   amounts, text-like regions for the scalar fields; figures skipped; no number or date field
   for a region whose OCR text has no digits) and still missing (a field found on page 1 is
   not asked on page 2). A page's questions go to the engine in one batch; a page without
   detected regions is asked as a whole.
2. **Whole-page fallback.** Fields still missing are asked of whole pages, a few a batch.
3. **Validate, then re-ask** (:mod:`~docvlm.read.vlm.reask`), at most ``options.reask`` times;
   then the failing fields become explicit ``VlmAnswerError`` items carrying the last answer.
4. **Merge** (:mod:`~docvlm.read.vlm.merge`). One candidate per scalar field, the most
   confident; array items of all table regions in reading order. Provenance: page, the
   region's box and class, the reader, the model's answer text, and a confidence (mean token
   probability of the value when the engine reports token probabilities, else the engine's
   documented constant).

The engine is chosen by the factory from the reader kind: ``transformers`` (a local
checkpoint, JSON-Schema-constrained decoding) or ``openai`` (any OpenAI-compatible server).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from docvlm.datamodel import ErrorItem, FieldValue, Page
from docvlm.engines.vlm.base import EngineStats, VlmEngine
from docvlm.errors import DocvlmError
from docvlm.read.base import DocumentContent, Reader, ReadResult
from docvlm.read.vlm.merge import Merger
from docvlm.read.vlm.reask import ask
from docvlm.read.vlm.regions import make_query, plan_page

if TYPE_CHECKING:
    from PIL import Image

    from docvlm.schema import ArraySpec, FieldSpec, SchemaSpec

logger = logging.getLogger(__name__)


class VlmReader(Reader):
    """Reads a schema's fields with a VLM engine (reader kinds ``transformers``, ``openai``).

    Attributes:
        max_string: Longest free string the decoding grammar allows.
        max_items: Most array items the decoding grammar allows.
        fallback_pages: Pages per batch in the whole-page fallback.
    """

    max_string: int = 300
    max_items: int = 100
    fallback_pages: int = 4

    def __init__(self, options: Any = None) -> None:
        super().__init__(options)
        self.engine: VlmEngine | None = None
        if type(self).name == Reader.name:  # the reader kind names it: transformers, openai
            self.name = self.options.kind

    @property
    def default_confidence(self) -> float:
        """Confidence of a value the engine gives no token probabilities for."""
        engine = self.engine
        return engine.default_confidence if engine is not None else 0.5

    def _make_engine(self) -> VlmEngine:
        from docvlm.engines.vlm.factory import get_vlm_engine

        return get_vlm_engine(self.options.kind, self.options)

    def initialize(self) -> None:
        """Build and load the engine (once; the reader keeps it)."""
        if self.engine is None:
            self.engine = self._make_engine()

    def close(self) -> None:
        """Release the engine's connections (the reader can be initialised again)."""
        engine = self.engine
        if engine is not None and hasattr(engine, "close"):
            engine.close()
        self.engine = None
        self._ready = False

    @staticmethod
    def targets(
        schema: SchemaSpec, wanted: list[str] | None, prior: list[FieldValue] | None
    ) -> tuple[list[FieldSpec], list[ArraySpec]]:
        """Fields and arrays to ask for: ``wanted`` (field or array paths), else all that
        ``prior`` has no value for."""
        if wanted is None:
            have = {v.path for v in prior or [] if v.value is not None}
            fields = [f for f in schema.fields if f.path not in have]
            arrays = [a for a in schema.arrays if not any(p.startswith(a.path + "/") for p in have)]
        else:
            want = set(wanted)
            fields = [f for f in schema.fields if f.path in want]
            arrays = [
                a
                for a in schema.arrays
                if a.path in want or any(w.startswith(a.path + "/") for w in want)
            ]
        return fields, arrays

    def read(
        self,
        doc: DocumentContent,
        schema: SchemaSpec,
        wanted: list[str] | None = None,
        prior: list[FieldValue] | None = None,
    ) -> ReadResult:
        """Ask the VLM for the wanted fields, region by region, then whole pages."""
        self.ensure_ready()
        engine = self.engine
        assert engine is not None  # ensure_ready built it
        stats = EngineStats()
        fields, arrays = self.targets(schema, wanted, prior)
        if not fields and not arrays:
            return ReadResult()
        merger = Merger(self.name, self.default_confidence)
        images: dict[int, Image.Image] = {}
        bounds = (self.max_string, self.max_items)

        def page_image(page: Page) -> Image.Image | None:
            if page.number not in images:
                try:
                    images[page.number] = doc.image(page.number)
                except (DocvlmError, OSError, ValueError) as exc:
                    merger.errors.append(
                        ErrorItem(
                            stage="read",
                            error_type=type(exc).__name__,
                            message=f"{self.name} reader: page {page.number} image: {exc}",
                        )
                    )
                    return None
            return images[page.number]

        def answer(queries: list) -> None:
            if queries:
                for result in ask(
                    engine, queries, self.options.max_new_tokens, self.options.reask, stats
                ):
                    merger.harvest(result)

        # 1. per page, per region
        for page in doc.pages:
            missing = [f for f in fields if f.path not in merger.best]
            if not missing and not arrays:
                break
            image = page_image(page)
            if image is None:
                continue
            answer(plan_page(engine, schema, page, image, missing, arrays, *bounds))
            if len(images) > 2:  # keep memory flat on long documents
                images.pop(min(images))

        # 2. whole-page fallback for what the regions did not give
        region_pages = [p for p in doc.pages if p.regions]
        for start in range(0, len(region_pages), self.fallback_pages):
            missing = [f for f in fields if f.path not in merger.best]
            missing_arrays = [a for a in arrays if a.path not in merger.items]
            if not missing and not missing_arrays:
                break
            queries = []
            for page in region_pages[start : start + self.fallback_pages]:
                image = page_image(page)
                if image is None:
                    continue
                hint = "\n".join(line.text for line in page.lines)
                queries.append(
                    make_query(
                        engine, schema, page, image, None, missing, missing_arrays, hint, *bounds
                    )
                )
            answer(queries)

        values = merger.values(schema, arrays)
        result = ReadResult(values=values, errors=merger.unique_errors(values), calls=stats.calls)
        logger.debug(
            "%s reader: %s: %d values, %d errors, %d calls",
            self.name,
            doc.doc_id[:12],
            len(values),
            len(result.errors),
            result.calls,
        )
        return result
