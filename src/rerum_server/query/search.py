"""Full-text search requests → PostgreSQL tsquery text, pure.

Words: any of the words (OR). Phrase: the words in order, each at most ``slop`` extra positions after
the previous one (Atlas's ``slop`` is a total edit distance; a per-gap bound is the closest tsquery can
say). The text is split into words and lower-cased here; accents are removed in SQL by the same
``unaccent`` that built the indexed vector.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from itertools import product
from typing import Any

from rerum_server import errors

_WORD = re.compile(r"\w+")
DEFAULT_PHRASE_SLOP = 2
MAX_SLOP = 10
MAX_WORDS = 32
_MAX_ALTERNATIVES = 64  # beyond this many spacings, a phrase is matched with its words adjacent


@dataclass(frozen=True)
class SearchRequest:
    """What to search for, as tsquery text; empty when the text holds no word."""

    tsquery: str
    phrase: bool
    slop: int


def words_of(text: str) -> list[str]:
    return [word.lower() for word in _WORD.findall(text)][:MAX_WORDS]


def _lexeme(word: str) -> str:
    return "'" + word.replace("'", "''") + "'"


def word_search(text: str) -> SearchRequest:
    """Documents containing any of the words."""
    return SearchRequest(" | ".join(_lexeme(word) for word in words_of(text)), phrase=False, slop=0)


def phrase_search(text: str, slop: int = DEFAULT_PHRASE_SLOP) -> SearchRequest:
    """Documents containing the words in order, with at most ``slop`` other words in each gap."""
    words = words_of(text)
    if not words:
        return SearchRequest("", phrase=True, slop=slop)
    gaps = len(words) - 1
    if (slop + 1) ** gaps > _MAX_ALTERNATIVES:
        slop = 0
    alternatives = []
    for distances in product(range(1, slop + 2), repeat=gaps):
        parts = [_lexeme(words[0])]
        parts += [
            f"<{distance}> {_lexeme(word)}" for distance, word in zip(distances, words[1:], strict=True)
        ]
        alternatives.append("(" + " ".join(parts) + ")")
    return SearchRequest(" | ".join(alternatives), phrase=True, slop=slop)


def slop_option(options: Any) -> int:
    """The phrase ``slop`` from a request's ``options`` (default 2); 400 for anything but a small integer."""
    if options is None:
        return DEFAULT_PHRASE_SLOP
    if not isinstance(options, dict):
        raise errors.BadRequest("The search 'options' must be a JSON object.")
    slop = options.get("slop", DEFAULT_PHRASE_SLOP)
    if isinstance(slop, bool) or not isinstance(slop, int) or not 0 <= slop <= MAX_SLOP:
        raise errors.BadRequest(f"The search option 'slop' must be an integer from 0 to {MAX_SLOP}.")
    return slop
