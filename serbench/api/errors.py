"""The one exception type that means "the user asked for something wrong".

The CLI prints these as a single line and exits non-zero; anything else is a bug and keeps
its traceback.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class SerbenchError(Exception):
    """A mistake in the user's input: unknown plugin, bad override, missing data, bad file."""


class ContractError(SerbenchError):
    """A plugin's output breaks its kind's contract (a shape, a type, a non-finite value on the
    first batch): every other job would fail the same way, so a run stops at the first."""


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """' (did you mean 'x'?)' when a close match exists, else ''."""
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""
