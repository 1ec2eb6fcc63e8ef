"""Names read from data become file names only here, and every output write stays in its folder.

A run id, fold name, system or plugin name read from a ``result.json``, a suite, a corpus or
the cache is text someone else wrote: ``../../x`` or ``/etc/cron.d/job`` used as a path
would write outside the site or figure folder the user asked for. So a name is turned into a
file name by :func:`file_name` (a safe name is kept as it is, anything else is replaced by a
sanitised stem plus a short hash of the original, so two different names never share a file),
and every write goes through :func:`inside`, which resolves the target (symbolic links
included) and refuses one that would land outside the output folder.
"""

from __future__ import annotations

import hashlib
import re
import shutil
from pathlib import Path

from serbench.api.atomic import write_text
from serbench.api.errors import SerbenchError

SAFE_NAME = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]{0,63}")  # as serbench.api.protocol: no '/', no leading '.', short
UNSAFE_CHARACTER = re.compile(r"[^A-Za-z0-9._-]")
STEM_LENGTH = 40  # of a sanitised name, before its hash


def file_name(name: object) -> str:
    """``name`` as one path component that cannot leave its folder: a safe name (letters,
    digits, '.', '_', '-', not starting with '.', at most 64 characters) unchanged, so links and
    folders keep their familiar names; anything else as its safe characters (at most 40) and
    ``-`` and 10 hex digits of its sha256: ``../../x`` becomes ``x-<hash>``."""
    text = str(name)
    if SAFE_NAME.fullmatch(text):
        return text
    digest = hashlib.sha256(text.encode("utf-8", errors="surrogatepass")).hexdigest()[:10]
    stem = UNSAFE_CHARACTER.sub("_", text).lstrip("._")[:STEM_LENGTH]
    return f"{stem}-{digest}" if stem else digest


def unique_file_names(names: list[object]) -> list[str]:
    """One distinct :func:`file_name` per entry, in order: a name given twice (two copies of
    one run), or differing only in case (one file on macOS and Windows), gets ``-2``, ``-3``...
    so that no entry's files overwrite another's."""
    taken: set[str] = set()
    out = []
    for name in names:
        base = candidate = file_name(name)
        count = 1
        while candidate.casefold() in taken:
            count += 1
            candidate = f"{base}-{count}"
        taken.add(candidate.casefold())
        out.append(candidate)
    return out


def checked_name(name: object, what: str, where: str) -> str:
    """``name`` when it is safe as a file name as it is (reading a file that a run wrote needs
    its exact name), else one error naming ``where`` it was read and ``what`` it is."""
    text = str(name)
    if not SAFE_NAME.fullmatch(text):
        shown = text if len(text) <= 60 else text[:57] + "..."
        raise SerbenchError(f"{where}: {what} {shown!r} cannot name a file (letters, digits, '.', '_' and '-' only, "
                            "not starting with '.'): a damaged or hand-edited file")
    return text


def inside(root: str | Path, path: str | Path) -> Path:
    """``path`` (relative to ``root``, or absolute) when it resolves to a place under ``root``,
    symbolic links followed; else one error naming both. What every output write checks."""
    base = Path(root).resolve()
    target = Path(root, path).resolve()
    if target != base and base not in target.parents:
        raise SerbenchError(f"{Path(root, path)}: resolves to {target}, outside the output folder {base}; nothing "
                            "is written outside it (a name read from data, or a symbolic link in the folder)")
    return target


def write_text_inside(root: str | Path, path: str | Path, text: str) -> Path:
    """Write ``text`` atomically to ``root/path`` after :func:`inside` accepts it."""
    target = inside(root, path)
    write_text(target, text)
    return target


def copy_inside(root: str | Path, source: str | Path, path: str | Path) -> Path:
    """Copy the file ``source`` to ``root/path`` after :func:`inside` accepts it."""
    target = inside(root, path)
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, target)
    return target
