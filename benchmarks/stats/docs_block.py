"""The command line both coverage simulations share: print the table, and with ``--page``
rewrite the docs page's block between ``<!-- simulated: NAME -->`` and
``<!-- end simulated: NAME -->`` with it (tests compare that block with a fresh run)."""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Callable
from pathlib import Path


def rewrite(page: Path, block: str, text: str) -> bool:
    """Put ``text`` into ``page``'s ``block``; False when the page has no such block."""
    content = page.read_text()
    pattern = re.compile(rf"(<!-- simulated: {re.escape(block)} -->\n).*?(\n<!-- end simulated: {re.escape(block)} -->)",
                         re.S)
    if not pattern.search(content):
        return False
    page.write_text(pattern.sub(lambda m: m.group(1) + text + m.group(2), content))
    return True


def main(argv: list[str] | None, description: str, block: str, default_replicates: int,
         report: Callable[[int], tuple[list[dict], str]]) -> int:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--replicates", type=int, default=default_replicates)
    parser.add_argument("--page", type=Path, help=f"the docs page whose '{block}' block is rewritten")
    args = parser.parse_args(argv)
    _, text = report(args.replicates)
    print(text)
    if args.page and not args.page.is_file():
        print(f"--page {args.page}: no such file", file=sys.stderr)
        return 1
    if args.page and not rewrite(args.page, block, text):
        print(f"{args.page}: no <!-- simulated: {block} --> block", file=sys.stderr)
        return 1
    return 0
