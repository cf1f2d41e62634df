"""Values that look like instructions to a model (prompt injection printed on a page).

A VLM reads whatever the page says; a document carrying "IGNORE PREVIOUS INSTRUCTIONS" can
steer the model, and the value it returns may be the attack's text. Such values are kept
(flagged ``suspicious``) but fail the record's validation, so a person looks at them.
"""

from __future__ import annotations

import re

# A small multilingual list of the common phrasings; case- and accent-insensitive enough
# for the usual attacks, not a complete filter.
_PHRASES = [
    # English
    r"\b(ignore|disregard|forget|override)\b.{0,30}\b(previous|prior|above|earlier|all|any|"
    r"the|your)\b.{0,20}\b(instructions?|prompts?|rules|directions)\b",
    r"\byou are now\b",
    r"\b(new|updated|real) (system )?instructions?\b",
    r"\bsystem prompt\b",
    r"\bact as (an?|the)\b",
    r"\bdo not (follow|obey)\b.{0,30}\binstructions?\b",
    r"\b(respond|reply|answer|output) (only )?with\b.{0,40}\b(json|the following|instead)\b",
    # German
    r"\bignorier\w*\b.{0,30}\banweisung\w*\b",
    r"\bdu bist (jetzt|nun)\b",
    # French
    r"\bignore[rz]?\b.{0,30}\binstructions?\b",
    r"\b(tu es|vous [eê]tes) (maintenant|d[ée]sormais)\b",
    # Spanish / Portuguese / Italian
    r"\bignor[ae]\w*\b.{0,30}\b(instrucciones|instru[cç][oõ]es|istruzioni)\b",
    r"\b(ahora eres|agora voc[eê] [eé]|ora sei)\b",
    # Dutch
    r"\bnegeer\b.{0,30}\binstructies\b",
    # Russian
    r"игнорир\w*.{0,30}инструкци\w*",
    r"ты теперь",
    # Chinese / Japanese
    r"忽略.{0,10}(指令|指示|说明)",
    r"你现在是",
    r"(以前|前)の指示を無視",
]
_PATTERNS = [re.compile(p, re.IGNORECASE | re.DOTALL) for p in _PHRASES]
# Chat-template and role markers never belong in a document field.
_MARKERS = re.compile(
    r"(<\|im_(start|end)\|>|<\|(system|user|assistant|endoftext)\|>|\[/?INST\]|<</?SYS>>|"
    r"^\s*(system|assistant|user|developer)\s*:)",
    re.IGNORECASE | re.MULTILINE,
)


def looks_like_instructions(value: object) -> bool:
    """True when a text value reads like an instruction to a model or a chat-role marker."""
    if not isinstance(value, str) or len(value) < 6:
        return False
    text = " ".join(value.split())
    if _MARKERS.search(value):
        return True
    return any(p.search(text) for p in _PATTERNS)
