"""The VLM reader and its parts: answer schemas, answer parsing and confidence, prompts,
region planning, the bounded re-ask loop and merging."""

from docvlm.read.vlm.reader import VlmReader

__all__ = ["VlmReader"]
