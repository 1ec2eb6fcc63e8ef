"""The ``serbench`` command: its parser and the dispatch to each command group's module (a thin
layer over the Python API)."""

from __future__ import annotations

import argparse
import os
import sys
import traceback
import warnings
from collections.abc import Sequence

from rich.console import Console

from serbench.api import recipes
from serbench.api.errors import SerbenchError
from serbench.api.specs import KINDS
from serbench.cli.data import cmd_cache, cmd_config, cmd_data, cmd_splits
from serbench.cli.plugins import cmd_check_plugin, cmd_list, cmd_plugins
from serbench.cli.predicting import cmd_predict
from serbench.cli.results import cmd_compare, cmd_fuse, cmd_leaderboard, cmd_plot, cmd_score
from serbench.cli.running import cmd_bench, cmd_finish, cmd_job, cmd_run, cmd_status
from serbench.report import leaderboard

EPILOG = "Docs: README.md and docs/. Bad input exits with status 2 and one line naming what is wrong."


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage mistake is one line, like every other user error."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise SerbenchError(f"{self.prog}: {message} (see {self.prog} --help)")


def _seeds(text: str) -> list[int]:
    try:
        return [int(s) for s in text.split(",")] if text.strip() else []
    except ValueError:
        raise SerbenchError(f"--seeds {text!r}: expected comma-separated integers, e.g. 0,1,2") from None


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="serbench", description="Benchmark speech emotion recognition.", epilog=EPILOG)
    parser.add_argument("--debug", action="store_true",
                        help="show the traceback of an error (also accepted after the command; SERBENCH_DEBUG=1)")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    run = sub.add_parser("run", help="run a downstream on an upstream under a protocol")
    run.add_argument("--upstream", required=True, help="encoder, e.g. wavlm_large, fbank")
    run.add_argument("--downstream", required=True, help="method, e.g. superb, sap_gap")
    run.add_argument("--pooling", help="pooling (default: the downstream's own)")
    run.add_argument("--loss", help="loss (default: the downstream's, else the protocol's)")
    run.add_argument("--protocol", default="iemocap_5fold", help="evaluation protocol (default: %(default)s)")
    run.add_argument("--recipe", choices=recipes.CHOICES,
                     help="paper: the method's published training recipe (default for a method that has one); "
                          "shared: the harness's common frozen-encoder recipe. -o always wins")
    run.add_argument("--data", help="corpus location (default: saved with 'serbench config set data.KEY')")
    run.add_argument("--task", choices=("categorical", "dimensional"), default="categorical",
                     help="categorical: classes, UA/WA/macro-F1; dimensional: regress the protocol's arousal, valence, "
                          "dominance, CCC/Pearson r/MAE (default: %(default)s)")
    run.add_argument("--seeds", type=_seeds, default=[0], help="comma-separated seeds (default: 0)")
    run.add_argument("--device", default="auto", help="auto, cpu or cuda[:N] (default: auto)")
    run.add_argument("--prepare", action="store_true",
                     help="check everything and create the run directory; print its units (for serbench job) and compute nothing")
    run.add_argument("--executor", default="local", help="where the jobs run (serbench list executors; -o executor.KEY=VALUE)")
    run.add_argument("--out", default="runs", help="where run directories go (default: runs/)")
    run.add_argument("-o", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                     help="override a parameter: upstream.*, downstream.*, pooling.*, loss.*, protocol.*, train.*, report.*")
    run.add_argument("--quiet", action="store_true", help="print only the final table")
    run.add_argument("--perturb", action="append", default=[], metavar="NAME[:KEY=VALUE,...]",
                     help="also score each job's model on this perturbed copy of the test set (repeatable; serbench "
                          "list perturbations; -o robustness.max_drop=, robustness.min_unchanged=)")

    lst = sub.add_parser("list", help="list plugins of one kind, or one plugin's parameters")
    lst.add_argument("kind", nargs="?", help=f"one of {', '.join(k + 's' for k in KINDS)}")
    lst.add_argument("name", nargs="?", help="a plugin name: show its parameters")

    sub.add_parser("plugins", help="installed plugins as JSON, with load errors")

    check = sub.add_parser("check-plugin", help="run one plugin through the conformance checks on small random inputs")
    check.add_argument("kind", help="upstream, downstream, pooling, loss, protocol, executor or perturbation")
    check.add_argument("name")
    check.add_argument("-o", dest="overrides", action="append", default=[], metavar="KIND.KEY=VALUE",
                       help="a parameter of the plugin")
    check.add_argument("--data", help="a protocol's corpus")

    splits = sub.add_parser("splits", help="every fold's train / dev / test membership as JSON lines")
    splits.add_argument("protocol")
    splits.add_argument("--data", help="corpus location (default: the saved one)")
    splits.add_argument("--out", help="write to this file instead of stdout")
    splits.add_argument("-o", dest="overrides", action="append", default=[], metavar="protocol.KEY=VALUE")

    data = sub.add_parser("data", help="corpus tools")
    data_sub = data.add_subparsers(dest="action", required=True, parser_class=_Parser)
    check = data_sub.add_parser("check", help="validate a corpus copy against the protocol's published counts")
    check.add_argument("protocol")
    check.add_argument("--data", help="corpus location (default: the saved one)")
    check.add_argument("-o", dest="overrides", action="append", default=[], metavar="protocol.KEY=VALUE")

    board = sub.add_parser("leaderboard", help="markdown table from result files or run directories")
    board.add_argument("results", nargs="*", metavar="RESULT", help="result.json files or run directories")
    board.add_argument("--reported", action="store_true", help="the papers' reported numbers from the plugins' metadata; with results: each result beside the reported rows of the same variant, protocol and test split")
    board.add_argument("-o", "--output", help="write the table to this file instead of stdout")
    board.add_argument("--ci", default="t", choices=leaderboard.CI_KINDS, help="interval shown (default: t)")
    board.add_argument("--latex", metavar="FILE", help="also write the table as LaTeX (booktabs)")
    board.add_argument("--csv", metavar="FILE", help="also write the table as CSV (means and both intervals, in percent)")
    board.add_argument("--html", metavar="DIR", help="also write a static site (index, one page per run, figures) into DIR")

    fuse = sub.add_parser("fuse", help="late fusion of runs, per-class weights fitted on dev (COBYLA); dimensional runs: per-dimension weights on dev CCC")
    fuse.add_argument("runs", nargs="+", metavar="RUN_DIR")
    fuse.add_argument("--out", required=True, help="the fused run directory to write")

    job = sub.add_parser("job", help="run one (fold, seed) job of an existing run directory, or every job it can claim (for any scheduler)")
    job.add_argument("run_dir", metavar="RUN_DIR")
    job.add_argument("--fold", help="fold name, as in serbench status (with --seed; neither: every job it can claim)")
    job.add_argument("--seed", type=int)
    job.add_argument("--shard", metavar="I/N", help="extract shard I of N (1-based) of the run's frozen features into the cache")
    job.add_argument("--device", default="auto", help="auto, cpu or cuda[:N] (not part of the run's identity)")
    job.add_argument("--quiet", action="store_true", help="no progress bars")
    compare = sub.add_parser("compare", help="paired significance between runs scored on the same test utterances")
    compare.add_argument("runs", nargs="*", metavar="RUN_DIR", help="the runs (with --baseline, the others)")
    compare.add_argument("--baseline", metavar="RUN_DIR", help="compare each run with this one (default: every pair); "
                                                              "it need not be repeated among RUN_DIR")
    compare.add_argument("--resamples", type=int, default=10_000, help="random swap sets when 2^speakers is too many")
    compare.add_argument("--json", metavar="FILE", help="where to write the comparison (default: "
                                                       "compare-<hash of the runs>.json in the first run's parent folder, e.g. runs/)")
    plot = sub.add_parser("plot", help="figures of a finished run into RUN_DIR/figures (pip install 'serbench[plot]')")
    plot.add_argument("run_dir", metavar="RUN_DIR")
    plot.add_argument("--format", default="svg,png", help="comma-separated: svg, png (300 dpi), pdf (default: svg,png)")
    finish = sub.add_parser("finish", help="summarise a run whose jobs are all done: result.json, predictions.csv")
    finish.add_argument("run_dir", metavar="RUN_DIR")
    scoring = sub.add_parser("score", help="a run's metrics and intervals for a predictions CSV made anywhere "
                                           "(fold, seed, utterance_id, speaker, label, prediction)")
    scoring.add_argument("files", nargs="+", metavar="PREDICTIONS.csv", help="each scored on its own")
    scoring.add_argument("--classes", help="comma-separated class order (default: a run's, else the sorted labels "
                                           "and predictions); also names a class never predicted")
    scoring.add_argument("--json", metavar="FILE", help="also write every file's scores as a JSON list, in order")
    scoring.add_argument("--clean", metavar="PREDICTIONS.csv", help="the files hold perturbed predictions (a condition "
                         "column, e.g. a run's predictions_perturbed.csv): compare each condition with these clean ones")
    scoring.add_argument("--fairness-threshold", type=float, metavar="X",
                         help="fairness flag: largest |UA of one sex - UA of all| (default: the run's, else 0.075, "
                              "audEERING's); needs a gender column")

    bench = sub.add_parser("bench", help="run a benchmark suite (benchmarks/NAME.toml) and write its leaderboard")
    bench.add_argument("suite", metavar="SUITE.toml")
    bench.add_argument("--out", default="runs", help="where the runs go (default: runs)")
    bench.add_argument("--executor", default="local", help="where the jobs run (serbench list executors)")
    bench.add_argument("-o", dest="overrides", action="append", default=[], metavar="executor.KEY=VALUE",
                       help="executor options, e.g. -o executor.workers=2")
    bench.add_argument("--dry-run", action="store_true", help="list the cells and their jobs; run nothing")
    bench.add_argument("--leaderboard", help="where the table goes (default: OUT/leaderboards/NAME.md, beside the runs)")
    bench.add_argument("--html", metavar="DIR", help="also write the suite's static site into DIR (see leaderboard --html)")

    pred = sub.add_parser("predict", help="class probabilities of new audio from a finished run's saved models")
    pred.add_argument("run_dir", metavar="RUN_DIR")
    pred.add_argument("audio", nargs="+", metavar="AUDIO", help="audio files or folders (searched for .wav, .flac, ...)")
    pred.add_argument("--fold", help="only this fold's models (default: average every saved model)")
    pred.add_argument("--seed", type=int, help="only this seed's models")
    pred.add_argument("--max-seconds", type=float, default=30.0,
                      help="split longer recordings at pauses found by webrtcvad (0: never; default: 30)")
    pred.add_argument("--device", default="cpu", help="where features are extracted: cpu or cuda[:N] (default: cpu)")
    pred.add_argument("--out", metavar="DIR", help="where files.csv and segments.csv go (default: RUN_DIR/predict)")

    status = sub.add_parser("status", help="a run's jobs: done, running (by whom), stale, failed (why), pending")
    status.add_argument("run_dir", metavar="RUN_DIR")

    cache = sub.add_parser("cache", help="the feature cache under $SERBENCH_CACHE")
    cache.add_argument("action", choices=("ls", "du", "clear"), help="list folders, total size, or delete")
    cache.add_argument("--upstream", help="only this upstream's features")

    cfg = sub.add_parser("config", help="saved settings, e.g. corpus locations")
    cfg_sub = cfg.add_subparsers(dest="action", required=True, parser_class=_Parser)
    setter = cfg_sub.add_parser("set", help="save KEY=VALUE, e.g. data.iemocap /data/IEMOCAP_full_release")
    setter.add_argument("key")
    setter.add_argument("value")
    getter = cfg_sub.add_parser("get", help="print one setting")
    getter.add_argument("key")
    unsetter = cfg_sub.add_parser("unset", help="forget one setting")
    unsetter.add_argument("key")
    cfg_sub.add_parser("list", help="print every setting and the file they live in")
    return parser


COMMANDS = {"run": cmd_run, "check-plugin": cmd_check_plugin, "list": cmd_list, "plugins": cmd_plugins, "splits": cmd_splits,
            "data": cmd_data, "fuse": cmd_fuse, "leaderboard": cmd_leaderboard, "cache": cmd_cache, "config": cmd_config,
            "status": cmd_status, "job": cmd_job, "finish": cmd_finish, "compare": cmd_compare, "plot": cmd_plot,
            "bench": cmd_bench, "score": cmd_score, "predict": cmd_predict}


def _one_line_warning(message, category, filename, lineno, line=None) -> str:
    return f"serbench: warning: {message}\n"


def main(argv: Sequence[str] | None = None) -> int:
    warnings.formatwarning = _one_line_warning
    out = Console()
    if not out.is_terminal:  # files and pipes get full-width tables, not 80 columns
        out = Console(width=160)
    if argv is None:  # the command itself (not a caller's in-process use): Ctrl-C acts within seconds
        from serbench.run.interrupt import stop_within_seconds

        stop_within_seconds()
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv or os.environ.get("SERBENCH_DEBUG", "") not in ("", "0")
    argv = [a for a in argv if a != "--debug"]
    try:
        args = build_parser().parse_args(argv)
        return COMMANDS[args.command](args, out) or 0
    except SerbenchError as exc:
        if debug:
            traceback.print_exc()
        print(f"serbench: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # the machine refused (permissions, a file where a folder goes, a full disk)
        if debug:
            traceback.print_exc()
        where = f": {exc.filename}" if exc.filename else ""
        print(f"serbench: error: {exc.strerror or exc}{where} (--debug shows where)", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("serbench: interrupted; finished jobs are kept, rerun the same command to resume", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
