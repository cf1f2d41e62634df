"""Tiny random-weight VLM checkpoints, built on the spot and saved like real ones.

Each builder trains a byte-level BPE tokenizer with ``tokenizers`` (with the special tokens
its processor needs), writes a chat template, builds a 2-layer model from a tiny config and
``save_pretrained``s processor and model into a folder, which readers then load through
``AutoProcessor`` / ``AutoModelForImageTextToText`` like any checkpoint. Nothing is
downloaded. Used by the tests and by ``tests/gpu_vlm_bench.py``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

# A generic chat template: "<|role|>" turns, "<image>" where an image goes.
CHAT_TEMPLATE = (
    "{% for message in messages %}{{ '<|' + message['role'] + '|>' }}"
    "{% if message['content'] is string %}{{ message['content'] }}"
    "{% else %}{% for part in message['content'] %}"
    "{% if part['type'] == 'image' %}<image>"
    "{% elif part['type'] == 'text' %}{{ part['text'] }}{% endif %}"
    "{% endfor %}{% endif %}<end_of_utterance>\n{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>{% endif %}"
)
SPECIAL_TOKENS = [
    "<unk>", "<s>", "</s>", "<pad>", "<image>", "<fake_token_around_image>", "<global-img>",
    "<end_of_utterance>", "<|user|>", "<|assistant|>", "<|system|>",
]  # fmt: skip
_CORPUS = [
    '{"invoice_number": "INV-2024-0012", "issue_date": "2024-01-31", "total": 1234.56}',
    '{"seller": {"name": "ACME GmbH", "address": "Hauptstr. 1, 10115 Berlin"}, "currency": "EUR"}',
    '{"line_items": [{"description": "Widget", "quantity": 2, "unit_price": 9.5, "amount": 19}]}',
    "Invoice No. Rechnungsnummer Date Total due Subtotal Tax VAT null true false",
    "The image shows page 1 of a document. Extract these fields. Answer with one JSON object.",
    "0123456789 abcdefghijklmnopqrstuvwxyz ABCDEFGHIJKLMNOPQRSTUVWXYZ .,:;-_/()[]{}\"'",
    # the reader's own prompt wording, so prompts take few tokens
    "The image shows a 'text' region cropped from page 1 of a document. Extract these fields:",
    "- `total` (Total, number): Total amount due. - `date` (Date, date (YYYY-MM-DD)): string",
    "Answer with one JSON object that matches the JSON Schema below and nothing else. Use null "
    "for a field that is not shown in this image; do not guess. Copy text as printed. Write "
    "dates as YYYY-MM-DD and numbers as plain JSON numbers (no currency symbols, no thousands "
    "separators, '.' as the decimal point). Text recognised in this image (it may contain errors):",
    'JSON Schema: {"type": "object", "properties": {"title": "description", "format": "date", '
    '"type": ["string", "null"], "type": ["number", "null"]}, "required": [], '
    '"additionalProperties": false}',
]


def train_tokenizer(vocab_size: int = 1000) -> Any:
    """A fast tokenizer (byte-level BPE) trained on a few lines, with the special tokens."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(_CORPUS * 10, trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token="<s>",
        eos_token="</s>",
        pad_token="<pad>",
        unk_token="<unk>",
    )


def _text_config(tokenizer: Any, hidden: int, layers: int) -> dict[str, Any]:
    return {
        "model_type": "llama",
        "vocab_size": len(tokenizer),
        "hidden_size": hidden,
        "intermediate_size": hidden * 2,
        "num_hidden_layers": layers,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "max_position_embeddings": 4096,
        "pad_token_id": tokenizer.pad_token_id,
        "bos_token_id": tokenizer.bos_token_id,
        "eos_token_id": tokenizer.eos_token_id,
    }


def build_idefics3(out: Path, hidden: int = 64, layers: int = 2, seed: int = 0) -> Path:
    """A tiny Idefics3 (the SmolVLM architecture) checkpoint in ``out``."""
    import torch
    from transformers import Idefics3Config, Idefics3ForConditionalGeneration, Idefics3Processor
    from transformers.models.idefics3.image_processing_pil_idefics3 import (
        Idefics3ImageProcessorPil,
    )

    torch.manual_seed(seed)
    tokenizer = train_tokenizer()
    image_processor = Idefics3ImageProcessorPil(
        size={"longest_edge": 32}, max_image_size={"longest_edge": 32}, do_image_splitting=False
    )
    # 32 px / patch 8 = 16 patches, pixel-shuffled by scale 2 -> 4 image tokens
    processor = Idefics3Processor(
        image_processor=image_processor,
        tokenizer=tokenizer,
        image_seq_len=4,
        chat_template=CHAT_TEMPLATE,
    )
    config = Idefics3Config(
        vision_config={
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_hidden_layers": 1,
            "num_attention_heads": 2,
            "image_size": 32,
            "patch_size": 8,
        },
        text_config=_text_config(tokenizer, hidden, layers),
        scale_factor=2,
        image_token_id=tokenizer.convert_tokens_to_ids("<image>"),
    )
    model = Idefics3ForConditionalGeneration(config)
    out.mkdir(parents=True, exist_ok=True)
    processor.save_pretrained(out)
    model.save_pretrained(out)
    return out


def build_llava(out: Path, hidden: int = 64, layers: int = 2, seed: int = 0) -> Path:
    """A tiny LLaVA checkpoint (CLIP vision tower + Llama text model) in ``out``."""
    import torch
    from transformers import LlavaConfig, LlavaForConditionalGeneration, LlavaProcessor
    from transformers.models.clip.image_processing_pil_clip import CLIPImageProcessorPil

    torch.manual_seed(seed)
    tokenizer = train_tokenizer()
    image_processor = CLIPImageProcessorPil(
        size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}
    )
    processor = LlavaProcessor(
        image_processor=image_processor,
        tokenizer=tokenizer,
        patch_size=8,
        vision_feature_select_strategy="default",
        num_additional_image_tokens=1,  # CLIP's CLS token
        chat_template=CHAT_TEMPLATE,
    )
    config = LlavaConfig(
        vision_config={
            "model_type": "clip_vision_model",
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_hidden_layers": 1,
            "num_attention_heads": 2,
            "image_size": 32,
            "patch_size": 8,
            "projection_dim": 32,
        },
        text_config=_text_config(tokenizer, hidden, layers),
        image_token_index=tokenizer.convert_tokens_to_ids("<image>"),
        vision_feature_select_strategy="default",
        vision_feature_layer=-1,
    )
    model = LlavaForConditionalGeneration(config)
    out.mkdir(parents=True, exist_ok=True)
    processor.save_pretrained(out)
    model.save_pretrained(out)
    return out


def build_qwen2_vl(out: Path, hidden: int = 64, layers: int = 2, seed: int = 0) -> Path:
    """A tiny Qwen2-VL checkpoint in ``out`` (its processor needs torchvision)."""
    import torch
    from transformers import Qwen2VLConfig, Qwen2VLForConditionalGeneration, Qwen2VLProcessor

    torch.manual_seed(seed)
    tokenizer = train_tokenizer()
    tokenizer.add_special_tokens(
        {
            "additional_special_tokens": [
                "<|vision_start|>",
                "<|vision_end|>",
                "<|image_pad|>",
                "<|video_pad|>",
            ]
        }
    )
    try:  # the torchvision-backed processor when torchvision is there, else the PIL one
        from transformers.models.qwen2_vl.image_processing_qwen2_vl import (
            Qwen2VLImageProcessor,
        )
    except ImportError:
        from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import (
            Qwen2VLImageProcessorPil as Qwen2VLImageProcessor,
        )

    image_processor = Qwen2VLImageProcessor(min_pixels=28 * 28, max_pixels=56 * 56)
    template = CHAT_TEMPLATE.replace("<image>", "<|vision_start|><|image_pad|><|vision_end|>")
    processor = Qwen2VLProcessor(
        image_processor=image_processor, tokenizer=tokenizer, chat_template=template
    )
    text = _text_config(tokenizer, hidden, layers)
    text.pop("model_type")
    config = Qwen2VLConfig(
        text_config={**text, "rope_scaling": {"type": "mrope", "mrope_section": [2, 3, 3]}},
        vision_config={
            "depth": 1,
            "embed_dim": 32,
            "hidden_size": hidden,
            "num_heads": 2,
            "patch_size": 14,
            "spatial_merge_size": 2,
            "temporal_patch_size": 2,
        },
        image_token_id=tokenizer.convert_tokens_to_ids("<|image_pad|>"),
        vision_start_token_id=tokenizer.convert_tokens_to_ids("<|vision_start|>"),
    )
    model = Qwen2VLForConditionalGeneration(config)
    out.mkdir(parents=True, exist_ok=True)
    processor.save_pretrained(out)
    model.save_pretrained(out)
    return out
