"""``audformat``: a local audformat database (``--data`` = the folder holding its ``db.yaml``).

audformat is audEERING's format for annotated audio (emodb, crema-d and many more are published
in it through audb), read here with the ``audformat`` library (``pip install 'serbench[audformat]'``).

- **Labels**: the column ``column`` (default ``emotion``) of the tables ``tables``, or of every
  filewise or segmented table that has such a column when ``tables`` is empty (a file labelled
  in two of them is refused, naming both: choose the tables). With ``raters``
  (rater columns, e.g. ``["r1", "r2", "r3"]``) the label is instead the majority of those
  columns' non-empty votes; a tie is refused naming the file, unless ``rater_ties=drop``
  (then such utterances are left out and counted in the result's ``annotations.protocol``).
  An empty label leaves its utterance out, counted the same way.
- **Speakers and gender**: the schemes (or columns) ``speaker`` and ``gender``, looked up in
  any table with audformat's own ``Database.get`` (so a speaker scheme whose labels carry a
  gender, or a misc table of speakers with a gender column, both work); absent: each utterance
  is its own pseudo-speaker and the result says speakers are unknown.
- **Folds**: with ``folds=splits`` (or ``auto`` when the label tables carry split ids), one
  fold: train = split ``train_split``, test = split ``test_split``, dev = split ``dev_split``,
  or, when that is empty and the database has no split ``dev``, whole speakers (a
  ``dev_fraction`` of train; stratified utterances when speakers are unknown). With
  ``folds=loso`` (``auto`` without split ids): leave one speaker out, dev as above from the
  other speakers. Utterances in no chosen split are left out of the run.
- **Audio**: the database's files relative to its folder (a file that would resolve outside it
  is refused), whole files or the segments of a segmented table (an open end runs to the end
  of the file).

Classes: ``classes``, else the emotion scheme's labels that occur, in the scheme's order.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from serbench.api import Param, ProtocolMeta, Spec, hookimpl
from serbench.api.errors import SerbenchError
from serbench.api.folds import speaker_disjoint_holdout, stratified_holdout
from serbench.api.protocol import SAFE_NAME, SPEAKERS_UNKNOWN, Fold, Protocol, Utterance, gender

log = logging.getLogger("serbench")
INSTALL_HINT = "the audformat protocol needs the audformat package: pip install 'serbench[audformat]'"
FOLDS = ("auto", "splits", "loso")


@dataclass(frozen=True)
class AudformatOptions:
    """The protocol's parameters (see the module docstring)."""

    tables: tuple[str, ...]
    column: str
    raters: tuple[str, ...]
    rater_ties: str
    speaker: str
    gender: str
    folds: str
    train_split: str
    dev_split: str
    test_split: str
    dev_fraction: float
    seed: int
    classes: tuple[str, ...]


def _load(data: Path):
    try:
        import audformat
    except ImportError:
        raise SerbenchError(INSTALL_HINT) from None
    if not (data / "db.yaml").is_file():
        raise SerbenchError(f"{data / 'db.yaml'}: missing (--data is the folder of an audformat database)")
    try:
        return audformat.Database.load(str(data), load_data=True)
    except Exception as exc:  # audformat raises many kinds on a damaged header or table
        raise SerbenchError(f"{data}: not a readable audformat database ({type(exc).__name__}: {exc})") from None


def _label_tables(db, options: AudformatOptions) -> list[str]:
    tables = list(db.tables)
    if options.tables:
        absent = [t for t in options.tables if t not in tables]
        if absent:
            raise SerbenchError(f"{db.root}: no table {absent[0]!r} (tables: {', '.join(tables)})")
        chosen = list(options.tables)
    else:
        wanted = options.raters or (options.column,)
        chosen = [t for t in tables if all(c in db[t].columns for c in wanted)]
        if not chosen:
            raise SerbenchError(f"{db.root}: no table has column(s) {', '.join(wanted)} (tables: {', '.join(tables)}); "
                                "set -o protocol.tables=[...] and protocol.column=... (or protocol.raters=[...])")
    for t in chosen:
        for c in options.raters or (options.column,):
            if c not in db[t].columns:
                raters = [name for name, col in db[t].columns.items() if col.rater_id]
                raise SerbenchError(f"{db.root}: table {t!r} has no column {c!r} (columns: {', '.join(db[t].columns)}"
                                    f"{'; rater columns: ' + ', '.join(raters) if raters else ''})")
    return chosen


def _vote(row, raters: tuple[str, ...]) -> tuple[str | None, bool]:
    """(majority label, tied): empty votes do not count; no vote at all gives (None, False)."""
    votes = Counter(str(row[c]) for c in raters if not _missing(row[c]))
    if not votes:
        return None, False
    ranked = votes.most_common()
    if len(ranked) > 1 and ranked[0][1] == ranked[1][1]:
        return None, True
    return ranked[0][0], False


def _missing(value) -> bool:
    try:
        return value is None or bool(value != value)  # NaN, NaT, pandas.NA
    except (TypeError, ValueError):
        return False


def _side_info(db, scheme: str) -> dict[str, str]:
    """File -> value of ``scheme`` from any table (audformat maps a speaker to its gender)."""
    if not scheme:
        return {}
    try:
        frame = db.get(scheme)
    except Exception as exc:
        raise SerbenchError(f"{db.root}: reading {scheme!r} failed ({type(exc).__name__}: {exc})") from None
    if frame.empty or scheme not in frame.columns:
        return {}
    series = frame[scheme]
    files = series.index.get_level_values("file")
    return {str(f): str(v) for f, v in zip(files, series) if not _missing(v)}


def _audio(db, file: str, table: str) -> Path:
    root = Path(db.root).resolve()
    path = (root / file).resolve()
    if not path.is_relative_to(root):
        raise SerbenchError(f"{db.root}: table {table!r}: file {file!r} lies outside the database folder")
    if not path.is_file():
        raise SerbenchError(f"{path}: audio file missing (listed in table {table!r} of {db.root})")
    return path


def _segment(start, end, path: Path) -> dict:
    if start is None:
        return {}
    begin = start.total_seconds()
    if _missing(end):
        import soundfile as sf

        stop = sf.info(str(path)).duration
    else:
        stop = end.total_seconds()
    return {"start": begin, "end": stop}


def read_utterances(db, options: AudformatOptions) -> tuple[list[Utterance], dict[str, str | None], Counter]:
    """Every labelled utterance, its split id (None: the table has none), and the counts of
    those left out (empty label, rater tie) and of those without a speaker (``no speaker``)."""
    speakers, genders = _side_info(db, options.speaker), _side_info(db, options.gender)
    utterances, splits, left_out, seen = [], {}, Counter(), {}
    for t in _label_tables(db, options):
        table = db[t]
        frame = table.get()
        segmented = table.is_segmented
        for index, row in frame.iterrows():
            file, start, end = (index if segmented else (index, None, None))
            where = f"{db.root} table {t!r}, file {file!r}"
            if options.raters:
                label, tied = _vote(row, options.raters)
                if tied and options.rater_ties == "refuse":
                    votes = ", ".join(f"{c}={row[c]}" for c in options.raters)
                    raise SerbenchError(f"{where}: raters tie ({votes}); set -o protocol.rater_ties=drop to leave such "
                                        "utterances out (counted)")
                if tied:
                    left_out["rater tie"] += 1
                    continue
            else:
                label = None if _missing(row[options.column]) else str(row[options.column])
            if label is None:
                left_out["no label"] += 1
                continue
            path = _audio(db, str(file), t)
            segment = _segment(start, end, path)
            uid = str(file) if not segment else f"{file}@{segment['start']:.3f}-{segment['end']:.3f}"
            if uid in seen:
                raise SerbenchError(f"{where}: utterance {uid!r} is labelled in table {seen[uid]!r} too; choose "
                                    "the label tables with -o protocol.tables=[...]")
            seen[uid] = t
            speaker = speakers.get(str(file))
            left_out["no speaker"] += speaker is None
            utterances.append(Utterance(id=uid, path=path, label=label,
                                        speaker=speaker if speaker is not None else f"utt-{uid}",
                                        gender=gender(genders.get(str(file)), where), **segment, origin=where))
            splits[uid] = table.split_id
    if not utterances:
        raise SerbenchError(f"{db.root}: no labelled utterance in {', '.join(_label_tables(db, options))}")
    return utterances, splits, left_out


def _dev(rest: list[Utterance], known: bool, fraction: float, seed: int) -> set[str]:
    return (speaker_disjoint_holdout if known else stratified_holdout)(rest, fraction, seed)


def split_folds(db, utterances: list[Utterance], splits: dict, options: AudformatOptions, known: bool) -> list[Fold]:
    present = sorted(db.splits)
    dev_split = options.dev_split or ("dev" if "dev" in db.splits else "")
    for role, split in (("train_split", options.train_split), ("test_split", options.test_split),
                        ("dev_split", dev_split)):
        if split and split not in db.splits:
            raise SerbenchError(f"{db.root}: no split {split!r} for protocol.{role} (splits: {', '.join(present) or 'none'})")
    part = {s: [u for u in utterances if splits[u.id] == s] for s in (options.train_split, options.test_split, dev_split)}
    train, test = part[options.train_split], part[options.test_split]
    if dev_split:
        dev = [u.id for u in part[dev_split]]
    else:
        held = _dev(train, known, options.dev_fraction, options.seed)
        log.info(f"audformat {db.name}: no dev split; dev = {len(held)} utterances of {options.train_split!r} "
                 f"({'whole speakers' if known else 'stratified'})")
        dev = [u.id for u in train if u.id in held]
        train = [u for u in train if u.id not in held]
    return [Fold(options.test_split if SAFE_NAME.fullmatch(options.test_split) else "1",
                 tuple(u.id for u in train), tuple(dev), tuple(u.id for u in test))]


def loso_folds(utterances: list[Utterance], options: AudformatOptions) -> list[Fold]:
    """One fold per speaker (sorted): test = that speaker; dev = whole other speakers."""
    speakers = sorted({u.speaker for u in utterances})
    folds = []
    for k, speaker in enumerate(speakers, start=1):
        rest = [u for u in utterances if u.speaker != speaker]
        held = speaker_disjoint_holdout(rest, options.dev_fraction, options.seed + k)
        folds.append(Fold(speaker if SAFE_NAME.fullmatch(speaker) else f"speaker{k}",
                          tuple(u.id for u in rest if u.id not in held), tuple(u.id for u in rest if u.id in held),
                          tuple(u.id for u in utterances if u.speaker == speaker)))
    return folds


def _classes(db, options: AudformatOptions, labels: set[str], tables: list[str]) -> list[str]:
    if options.classes:
        return list(options.classes)
    column = options.raters[0] if options.raters else options.column
    scheme_id = db[tables[0]].columns[column].scheme_id
    scheme = db.schemes.get(scheme_id) if scheme_id else None
    declared = list(scheme.labels) if scheme is not None and isinstance(scheme.labels, (list, dict)) else []
    ordered = [str(c) for c in declared if str(c) in labels]
    return ordered + sorted(labels - set(ordered))


def make_protocol(data: Path | None, **params) -> Protocol:
    if data is None:
        raise SerbenchError("audformat needs --data FOLDER (an audformat database: the folder of its db.yaml)")
    options = AudformatOptions(**params)
    db = _load(Path(data))
    utterances, splits, left_out = read_utterances(db, options)
    known = left_out.pop("no speaker", 0) == 0  # a pseudo-speaker per utterance for any gap: unknown
    has_splits = any(s is not None for s in splits.values())
    mode = options.folds if options.folds != "auto" else ("splits" if has_splits else "loso")
    if mode == "loso":
        if not known:
            raise SerbenchError(f"{data}: leave-one-speaker-out folds need a speaker for every utterance (scheme "
                                f"{options.speaker!r}); the database has {'none' if not options.speaker else 'gaps'}")
        folds = loso_folds(utterances, options)
    else:
        folds = split_folds(db, utterances, splits, options, known)
    used = {i for fold in folds for i in fold.train + fold.dev + fold.test}
    utterances = [u for u in utterances if u.id in used]  # utterances in no chosen split are not extracted
    tables = _label_tables(db, options)
    protocol = Protocol(f"audformat:{db.name}", utterances, folds, _classes(db, options, {u.label for u in utterances},
                        tables), main_metric="ua",
                        speaker_source=f"audformat scheme {options.speaker!r}" if known else SPEAKERS_UNKNOWN)
    if left_out:
        protocol.notes = {"left_out": dict(sorted(left_out.items()))}
    return protocol


make_protocol.__doc__ = __doc__  # what serbench list protocols NAME shows


@hookimpl
def register_protocols() -> list[Spec]:
    return [
        Spec(
            name="audformat",
            factory=make_protocol,
            summary="a local audformat database (tables, splits, speaker/gender schemes, rater columns); "
                    "needs pip install 'serbench[audformat]'",
            params=(
                Param("tables", tuple, (), "tables holding the emotion (default: every table with the column)",
                      item=str),
                Param("column", str, "emotion", "column holding the emotion label"),
                Param("raters", tuple, (), "rater columns: the label is their majority vote (instead of column)",
                      item=str),
                Param("rater_ties", str, "refuse", "a tie between raters: refuse, or drop (counted)",
                      ("refuse", "drop")),
                Param("speaker", str, "speaker", "scheme or column naming the speaker (empty: none)"),
                Param("gender", str, "gender", "scheme or column naming the gender (empty: none)"),
                Param("folds", str, "auto", "splits, loso (leave one speaker out), or auto (splits when the "
                      "label tables have split ids)", FOLDS),
                Param("train_split", str, "train", "split id of the training set"),
                Param("dev_split", str, "", "split id of the dev set (default: 'dev' if present, else carved "
                      "from train)"),
                Param("test_split", str, "test", "split id of the test set"),
                Param("dev_fraction", float, 0.2, "dev share carved from train (whole speakers)", bounds="(0, 1)"),
                Param("seed", int, 0, "seed of that dev split", bounds=">= 0"),
                Param("classes", tuple, (), "class order (default: the scheme's labels that occur)", item=str),
            ),
            version="1",
            citation="audformat, audEERING: https://audeering.github.io/audformat/",
            meta=ProtocolMeta(data_key="audformat"),
        )
    ]

