"""JSON Schema (Draft 2020-12) validation; violations become errors with JSON pointers."""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

from docvlm.datamodel import ErrorItem
from docvlm.extraction.schema import SchemaSpec


@lru_cache(maxsize=32)
def _validator(schema_json: str):
    import json

    from jsonschema import Draft202012Validator

    return Draft202012Validator(
        json.loads(schema_json), format_checker=Draft202012Validator.FORMAT_CHECKER
    )


def pointer(parts) -> str:
    """JSON pointer (RFC 6901) for a sequence of keys and indices."""
    return "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in parts)


def validate_record(record: dict[str, Any], schema: SchemaSpec) -> list[ErrorItem]:
    """Every violation of ``schema`` in ``record`` as an ErrorItem (stage 'validate')."""
    validator = _validator(schema.to_json())
    errors = []
    for err in sorted(validator.iter_errors(record), key=lambda e: list(map(str, e.absolute_path))):
        parts = list(err.absolute_path)
        if err.validator == "required":
            m = re.match(r"'(.+)' is a required property", err.message)
            if m:
                parts.append(m.group(1))
        errors.append(
            ErrorItem(
                stage="validate",
                error_type=f"schema.{err.validator}",
                message=err.message,
                path=pointer(parts) or "/",
            )
        )
    return errors
