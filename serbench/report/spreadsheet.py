"""CSV cells a spreadsheet opens as text, never as a formula.

A run id, label, plugin or system name in a CSV export is text someone else wrote. A cell that
begins with ``=``, ``+``, ``-`` or ``@`` (or a tab or carriage return, which some spreadsheets
skip before reading one of those) is taken as a formula when the file is opened, and a formula
can fetch URLs or run commands (OWASP, "CSV Injection"). Such a text cell gets the usual leading
apostrophe, which spreadsheets show as text and do not print. Numbers are data, not text: a
number, or a text cell that is a plain number such as ``-0.5``, is written as it is, so the
column stays numeric.
"""

from __future__ import annotations

import re

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
PLAIN_NUMBER = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?")


def spreadsheet_safe(value: object) -> object:
    """``value`` unchanged when it is a number, a plain number as text, or text that no
    spreadsheet reads as a formula; else the text with a leading apostrophe."""
    if not isinstance(value, str) or not value.startswith(FORMULA_START) or PLAIN_NUMBER.fullmatch(value):
        return value
    return "'" + value


def safe_row(values: list) -> list:
    """Every cell of a CSV row through :func:`spreadsheet_safe`."""
    return [spreadsheet_safe(v) for v in values]
