"""Reader ``transformers``: a local document VLM, JSON-Schema-constrained, batched per page.

Usage::

    reader = get_reader(ReaderOptions(kind="transformers", model="HuggingFaceTB/SmolVLM-256M-Instruct"))

``options.model`` is a checkpoint directory or a hub id already in the local cache (set
``DOCVLM_ALLOW_DOWNLOAD=1`` to let transformers download it). ``options.device``/``dtype``
default to CUDA + bfloat16 when a GPU is there, else CPU + float32. The model is loaded once
per process and shared by every reader using the same model, device and dtype.

Confidence of a value: the mean probability, under the model, of the tokens that spell it.
"""

from __future__ import annotations

from docvlm.engines.vlm.base import VlmEngine
from docvlm.errors import ConfigError
from docvlm.read.vlm_common import VlmReader


class TransformersReader(VlmReader):
    """A Hugging Face image-text-to-text model read region by region (see module docs)."""

    name = "transformers"
    # Not used for this reader's values (token probabilities always exist); kept for clarity.
    default_confidence = 0.5

    def _make_engine(self) -> VlmEngine:
        from docvlm.engines.vlm.transformers_engine import get_engine

        if not self.options.model:
            raise ConfigError(
                "reader 'transformers' needs a model: --model PATH_OR_HUB_ID "
                "(a local checkpoint directory or a cached hub id)"
            )
        return get_engine(self.options.model, self.options.device, self.options.dtype)
