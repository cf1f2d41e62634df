"""The fixed train/test split of labelled documents: a hash of the file name, so every
session, machine and model sees the same parts and a quoted figure is on documents the model
did not learn from."""

from __future__ import annotations

import hashlib

TEST_SHARE = 0.5


def part(file_name: str) -> str:
    """``"train"`` or ``"test"`` for a document, by the SHA-1 of its file name."""
    h = int(hashlib.sha1(file_name.encode("utf-8")).hexdigest()[:8], 16) / 0xFFFFFFFF
    return "test" if h < TEST_SHARE else "train"
