"""``synthetic``: an embedded demo corpus in IEMOCAP's layout, leave-one-session-out.

Ten speakers in five sessions (one female, one male each), four emotions, generated once
by :mod:`synthetic_speech` into ``$SERBENCH_CACHE/synthetic/<version and seed>/`` as
``SessionN/sentences/wav``, ``SessionN/dialog/EmoEvaluation`` and ``transcriptions`` files,
then read back with the same IEMOCAP reader real corpora use. The tree is built in a
temporary folder and renamed into place, so an interrupted build never leaves half a corpus.

Dimensional targets (``--task dimensional``): each utterance's EmoEvaluation line carries a
``[V, A, D]`` triple on IEMOCAP's 1-5 scale, made as an evaluator panel's mean would be: the
emotion's annotation means (``synthetic_speech.EMOTIONS``: angry low valence, high arousal and
dominance; sad low on all three; happy high valence; neutral in between) plus Gaussian rater
noise (sd 0.4) per value and take, rounded to half steps and kept in [1, 5]
(``synthetic_speech.annotate``). The audio carries the emotion through its prosody (pitch,
loudness, tempo, spectral tilt), so the learnable part of each value is its emotion's mean; the
rater noise is not in the audio, which caps the CCC a perfect model reaches: on the default
corpus (``per_class=16``, ``seed=0``) predicting each utterance's emotion mean scores CCC 0.81
arousal, 0.90 valence, 0.78 dominance. The values are read back by the IEMOCAP reader, as
(x - 1) / 4.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import soundfile as sf

from serbench.api import Param, ProtocolMeta, Spec, hookimpl
from serbench.api import iemocap_format as fmt
from serbench.api.folds import leave_one_session_out
from serbench.api.progress import steps
from serbench.api.protocol import Protocol
from serbench.api.user_config import cache_dir
from serbench_plugins.protocols.synthetic_speech import (
    SAMPLE_RATE,
    annotate,
    make_speaker,
    synthesize,
)

GENERATOR_VERSION = 1  # bump when generated audio changes: it names the cache folder
DIALOGS = ("impro01", "impro05a", "script01_1b")


def _dialog_plan(session: int, per_class: int, rng: np.random.Generator) -> Iterator[tuple[str, str, str]]:
    """(dialog name, speaker gender, raw label) for every utterance of a session, shuffled
    so that each dialog mixes emotions and both speakers."""
    takes = [(g, e) for g in "FM" for e in ("neu", "hap", "ang", "sad") for _ in range(per_class)]
    order = rng.permutation(len(takes))
    for i, index in enumerate(order):
        lead = "F" if i % 2 == 0 else "M"
        gender, emotion = takes[index]
        yield f"Ses{session:02d}{lead}_{DIALOGS[i % len(DIALOGS)]}", gender, emotion


def build_tree(root: Path, per_class: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    total = 5 * 2 * 4 * per_class  # sessions x speakers x emotions x per_class
    with steps(f"generating the synthetic corpus ({per_class} per class, seed {seed})", total) as advance:
        _build_sessions(root, per_class, rng, advance)


def _build_sessions(root: Path, per_class: int, rng: np.random.Generator, advance) -> None:
    for session in range(1, 6):
        speakers = {g: make_speaker(session, g, rng) for g in "FM"}
        evaluations: dict[str, list[str]] = {}
        transcripts: dict[str, list[str]] = {}
        clock: dict[str, float] = {}
        counters: dict[tuple[str, str], int] = {}
        for dialog, gender, emotion in _dialog_plan(session, per_class, rng):
            index = counters.get((dialog, gender), 0)
            counters[(dialog, gender)] = index + 1
            utt = f"{dialog}_{gender}{index:03d}"
            wav, words = synthesize(speakers[gender], emotion, rng)
            wav_file = root / f"Session{session}" / "sentences" / "wav" / dialog / f"{utt}.wav"
            wav_file.parent.mkdir(parents=True, exist_ok=True)
            sf.write(wav_file, wav, SAMPLE_RATE, subtype="PCM_16")
            advance(1)
            start = clock.get(dialog, 0.0) + 0.5
            end = start + wav.size / SAMPLE_RATE
            clock[dialog] = end
            v, a, d = annotate(emotion, rng)
            evaluations.setdefault(dialog, []).extend(
                [
                    f"[{start:.4f} - {end:.4f}]\t{utt}\t{emotion}\t[{v:.4f}, {a:.4f}, {d:.4f}]",
                    f"C-E1:\t{emotion};\t()",
                    f"A-E1:\tval {v:g}; act {a:g}; dom {d:g};\t()",
                    "",
                ]
            )
            transcripts.setdefault(dialog, []).append(f"{utt} [{start:08.4f}-{end:08.4f}]: {' '.join(words)}.")
        dialog_dir = root / f"Session{session}" / "dialog"
        for dialog, lines in evaluations.items():
            header = "% [START_TIME - END_TIME] TURN_NAME EMOTION [V, A, D]\n\n"
            path = dialog_dir / "EmoEvaluation" / f"{dialog}.txt"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(header + "\n".join(lines) + "\n")
            path = dialog_dir / "transcriptions" / f"{dialog}.txt"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text("\n".join(transcripts[dialog]) + "\n")


def ensure_tree(per_class: int, seed: int) -> Path:
    """The corpus folder, generated on first use."""
    root = cache_dir() / "synthetic" / f"v{GENERATOR_VERSION}-n{per_class}-seed{seed}"
    if root.is_dir():
        return root
    root.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=root.parent, prefix=f".{root.name}."))
    try:
        build_tree(tmp, per_class, seed)
        tmp.rename(root)
    except OSError:
        if not root.is_dir():  # a concurrent build that won the race is fine
            raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return root


def make_protocol(data: Path | None, per_class: int, seed: int, dev_fraction: float) -> Protocol:
    utterances = fmt.read_corpus(ensure_tree(per_class, seed), fmt.label_map())
    folds = leave_one_session_out(utterances, dev_fraction, seed)
    return Protocol("synthetic", utterances, folds, fmt.CLASSES, main_metric="ua")


@hookimpl
def register_protocols() -> list[Spec]:
    return [
        Spec(
            name="synthetic",
            factory=make_protocol,
            summary="embedded demo corpus: 10 synthetic speakers, 4 emotions, leave-one-session-out",
            params=(
                Param("per_class", int, 16, "utterances per speaker and emotion", bounds=">= 1"),
                Param("seed", int, 0, "generator seed (also seeds the dev split)", bounds=">= 0"),
                Param("dev_fraction", float, 0.2, "share of training sessions held out as dev, per label", bounds="(0, 1)"),
            ),
            version=str(GENERATOR_VERSION),
            meta=ProtocolMeta(demo=True, test_split="test session"),
        )
    ]
