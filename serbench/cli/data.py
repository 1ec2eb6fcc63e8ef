"""Commands about corpora and local state: splits, data, cache, config."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from serbench.api import user_config
from serbench.api.atomic import write_text
from serbench.api.errors import SerbenchError, did_you_mean
from serbench.run.registry import registry


def cmd_splits(args: argparse.Namespace, out: Console) -> None:
    from serbench.run.plan import load_protocol

    protocol = load_protocol(args.protocol, args.data, args.overrides)
    lines = []
    for fold in protocol.folds:
        for split, ids in (("train", fold.train), ("dev", fold.dev), ("test", fold.test)):
            for i in ids:
                u = protocol.utterances[i]
                lines.append(json.dumps({"fold": fold.name, "split": split, "utterance_id": i, "label": u.label,
                                         "speaker": u.speaker, "gender": u.gender, "session": u.session}))
    text = "\n".join(lines) + "\n"
    if args.out:
        write_text(args.out, text)
        out.print(f"wrote {len(lines)} lines for {len(protocol.folds)} folds to {args.out}")
    else:
        print(text, end="")


def cmd_data(args: argparse.Namespace, out: Console) -> int:
    from serbench.run.datacheck import check
    from serbench.run.plan import load_protocol

    protocol = load_protocol(args.protocol, args.data, args.overrides)
    report = check(protocol)
    table = Table("count", "expected", "found", "", title=f"{protocol.name}: {len(protocol.utterances)} utterances")
    for key, expected, found in report.rows:
        mark = "" if expected is None else ("ok" if expected == found else "MISMATCH")
        table.add_row(key, "-" if expected is None else str(expected), str(found), mark)
    out.print(table)
    if report.seconds:
        hours = sum(report.seconds) / 3600
        rates = ", ".join(f"{rate} Hz: {n}" for rate, n in sorted(report.sample_rates.items()))
        out.print(f"audio: {hours:.2f} h, {min(report.seconds):.3f} s to {max(report.seconds):.2f} s; {rates}"
                  + ("" if set(report.sample_rates) == {16000} else " (resampled to 16 kHz on load)"))
    for note in report.notes:
        out.print(f"note: {escape(note)}")
    for problem in report.problems:
        print(f"serbench: problem: {problem}", file=sys.stderr)
    if not report.ok:
        mismatch = any(e is not None and e != f for _, e, f in report.rows)  # else only the problems above
        print(f"serbench: error: {protocol.name}: " + ("the corpus differs from the published definition" if mismatch
              else f"{len(report.problems)} problem(s) above: a run on this corpus would be refused"), file=sys.stderr)
        return 1
    out.print("corpus matches the protocol")
    return 0


def cmd_cache(args: argparse.Namespace, out: Console) -> None:
    from serbench.run import cache

    root = user_config.cache_dir()
    if args.action == "clear":
        removed = cache.clear(root, args.upstream)
        freed = sum(e.bytes for e in removed)
        out.print(f"removed {len(removed)} cache folders ({cache.human_bytes(freed)}) from {root / 'features'}")
        return
    entries = [e for e in cache.scan(root) if args.upstream is None or e.meta.get("upstream") == args.upstream]
    if args.action == "du":
        print(f"{cache.human_bytes(sum(e.bytes for e in entries))}\t{sum(e.entries for e in entries)} entries\t{root / 'features'}")
        return
    table = Table("upstream", "fingerprint", "layers", "dtype", "entries", "size", "folder")
    for e in entries:
        layers = e.meta.get("layers", [])
        shown = ",".join(map(str, layers)) if len(layers) <= 6 else f"{len(layers)}: {layers[0]}..{layers[-1]}"
        perturbed = f" + {e.meta['perturbation']}" if e.meta.get("perturbation") else ""  # --perturb, train.augment
        extracted = f", extracted in {e.meta['precision']}" if e.meta.get("precision") else ""  # upstream.precision
        table.add_row(e.meta.get("upstream", "?"), str(e.meta.get("fingerprint", "?")) + perturbed,
                      shown, e.meta.get("dtype", "?") + extracted,
                      str(e.entries), cache.human_bytes(e.bytes), e.folder.name)
    out.print(table)


def cmd_config(args: argparse.Namespace, out: Console) -> None:
    if args.action == "set":
        known = sorted({f"data.{spec.meta.data_key}" for spec in registry().specs["protocol"].values() if spec.meta.data_key})
        if args.key not in known:
            raise SerbenchError(f"config key {args.key!r} is not a setting serbench reads{did_you_mean(args.key, known)}; "
                                f"known: {', '.join(known)}")
        location = Path(args.value).expanduser().absolute()  # a relative path would depend on where a run starts
        path = user_config.set_value(args.key, str(location))
        out.print(f"{args.key} = {location}  (saved in {path})" + ("" if location.exists() else "; it does not exist yet"))
    elif args.action == "get":
        data = user_config.load()
        if args.key not in data:
            raise SerbenchError(f"config key {args.key!r} is not set ({user_config.config_path()})")
        print(data[args.key])
    elif args.action == "unset":
        user_config.unset_value(args.key)
        out.print(f"unset {args.key}")
    else:
        out.print(f"# {user_config.config_path()}")
        for key, value in sorted(user_config.load().items()):
            print(f"{key} = {value}")
