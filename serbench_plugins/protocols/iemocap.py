"""IEMOCAP protocols: 5-fold leave-one-session-out and 10-fold leave-one-speaker-out.

The utterance set is the standard four-class one (neu, hap + exc, ang, sad; 5,531
utterances), the same as SUPERB's and EmoBox's lists. ``merge_excited=false`` drops ``exc``
instead of merging it (4,490 utterances). Every run checks the corpus against the published
counts: a copy that differs is warned about, marked in ``result.json`` and in leaderboards
(never put beside a paper's number), and detailed by ``serbench data check``.
"""

from __future__ import annotations

from pathlib import Path

from serbench.api import Param, ProtocolMeta, Spec, hookimpl
from serbench.api import iemocap_format as fmt
from serbench.api.errors import SerbenchError
from serbench.api.folds import (
    DEV_MODES,
    leave_one_session_out,
    leave_one_speaker_out_paired,
)
from serbench.api.protocol import Protocol
from serbench_plugins.protocols import iemocap_raters

SPEAKERS = tuple(f"{s:02d}{g}" for s in fmt.SESSIONS for g in "FM")  # 01F, 01M, ..., 05M
# Published counts (EmoBox / SUPERB list; shared/reference/iemocap carries the real list).
COUNTS_MERGED = {
    "total": 5531,
    "label:neutral": 1708, "label:happy": 1636, "label:angry": 1103, "label:sad": 1084,
    "session:1": 1085, "session:2": 1023, "session:3": 1151, "session:4": 1031, "session:5": 1241,
    "speaker:01F": 528, "speaker:01M": 557, "speaker:02F": 481, "speaker:02M": 542, "speaker:03F": 522,
    "speaker:03M": 629, "speaker:04F": 528, "speaker:04M": 503, "speaker:05F": 590, "speaker:05M": 651,
}
COUNTS_WITHOUT_EXCITED = {"total": 4490, "label:happy": 595}
CITATION = "Busso et al., IEMOCAP, Language Resources and Evaluation 42(4), 2008, doi:10.1007/s10579-008-9076-6"


def _read(data: Path | None, merge_excited: bool, rater_labels: bool = False):
    if data is None:
        raise SerbenchError("IEMOCAP protocols need --data PATH (the IEMOCAP_full_release folder)")
    utterances = fmt.read_corpus(Path(data), fmt.label_map(merge_excited))
    if rater_labels:  # off by default: the corpus (and its digest) stays as it was read before soft labels
        utterances = iemocap_raters.attach(Path(data), utterances, fmt.label_map(merge_excited), fmt.CLASSES)
    return utterances


def _expected(merge_excited: bool) -> dict[str, int] | None:
    return dict(COUNTS_MERGED) if merge_excited else dict(COUNTS_WITHOUT_EXCITED)


def make_5fold(data: Path | None, merge_excited: bool, dev: str, dev_fraction: float, seed: int,
               rater_labels: bool = False) -> Protocol:
    utterances = _read(data, merge_excited, rater_labels)
    folds = leave_one_session_out(utterances, dev_fraction, seed, dev)
    return Protocol("iemocap_5fold", utterances, folds, fmt.CLASSES, "ua", expected=_expected(merge_excited),
                    required={"session": tuple(map(str, fmt.SESSIONS))})


def make_loso10(data: Path | None, merge_excited: bool, rater_labels: bool = False) -> Protocol:
    """Ten folds, one per test speaker (8 training speakers, 1 dev, 1 test), as Hyeon et al.
    (Interspeech 2024) evaluate. Which speaker is dev the paper does not say: the test
    speaker's session partner is serbench's choice (it keeps a whole session out of training)."""
    utterances = _read(data, merge_excited, rater_labels)
    folds = leave_one_speaker_out_paired(utterances, SPEAKERS)
    return Protocol("iemocap_loso10", utterances, folds, fmt.CLASSES, "ua", expected=_expected(merge_excited),
                    required={"speaker": SPEAKERS})


MERGE = Param("merge_excited", bool, True, "merge exc into hap (false: drop exc, 4,490 utterances)")
RATERS = Param("rater_labels", bool, False, "read the external evaluators' C-E lines as each utterance's label "
               "distribution (soft labels: -o train.targets=soft, and EMO-SUPERB's soft_macro_f1)")


@hookimpl
def register_protocols() -> list[Spec]:
    return [
        Spec(
            name="iemocap_5fold",
            factory=make_5fold,
            summary="IEMOCAP 4 classes, leave-one-session-out (fold k tests Session k), UA",
            params=(
                MERGE,
                Param("dev", str, "stratified", "dev split: stratified share of training sessions, or one training speaker", DEV_MODES),
                Param("dev_fraction", float, 0.2, "share held out as dev per label (dev=stratified)", bounds="(0, 1)"),
                Param("seed", int, 0, "seed of the dev split", bounds=">= 0"),
                RATERS,
            ),
            version="1",
            citation=CITATION,
            meta=ProtocolMeta(data_key="iemocap", test_split="test session", folds=5),
        ),
        Spec(
            name="iemocap_loso10",
            factory=make_loso10,
            summary="IEMOCAP 4 classes, leave-one-speaker-out 8/1/1 (dev = test speaker's partner), UA",
            params=(MERGE, RATERS),
            version="1",
            citation=CITATION + "; 10-fold leave-one-speaker-out as Hyeon et al. (Interspeech 2024) evaluate "
                     "(the dev speaker is serbench's choice)",
            meta=ProtocolMeta(data_key="iemocap", test_split="test speaker", folds=10),
        ),
    ]
