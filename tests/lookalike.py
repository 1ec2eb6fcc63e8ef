"""Look-alike corpora with real layouts, real ids and labels, and tiny synthetic audio."""

from __future__ import annotations

import csv
import gzip
import io
import json
from collections import defaultdict
from pathlib import Path

import numpy as np
import soundfile as sf

# The real IEMOCAP utterance list (ids, raw labels, durations: 5,531 utterances, no audio),
# compacted from ../shared/reference/iemocap/emobox_iemocap.jsonl (EmoBox's split file) so that
# every checkout runs the conformance tests; test_reference_copy_equals_the_shared_original
# checks the copy wherever the original is present.
REFERENCE_COPY = Path(__file__).resolve().parent / "data" / "iemocap_reference.csv.gz"


def tiny_wav(path: Path, seed: int, seconds: float = 0.05, rate: int = 16000) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    noise = np.random.default_rng(seed).normal(0, 0.05, int(seconds * rate)).astype(np.float32)
    sf.write(path, noise, rate, subtype="PCM_16")


def reference_records() -> list[dict]:
    """The list as EmoBox's JSON lines hold it (every other field follows from id, label, duration)."""
    text = gzip.decompress(REFERENCE_COPY.read_bytes()).decode()
    records = []
    for row in csv.DictReader(io.StringIO(text)):
        uid = row["id"]
        records.append({
            "key": f"iemocap-{uid}", "dataset": "iemocap",
            "wav": f"downloads/iemocap/Session{int(uid[4])}/sentences/wav/{uid.rsplit('_', 1)[0]}/{uid}.wav",
            "type": "raw", "sample_rate": 16000, "num_frame": json.loads(row["num_frame"]), "task": "category",
            "length": json.loads(row["length"]), "emo": row["emo"], "channel": 1,
        })
    return records


def evaluation_line(start: float, uid: str, label: str, vad=(2.5, 3.0, 3.5)) -> str:
    return f"[{start:.4f} - {start + 1.5:.4f}]\t{uid}\t{label}\t[{vad[0]:.4f}, {vad[1]:.4f}, {vad[2]:.4f}]"


def write_iemocap(root: Path, utterances: list[tuple[str, str]], distractors: bool = True,
                  raters: dict[str, list[str]] | None = None, vad=None) -> None:
    """An IEMOCAP_full_release tree for ``(utterance id, raw label)`` pairs; with
    ``distractors``, per dialog also a frustrated and an unlabelled (xxx) utterance, annotator
    lines, and files that must be ignored (Categorical/, Attribute/, ``._`` files).
    ``raters``: an utterance's categorical evaluator lines as the corpus writes them
    (``"C-E1:\tAnger; Frustration;\t()"``), in place of the default ``C-E2: Neutral`` line. ``vad``
    (utterance id -> (valence, activation, dominance) on 1-5) writes each utterance's own
    ``[V, A, D]`` triple; by default every utterance has (2.5, 3.0, 3.5)."""
    by_dialog: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for uid, label in utterances:
        by_dialog[uid.rsplit("_", 1)[0]].append((uid, label))
    for n, (dialog, items) in enumerate(sorted(by_dialog.items())):
        session = int(dialog[3:5])
        if distractors:
            items = items + [(f"{dialog}_F900", "fru"), (f"{dialog}_M901", "xxx")]
        base = root / f"Session{session}"
        lines = ["% [START_TIME - END_TIME] TURN_NAME EMOTION [V, A, D]", ""]
        for k, (uid, label) in enumerate(items):
            categorical = (raters or {}).get(uid, ["C-E2:\tNeutral;\t()"])
            triple = (vad(uid) if vad is not None else None) or (2.5, 3.0, 3.5)  # distractors: the default
            lines += [evaluation_line(2.0 * k, uid, label, triple), *categorical, "A-E3:\tval 3; act 2; dom  2;\t()", ""]
            tiny_wav(base / "sentences" / "wav" / dialog / f"{uid}.wav", seed=n * 1000 + k)
        evaluation = base / "dialog" / "EmoEvaluation"
        evaluation.mkdir(parents=True, exist_ok=True)
        (evaluation / f"{dialog}.txt").write_text("\n".join(lines) + "\n")
        transcripts = base / "dialog" / "transcriptions"
        transcripts.mkdir(parents=True, exist_ok=True)
        (transcripts / f"{dialog}.txt").write_text(
            "\n".join(f"{uid} [{2.0 * k:08.4f}-{2.0 * k + 1.5:08.4f}]: words of {uid}." for k, (uid, _) in enumerate(items)) + "\n")
        if distractors:
            bogus = evaluation_line(0.0, f"{dialog}_F999", "neu")
            for sub in ("Categorical", "Attribute", "Self-evaluation"):
                (evaluation / sub).mkdir(exist_ok=True)
                (evaluation / sub / f"{dialog}_e1_cat.txt").write_text(bogus + "\n")
            (evaluation / f"._{dialog}.txt").write_bytes(b"\x00\x05\x16\x07 mac resource fork " + bogus.encode())
    for session in range(1, 6):  # a session without utterances still has its folder
        (root / f"Session{session}" / "dialog" / "EmoEvaluation").mkdir(parents=True, exist_ok=True)


def write_iemocap_from_reference(root: Path) -> list[dict]:
    records = reference_records()
    write_iemocap(root, [(r["key"].removeprefix("iemocap-"), r["emo"]) for r in records])
    return records


def write_emobox(folder: Path, records: list[dict], with_valid: bool) -> None:
    """EmoBox split files for IEMOCAP: fold k tests session k."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "iemocap.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    (folder / "label_map.json").write_text(json.dumps({"neu": "Neutral", "hap": "Happy", "ang": "Angry", "sad": "Sad", "exc": "Happy"}))
    for k in range(1, 6):
        fold = folder / f"fold_{k}"
        fold.mkdir(exist_ok=True)
        test = [r for r in records if f"Session{k}/" in r["wav"]]
        train = [r for r in records if f"Session{k}/" not in r["wav"]]
        parts = {"train": train, "test": test}
        if with_valid:
            parts = {"train": train[len(train) // 5:], "valid": train[: len(train) // 5], "test": test}
        for split, rows in parts.items():
            (fold / f"iemocap_{split}_fold_{k}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))


MSP_HEADER = ["FileName", "EmoClass", "EmoAct", "EmoVal", "EmoDom", "SpkrID", "Gender", "Split_Set"]


def write_msp_podcast(root: Path, rows: list[list[str]] | None = None) -> list[list[str]]:
    """An MSP-Podcast folder; by default every class, X and O rows, Unknown speakers and all
    Split_Set values; speakers disjoint between partitions, as in the corpus."""
    if rows is None:
        rows, n = [], 0
        for part, split in enumerate(("Train", "Development", "Test1", "Test2")):
            for code in "ASHUFDCNXO":
                for j in range(3):
                    speaker = "Unknown" if j == 2 else str(100 * (part + 1) + (n % 7))
                    gender = "Unknown" if speaker == "Unknown" else ("Female" if n % 2 else "Male")
                    rows.append([f"MSP-PODCAST_{n:04d}_{j:04d}.wav", code, "4.2", "3.0", "5.5", speaker, gender, split])
                    n += 1
    (root / "Labels").mkdir(parents=True, exist_ok=True)
    with (root / "Labels" / "labels_consensus.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(MSP_HEADER)
        writer.writerows(rows)
    (root / "Transcripts").mkdir(exist_ok=True)
    for k, row in enumerate(rows):
        tiny_wav(root / "Audios" / row[0], seed=k)
        if k % 2 == 0:
            (root / "Transcripts" / f"{Path(row[0]).stem}.txt").write_text(f"transcript {k}\n")
    return rows


def write_msp_detailed(root: Path, ratings: dict[str, list[str]], layout: str = "field") -> None:
    """``Labels/labels_detailed.csv``: one row per (file, rater) with the rater's primary emotion,
    as ``FileName,EmoClass_Major`` (``layout="column"``) or as ``FileName`` plus one quoted
    ``WORKER; Primary; secondary; A:x; V:y; D:z`` field (``layout="field"``)."""
    (root / "Labels").mkdir(parents=True, exist_ok=True)
    with (root / "Labels" / "labels_detailed.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["FileName", "EmoClass_Major"] if layout == "column" else ["FileName", "Labels"])
        for name, primaries in ratings.items():
            for k, primary in enumerate(primaries):
                field = primary if layout == "column" else f"WORKER{k:05d}; {primary}; Concerned; A:4.0; V:3.0; D:5.0"
                writer.writerow([name, field])
