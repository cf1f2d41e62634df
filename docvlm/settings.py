"""Settings from the environment, read in one place.

``DOCVLM_*`` variables configure docvlm itself; ``OPENAI_BASE_URL`` and ``OPENAI_API_KEY``
are the OpenAI SDK's own names, honoured so that an existing environment just works.
Per-run options (schema, reader, DPI, ...) are explicit arguments, never settings.
"""

from __future__ import annotations

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Process-wide settings (read when :func:`get_settings` is called)."""

    model_config = SettingsConfigDict(env_prefix="DOCVLM_", extra="ignore")

    allow_download: bool = Field(
        default=False, description="let transformers fetch a model missing from the local cache"
    )
    threads: int | None = Field(
        default=None, ge=1, description="threads per ONNX session (default: every core)"
    )
    split_pages: int = Field(
        default=40,
        ge=0,
        description="with several workers, a PDF of more pages is read in page ranges by "
        "all of them (0: never split)",
    )
    log_format: str = Field(default="text", description="'json' for one JSON object per line")
    openai_base_url: str | None = Field(
        default=None, validation_alias="OPENAI_BASE_URL", description="OpenAI-compatible server"
    )
    openai_api_key: SecretStr | None = Field(
        default=None, validation_alias="OPENAI_API_KEY", description="its API key (never logged)"
    )


def get_settings() -> Settings:
    """The settings as the environment holds them now."""
    return Settings()


def onnx_threads() -> int:
    """Threads for one ONNX Runtime session: ``DOCVLM_THREADS``, else every core (the
    ``extract`` worker pool sets it to cores / workers in each worker)."""
    import os

    return get_settings().threads or os.cpu_count() or 1
