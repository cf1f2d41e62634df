"""JSON Schema (Draft 2020-12) validation; violations become errors with JSON pointers."""

from __future__ import annotations

import re
from typing import Any

from docvlm.datamodel import ErrorItem
from docvlm.schema import SchemaSpec, pointer, validator


def validate_record(record: dict[str, Any], schema: SchemaSpec) -> list[ErrorItem]:
    """Every violation of ``schema`` in ``record`` as an ErrorItem (stage 'validate')."""
    errors = []
    checks = validator(schema.schema).iter_errors(record)
    for err in sorted(checks, key=lambda e: list(map(str, e.absolute_path))):
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
