"""Reading text files (a corpus's label lists, CSVs and JSON lines; serbench's own JSON records) one way:
UTF-8 with or without a byte-order mark, every field stripped of surrounding whitespace, and
one :class:`~serbench.api.errors.SerbenchError` naming the file and line for what cannot be read.
"""

from __future__ import annotations

import csv
import io
import json
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from serbench.api.errors import SerbenchError

csv.field_size_limit(min(sys.maxsize, 2**31 - 1))  # a long transcript is a field, not an error


def read_text(path: Path, errors: str = "strict") -> str:
    """The file's text, decoded as UTF-8 (a leading byte-order mark removed); bytes that are not
    UTF-8 are refused naming the line (``errors="replace"`` keeps them as U+FFFD instead)."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except IsADirectoryError:
        raise SerbenchError(f"{path}: is a folder, expected a file") from None
    except FileNotFoundError:
        raise SerbenchError(f"{path}: no such file") from None
    except OSError as exc:
        raise SerbenchError(f"{path}: cannot be read ({exc.strerror or exc})") from None
    try:
        return raw.decode("utf-8-sig", errors=errors)
    except UnicodeDecodeError as exc:
        line = raw[:exc.start].count(b"\n") + 1
        raise SerbenchError(f"{path}:{line}: byte 0x{raw[exc.start]:02x} is not UTF-8 "
                            "(save the file as UTF-8)") from None


def read_json(path: Path, fix: str = "") -> Any:
    """A JSON file's value; a missing file raises FileNotFoundError (callers say what it means),
    anything else unreadable is one SerbenchError naming the file and line, with ``fix`` appended."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(path)
    text = read_text(path)
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise SerbenchError(f"{path}:{exc.lineno}: not valid JSON ({exc.msg}){fix}") from None


def numbered_lines(text: str) -> Iterator[tuple[int, str]]:
    r"""``(line number, line)`` as an editor counts them: only ``\n``, ``\r\n`` and ``\r`` end a
    line (``str.splitlines`` also splits at form feeds, ``\x1c``-``\x1e``, U+0085, U+2028 and
    U+2029, which a JSON string may hold raw, and every later line number would be off)."""
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    if lines[-1] == "":
        lines.pop()  # a final newline ends the last line; it starts no new one
    yield from enumerate(lines, start=1)


def normalise(value: str | None) -> str:
    """A field as a name: surrounding whitespace and stray byte-order marks removed."""
    return (value or "").replace("\ufeff", "").strip()


# What ends a line for some reader of a corpus's names (the csv module, str.splitlines, a
# predictions file counted by its newlines), and NUL, which C libraries read as the end of a string.
LINE_BREAKS = "\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"
_BREAK = re.compile("[\x00" + LINE_BREAKS + "]")


def line_break(value: str) -> str:
    """``''`` when ``value`` fits on one line; else what breaks it, as a user can search for it
    (``'a line break (U+000A)'``, ``'a NUL character'``)."""
    found = _BREAK.search(value)  # (a corpus has many names: one regular-expression scan each)
    if found is None:
        return ""
    return "a NUL character" if "\x00" in value else f"a line break (U+{ord(found.group()):04X})"


def check_one_line(value: str, where: str, what: str) -> None:
    """Refuse a name or field holding a line break or NUL, naming ``where`` (``file:line``) and
    ``what`` (the column): ids, labels and speakers are written one per line into a run's
    predictions files and counted by their lines, so such a field would make a job that never
    reads back as done."""
    problem = line_break(value)
    if problem:
        shown = value if len(value) <= 40 else value[:37] + "..."
        raise SerbenchError(f"{where}: {what} {shown!r} holds {problem}; a field must fit on one line")


def csv_rows(path: Path) -> tuple[list[str], Iterator[tuple[int, dict[str, str]]]]:
    """The header and the rows of a CSV file, each row as ``(line number, {column: field})``
    with every name and field normalised; a malformed row, or a field holding a line break or NUL
    (a quoted field may span lines in CSV; no field of a corpus or a predictions file may), is
    refused naming the line where its row starts."""
    path = Path(path)
    reader = csv.reader(io.StringIO(read_text(path), newline=""))  # only \n, \r\n, \r end a row
    try:
        header = [normalise(c) for c in next(reader, [])]
    except csv.Error as exc:
        raise SerbenchError(f"{path}:1: {exc}") from None
    for name in header:
        check_one_line(name, f"{path}:1", "column name")

    def rows() -> Iterator[tuple[int, dict[str, str]]]:
        while True:
            start = reader.line_num + 1  # a quoted field can end the row lines later
            try:
                fields = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                raise SerbenchError(f"{path}:{reader.line_num}: {exc}") from None
            if not any(f.strip() for f in fields):
                continue  # a blank line
            if len(fields) > len(header):
                raise SerbenchError(f"{path}:{start}: {len(fields)} fields, the header has {len(header)}")
            record = {c: normalise(f) for c, f in zip(header, fields + [""] * (len(header) - len(fields)))}
            for column, value in record.items():
                check_one_line(value, f"{path}:{start}", column)
            yield start, record

    return header, rows()
