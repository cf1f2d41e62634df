"""A local image-text-to-text checkpoint behind the VLM engine interface.

Any model that ``AutoProcessor`` + ``AutoModelForImageTextToText`` load and whose processor has
a chat template works (SmolVLM/Idefics3, LLaVA, Qwen2-VL, ...). The model is loaded once per
process and reused (the reader, and so the Pipeline, holds the loaded engine); conversations are
batched into one ``generate`` call per :attr:`TransformersEngine.batch_size`; every answer is
decoded under a JSON Schema with llguidance (see :mod:`docvlm.engines.vlm.constrained`).

Offline by default: a hub id is loaded only from the local Hugging Face cache unless
``DOCVLM_ALLOW_DOWNLOAD=1`` is set.
"""

from __future__ import annotations

import copy
import logging
import math
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from docvlm.engines.vlm.base import (
    Completion,
    Conversation,
    EngineStats,
    VlmEngine,
    VlmEngineError,
)
from docvlm.errors import ConfigError

if TYPE_CHECKING:
    from PIL import Image

logger = logging.getLogger(__name__)


def resolve_device(device: str = "auto", dtype: str = "auto") -> tuple[str, str]:
    """Pick ``(device, dtype)``: CUDA with bf16 (fp16 on older GPUs) when present, else CPU fp32.

    Raises:
        ConfigError: CUDA was asked for but is not available.
    """
    import torch

    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    elif device == "cuda" and not torch.cuda.is_available():
        raise ConfigError("reader device 'cuda' requested but torch sees no CUDA device")
    if dtype == "auto":
        if device == "cuda":
            dtype = "bfloat16" if torch.cuda.is_bf16_supported() else "float16"
        else:
            dtype = "float32"
    return device, dtype


def _image_edge(image_processor: Any) -> int | None:
    """Long edge, in pixels, of one image tile the processor feeds the model (None if unknown).

    Idefics3/SmolVLM: ``max_image_size`` (one tile; bigger images are split into tiles);
    CLIP-style: ``size``/``crop_size``; Qwen-style: the square root of ``max_pixels``.
    """
    for attr in ("max_image_size", "size", "crop_size"):
        size = getattr(image_processor, attr, None)
        if not isinstance(size, dict):
            continue
        if "max_pixels" in size or getattr(image_processor, "max_pixels", None):
            pixels = size.get("max_pixels") or image_processor.max_pixels
            return int(math.sqrt(pixels))
        if "longest_edge" in size:
            edge = int(size["longest_edge"])
            # Qwen-style processors give pixel counts under longest_edge
            return int(math.sqrt(edge)) if edge > 20000 else edge
        if "height" in size and "width" in size:
            return int(max(size["height"], size["width"]))
        if "shortest_edge" in size:
            return int(size["shortest_edge"])
    return None


class TransformersEngine(VlmEngine):
    """A Hugging Face image-text-to-text model with JSON-Schema-constrained, batched decoding.

    Attributes:
        batch_size: Conversations per ``generate`` call (halved on CUDA out-of-memory).
        max_edge: Cap on :attr:`preferred_edge` (bigger crops cost many image tokens).
    """

    name = "transformers"
    constrained = True
    batch_size: int = 8
    max_edge: int = 1536

    def __init__(self, model: str, device: str, dtype: str) -> None:
        super().__init__()
        self.model_id = model
        self.device = device
        self.dtype = dtype
        self.model: Any = None
        self.processor: Any = None
        self.grammar_tokenizer: Any = None
        self.eos_ids: list[int] = []
        self.pad_id: int = 0
        self.pad_to_square = False
        self._templater: Any = None
        self._lock = threading.Lock()

    @classmethod
    def for_device(
        cls, model: str, device: str = "auto", dtype: str = "auto"
    ) -> TransformersEngine:
        """An (unloaded) engine for ``model`` with ``device``/``dtype`` resolved ("auto")."""
        device, dtype = resolve_device(device, dtype)
        return cls(model, device, dtype)

    def load(self) -> None:
        """Load processor and model, prepare the grammar tokenizer.

        Raises:
            VlmEngineError: The checkpoint cannot be found or loaded, or has no chat template.
        """
        import torch
        from transformers import AutoModelForImageTextToText, AutoProcessor

        from docvlm.engines.vlm.constrained import GrammarTokenizer

        source = self.model_id
        kwargs: dict[str, Any] = {}
        if not Path(source).expanduser().is_dir():
            from docvlm.settings import get_settings

            kwargs["local_files_only"] = not get_settings().allow_download
        else:
            source = str(Path(source).expanduser())
        torch_dtype = getattr(torch, self.dtype)
        logger.info("loading VLM %s on %s (%s)", self.model_id, self.device, self.dtype)
        try:
            processor = AutoProcessor.from_pretrained(source, **kwargs)
            model = AutoModelForImageTextToText.from_pretrained(source, dtype=torch_dtype, **kwargs)
        except (OSError, ValueError, KeyError) as exc:
            hint = (
                ""
                if kwargs.get("local_files_only") is not True
                else " (hub ids load from the local cache only: download the model first, "
                "or set DOCVLM_ALLOW_DOWNLOAD=1)"
            )
            raise VlmEngineError(f"cannot load VLM {self.model_id!r}: {exc}{hint}") from exc
        model.to(self.device)
        model.eval()
        tokenizer = getattr(processor, "tokenizer", None)
        if tokenizer is None:
            raise VlmEngineError(f"VLM {self.model_id!r}: its processor has no tokenizer")
        # most processors carry the chat template; some checkpoints keep it on the tokenizer
        self._templater = processor if getattr(processor, "chat_template", None) else tokenizer
        if not getattr(self._templater, "chat_template", None):
            raise VlmEngineError(
                f"VLM {self.model_id!r} has no chat template; use an instruction-tuned checkpoint"
            )
        tokenizer.padding_side = "left"  # decoder-only batches pad on the left
        eos: list[int] = []
        gen_eos = model.generation_config.eos_token_id
        for value in gen_eos if isinstance(gen_eos, list) else [gen_eos]:
            if value is not None:
                eos.append(int(value))
        if tokenizer.eos_token_id is not None and tokenizer.eos_token_id not in eos:
            eos.append(int(tokenizer.eos_token_id))
        if not eos:
            raise VlmEngineError(f"VLM {self.model_id!r} defines no end-of-sequence token")
        self.eos_ids = eos
        pad = tokenizer.pad_token_id
        if pad is None:
            pad = model.generation_config.pad_token_id
        self.pad_id = int(pad) if pad is not None else eos[0]
        out_emb = model.get_output_embeddings()
        vocab = (
            int(out_emb.weight.shape[0])
            if out_emb is not None
            else int(model.config.get_text_config().vocab_size)
        )
        self.grammar_tokenizer = GrammarTokenizer(tokenizer, max(vocab, len(tokenizer)), eos)
        image_processor = getattr(processor, "image_processor", None)
        edge = _image_edge(image_processor) if image_processor is not None else None
        self.preferred_edge = min(edge or 1024, self.max_edge)
        self.pad_to_square = bool(getattr(image_processor, "do_center_crop", False))
        self.processor = processor
        self.model = model

    # -- generation -------------------------------------------------------------------------

    def complete(
        self,
        conversations: list[Conversation],
        schemas: list[dict[str, Any]],
        max_new_tokens: int,
        stats: EngineStats | None = None,
    ) -> list[Completion]:
        """Answer the conversations, ``batch_size`` at a time, each under its JSON Schema."""
        stats = stats or self.stats
        out: list[Completion] = []
        for start in range(0, len(conversations), self.batch_size):
            end = start + self.batch_size
            out.extend(
                self._generate_safe(
                    conversations[start:end], schemas[start:end], max_new_tokens, stats
                )
            )
        return out

    def _generate_safe(
        self,
        conversations: list[Conversation],
        schemas: list[dict[str, Any]],
        max_new_tokens: int,
        stats: EngineStats,
    ) -> list[Completion]:
        import torch

        try:
            return self._generate(conversations, schemas, max_new_tokens, stats)
        except torch.cuda.OutOfMemoryError as exc:
            torch.cuda.empty_cache()
            if len(conversations) == 1:
                return [Completion(error=VlmEngineError(f"out of GPU memory: {exc}"))]
            half = len(conversations) // 2
            logger.warning("VLM out of memory at batch %d; splitting", len(conversations))
            return self._generate_safe(
                conversations[:half], schemas[:half], max_new_tokens, stats
            ) + self._generate_safe(conversations[half:], schemas[half:], max_new_tokens, stats)
        except (RuntimeError, ValueError, VlmEngineError) as exc:
            logger.exception("VLM generate failed")
            err = (
                exc
                if isinstance(exc, VlmEngineError)
                else VlmEngineError(f"generate failed: {exc}")
            )
            return [Completion(error=err) for _ in conversations]

    @staticmethod
    def _hf_messages(conversation: Conversation) -> tuple[list[dict[str, Any]], list[Image.Image]]:
        messages, images = [], []
        for message in conversation:
            parts = []
            for part in message["content"]:
                if part["type"] == "image":
                    images.append(part["image"])
                    parts.append({"type": "image"})
                else:
                    parts.append({"type": "text", "text": part["text"]})
            messages.append({"role": message["role"], "content": parts})
        return messages, images

    def _generate(
        self,
        conversations: list[Conversation],
        schemas: list[dict[str, Any]],
        max_new_tokens: int,
        stats: EngineStats,
    ) -> list[Completion]:
        import torch
        from transformers import LogitsProcessorList

        from docvlm.engines.vlm.constrained import ConstrainedJsonProcessor

        texts, images = [], []
        for conversation in conversations:
            messages, imgs = self._hf_messages(conversation)
            texts.append(
                self._templater.apply_chat_template(
                    messages, add_generation_prompt=True, tokenize=False
                )
            )
            images.append(imgs)
        kwargs: dict[str, Any] = {"text": texts, "padding": True, "return_tensors": "pt"}
        if any(images):
            kwargs["images"] = images
        inputs = self.processor(**kwargs)
        torch_dtype = getattr(torch, self.dtype)
        inputs = {
            k: (
                v.to(self.device, dtype=torch_dtype) if v.is_floating_point() else v.to(self.device)
            )
            for k, v in inputs.items()
            if hasattr(v, "to")
        }
        budget = ConstrainedJsonProcessor.budget_for(schemas, max_new_tokens)
        processor = ConstrainedJsonProcessor(self.grammar_tokenizer, schemas, budget)
        config = copy.deepcopy(self.model.generation_config)
        for name in ("temperature", "top_p", "top_k", "min_p", "typical_p"):
            if hasattr(config, name):
                setattr(config, name, None)
        config.do_sample = False
        config.num_beams = 1
        config.max_new_tokens = budget
        config.max_length = None
        config.eos_token_id = self.eos_ids
        config.pad_token_id = self.pad_id
        with self._lock, torch.inference_mode():
            stats.add_calls()
            sequences = self.model.generate(
                **inputs,
                generation_config=config,
                logits_processor=LogitsProcessorList([processor]),
            )
        if not isinstance(sequences, torch.Tensor):
            sequences = sequences.sequences
        results = []
        for tokens, probs, complete in processor.finish(sequences.cpu()):
            pieces = [self.grammar_tokenizer.token_bytes(t) for t in tokens]
            text = b"".join(pieces).decode("utf-8", errors="replace")
            results.append(
                Completion(text=text, token_bytes=pieces, token_probs=probs, finished=complete)
            )
        return results
