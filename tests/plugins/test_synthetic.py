"""The embedded corpus: an IEMOCAP-style tree read back by the real reader, and its folds."""

from collections import Counter

import pytest

from serbench.api import iemocap_format as fmt
from serbench.api.audio import load_audio
from serbench.run.registry import create
from serbench_plugins.protocols.synthetic import build_tree


@pytest.fixture(scope="module")
def small():
    return create("protocol", "synthetic", None, per_class=3)


def test_tree_has_iemocap_layout_and_side_information(small):
    utts = list(small.utterances.values())
    assert len(utts) == 10 * 4 * 3
    assert Counter(u.speaker for u in utts) == {f"{s:02d}{g}": 12 for s in range(1, 6) for g in "FM"}
    assert Counter(u.label for u in utts) == {c: 30 for c in small.classes}
    assert small.classes == ["neutral", "happy", "angry", "sad"]
    for u in utts:
        assert u.path.exists() and u.path.parent.parent.name == "wav"
        assert u.gender == u.speaker[-1] and u.session == str(int(u.speaker[:2]))
        assert set(u.attributes) == {"valence", "arousal", "dominance"}
        assert all(0.0 <= v <= 1.0 for v in u.attributes.values())
        assert u.transcript and u.transcript.endswith(".")
    # dialog names that break fixed-position speaker parsing are present
    assert any("_impro05a_" in u.id for u in utts) and any("_script01_1b_" in u.id for u in utts)


def test_audio_is_16khz_speech_like(small):
    u = next(iter(small.utterances.values()))
    wav = load_audio(u.path)
    assert wav.dtype.name == "float32" and 0.5 < wav.size / 16000 < 10
    assert wav.size / 16000 == pytest.approx(u.duration, abs=1e-3)
    assert 0.01 < abs(wav).max() < 1.0


def test_folds_leave_one_session_out_with_stratified_dev(small):
    assert [f.name for f in small.folds] == ["1", "2", "3", "4", "5"]
    for k, fold in enumerate(small.folds, start=1):
        assert {small.utterances[i].session for i in fold.test} == {str(k)}
        assert str(k) not in {small.utterances[i].session for i in fold.train + fold.dev}
        assert len(fold.train) + len(fold.dev) + len(fold.test) == len(small.utterances)
        dev_labels = Counter(small.utterances[i].label for i in fold.dev)
        assert dev_labels == {c: round(0.2 * 24) for c in small.classes}


def _tree_bytes(root):
    return {p.relative_to(root): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_generation_is_seeded(tmp_path):
    build_tree(tmp_path / "a", per_class=1, seed=0)
    build_tree(tmp_path / "b", per_class=1, seed=0)
    build_tree(tmp_path / "c", per_class=1, seed=1)
    a, b, c = (_tree_bytes(tmp_path / x) for x in "abc")
    assert sum(k.suffix == ".wav" for k in a) == 10 * 4
    evaluations = {k.stem for k in a if k.parent.name == "EmoEvaluation"}
    assert evaluations == {k.stem for k in a if k.parent.name == "transcriptions"} and evaluations
    assert a == b
    shared = [k for k in a if k in c and k.suffix == ".wav"]
    assert any(a[k] != c[k] for k in shared) or set(a) != set(c)


EVALUATION = """% [START_TIME - END_TIME] TURN_NAME EMOTION [V, A, D]

[6.2901 - 8.2357]\tSes01F_impro01_F000\tneu\t[2.5000, 2.5000, 2.5000]
C-E2:\tNeutral;\t()
A-E3:\tval 3; act 2; dom  2;\t()

[10.0100 - 11.3925]\tSes03M_impro05a_M001\tfru\t[2.0000, 3.5000, 3.5000]
[1.0 - 2.0]\tSes05M_script01_1b_F012\texc\t[4.0000, 3.0000, 3.0000]
"""


def test_reader_takes_utterance_lines_only(tmp_path):
    path = tmp_path / "Ses01F_impro01.txt"
    path.write_text(EVALUATION)
    rows = fmt.read_evaluations(path)
    assert [(r.id, r.label, r.vad) for r in rows] == [
        ("Ses01F_impro01_F000", "neu", (2.5, 2.5, 2.5)),
        ("Ses03M_impro05a_M001", "fru", (2.0, 3.5, 3.5)),
        ("Ses05M_script01_1b_F012", "exc", (4.0, 3.0, 3.0)),
    ]


@pytest.mark.parametrize(
    "utterance, speaker",
    [
        ("Ses01F_impro01_M003", ("01M", "M")),
        ("Ses03M_impro05a_F010", ("03F", "F")),
        ("Ses05M_script01_1b_F012", ("05F", "F")),
        ("Ses02F_script02_2_M044", ("02M", "M")),
    ],
)
def test_speaker_is_session_plus_last_segment_letter(utterance, speaker):
    assert fmt.speaker_of(utterance) == speaker
