"""The bounded validate-then-re-ask loop: send questions in one batch, check every answer
against its schema, send failing answers back with the validator's messages, at most
``reask`` times, then give up on the failing fields explicitly."""

from __future__ import annotations

import logging

from docvlm.engines.vlm.base import EngineStats, VlmAnswerError, VlmEngine
from docvlm.read.vlm.answer import Answer, Query, length_problems
from docvlm.read.vlm.parsing import coerce_answer, parse_answer
from docvlm.read.vlm.prompts import reask_prompt
from docvlm.schema import schema_problems

logger = logging.getLogger(__name__)


def ask(
    engine: VlmEngine,
    queries: list[Query],
    max_new_tokens: int,
    reask: int,
    stats: EngineStats,
) -> list[Answer]:
    """Send the queries (one batch), validate, re-ask the failing ones (bounded)."""
    outcomes: list[Answer | None] = [None] * len(queries)
    conversations = [list(q.conversation) for q in queries]
    pending = list(range(len(queries)))
    attempt = 0
    while pending:
        attempt += 1
        completions = engine.complete(
            [conversations[i] for i in pending],
            [queries[i].grammar if engine.constrained else queries[i].schema for i in pending],
            max_new_tokens,
            stats,
        )
        retry = []
        for i, completion in zip(pending, completions, strict=True):
            query = queries[i]
            if completion.error is not None:
                outcomes[i] = Answer(query, completion=completion, error=completion.error)
                continue
            try:
                parsed, _ = parse_answer(completion.text)
                data = coerce_answer(query, parsed)
            except ValueError:
                data = None
            problems = (
                schema_problems(query.schema, data) + length_problems(query.grammar, data)
                if data is not None
                else [("", "the answer is not a JSON object")]
            )
            if not problems:
                outcomes[i] = Answer(query, data, completion.text, completion)
                continue
            if attempt > reask:
                message = f"answer still invalid after {attempt} attempts: " + "; ".join(
                    f"{p or '(root)'}: {m}" for p, m in problems[:5]
                )
                err = VlmAnswerError(message, attempt, completion.text, [m for _, m in problems])
                if data is None:
                    outcomes[i] = Answer(query, None, completion.text, completion, error=err)
                else:
                    outcomes[i] = Answer(
                        query, data, completion.text, completion, invalid=dict(problems)
                    )
                continue
            logger.info(
                "VLM answer for page %d %s failed validation (%s); re-asking",
                query.page,
                query.region_class,
                problems[0][1][:120],
            )
            conversations[i] = [
                *conversations[i],
                {"role": "assistant", "content": [{"type": "text", "text": completion.text}]},
                {
                    "role": "user",
                    "content": [
                        {
                            "type": "text",
                            "text": reask_prompt(problems, data is not None, completion.finished),
                        }
                    ],
                },
            ]
            retry.append(i)
        pending = retry
    return [o for o in outcomes if o is not None]
