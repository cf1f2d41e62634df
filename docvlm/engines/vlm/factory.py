"""VLM engines by kind: ``transformers`` (a local checkpoint) or ``openai`` (a server)."""

from __future__ import annotations

from docvlm.datamodel import ReaderOptions
from docvlm.engines.registry import Registry
from docvlm.engines.vlm.base import VlmEngine
from docvlm.errors import ConfigError
from docvlm.settings import get_settings

VLM_ENGINES = Registry(
    "VLM engine",
    {
        "transformers": "docvlm.engines.vlm.transformers_engine:TransformersEngine",
        "openai": "docvlm.engines.vlm.openai_engine:OpenAIEngine",
    },
)


def get_vlm_engine(kind: str, options: ReaderOptions) -> VlmEngine:
    """Build and load the VLM engine ``kind`` from the reader's options.

    Raises:
        ConfigError: Unknown kind, or a required option (model, base URL) is missing.
        VlmEngineError: The model or server cannot be used.
    """
    cls = VLM_ENGINES.resolve(kind)
    if kind == "transformers":
        if not options.model:
            raise ConfigError(
                "reader 'transformers' needs a model: --model PATH_OR_HUB_ID "
                "(a local checkpoint directory or a cached hub id)"
            )
        engine = cls.for_device(options.model, options.device, options.dtype)
        engine.load()
        return engine
    settings = get_settings()
    base_url = options.base_url or settings.openai_base_url
    if not base_url:
        raise ConfigError(
            "reader 'openai' needs a server: --base-url URL (e.g. http://localhost:8000/v1) "
            "or OPENAI_BASE_URL"
        )
    key = options.api_key or (
        settings.openai_api_key.get_secret_value() if settings.openai_api_key else None
    )
    return cls(
        base_url=base_url,
        model=options.model,
        api_key=key,
        timeout_s=options.timeout_s,
        max_retries=options.max_retries,
        concurrency=options.concurrency,
    )
