"""``serbench predict``: class probabilities of new audio from a finished run's saved models."""

from __future__ import annotations

import argparse
from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from serbench.report.rundir import RunDir


def cmd_predict(args: argparse.Namespace, out: Console) -> None:
    """Print each file's probabilities and write ``files.csv`` and ``segments.csv``."""
    from serbench.run.predict import predict, write  # torch: loaded by this command only

    result = predict(args.run_dir, args.audio, args.fold, args.seed, args.max_seconds, args.device)
    for note in result.notes:
        out.print(escape(note))
    table = Table("file", "segments", *result.classes, "prediction",
                  title=f"{len(result.models)} saved model(s) of {Path(args.run_dir).name}, probabilities averaged")
    for row in result.files.itertuples(index=False):
        values = row._asdict()
        table.add_row(escape(values["file"]), str(values["segments"]),
                      *[f"{values[f'prob_{c}']:.4f}" for c in result.classes], values["prediction"])
    out.print(table)
    folder = Path(args.out) if args.out else RunDir(args.run_dir).predict
    files, segs = write(result, folder)
    out.print(f"written: {files} (per file), {segs} (per segment)")
