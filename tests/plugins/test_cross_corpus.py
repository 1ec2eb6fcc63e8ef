"""cross_corpus: train on one CSV corpus, test on another, labels mapped by a declared table."""

from __future__ import annotations

import csv
import hashlib
import json
from collections import Counter

import numpy as np
import pytest
import soundfile as sf

from serbench.api.errors import SerbenchError
from serbench.report.ranking import heading
from serbench.report.results import comparability
from serbench.run.plan import load_protocol
from serbench_plugins.protocols.emobox_track2 import candidates

from conftest import run_cli

RATE = 16000
TONES = {"high": 1800.0, "low": 300.0, "mid": 900.0}  # one tone per emotion: learnable, and the same in both corpora


def tone_wav(path, kind: str, seed: int) -> None:
    """Half a second of a tone plus a little noise: the class is audible in any corpus."""
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    t = np.arange(int(0.5 * RATE)) / RATE
    wave = 0.3 * np.sin(2 * np.pi * TONES[kind] * (1 + 0.02 * rng.standard_normal()) * t)
    sf.write(path, (wave + rng.normal(0, 0.02, t.size)).astype(np.float32), RATE, subtype="PCM_16")


def write_corpus(folder, labels: dict[str, str], speakers: int, per_label: int, seed: int) -> list[dict]:
    """A CSV corpus with a ``fold`` column (one fold per speaker); ``labels`` maps its label
    spelling to the tone heard."""
    rows = []
    for s in range(speakers):
        for label, kind in labels.items():
            for k in range(per_label):
                name = f"wav/s{s}_{label}_{k}.wav"
                tone_wav(folder / name, kind, seed + len(rows))
                rows.append({"path": name, "label": label, "speaker": f"spk{s}", "fold": str(s + 1)})
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / "corpus.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["path", "label", "speaker", "fold"])
        writer.writeheader()
        writer.writerows(rows)
    return rows


EXPERIMENT = """classes = ["angry", "sad"]

[[train]]
name = "a"
protocol = "csv"
data = "a/corpus.csv"
labels = {{ ang = "angry", sad = "sad" }}

[test]
name = "b"
protocol = "csv"
data = "b/corpus.csv"
labels = {labels}
"""


@pytest.fixture(scope="module")
def corpora(tmp_path_factory):
    root = tmp_path_factory.mktemp("cross")
    a = write_corpus(root / "a", {"ang": "high", "sad": "low"}, speakers=4, per_label=4, seed=0)
    b = write_corpus(root / "b", {"anger": "high", "sadness": "low", "fear": "mid"}, speakers=3, per_label=3, seed=100)
    (root / "b_map.csv").write_text("label,class\nanger,angry\nsadness,sad\n")
    (root / "inline.toml").write_text(EXPERIMENT.format(labels='{ anger = "angry", sadness = "sad" }'))
    (root / "file.toml").write_text(EXPERIMENT.format(labels='"b_map.csv"'))
    return root, a, b


def test_unmapped_labels_are_refused_naming_them_and_their_count(corpora):
    root, _, _ = corpora
    with pytest.raises(SerbenchError, match=r"inline.toml \[test b\]: labels not in its label map: 'fear' \(9\);"
                                            r" .*drop_unmapped=true"):
        load_protocol("cross_corpus", root / "inline.toml")


@pytest.mark.parametrize("experiment", ["inline.toml", "file.toml"])
def test_train_on_one_corpus_test_on_another(corpora, experiment):
    root, a, b = corpora
    protocol = load_protocol("cross_corpus", root / experiment, {"drop_unmapped": True})
    protocol.check_usable()
    (fold,) = protocol.folds
    assert protocol.classes == ["angry", "sad"] and fold.name == "b"
    # test: every row of b whose label is mapped (18 of 27), relabelled and tagged with the corpus name
    expected_test = {f"b:{r['path']}": {"anger": "angry", "sadness": "sad"}[r["label"]] for r in b if r["label"] != "fear"}
    assert {i: protocol.utterances[i].label for i in fold.test} == expected_test
    # train + dev: all 32 rows of a; dev is whole speakers of a (0.2 of 32 -> at least 7 utterances: 2 speakers of 8)
    assert set(fold.train) | set(fold.dev) == {f"a:{r['path']}" for r in a}
    speakers = {split: {protocol.utterances[i].speaker for i in getattr(fold, split)} for split in ("train", "dev", "test")}
    assert speakers["test"] == {"b:spk0", "b:spk1", "b:spk2"}
    assert not speakers["train"] & speakers["dev"] and len(fold.dev) == 8 * len(speakers["dev"])
    assert all(s.startswith("a:") for s in speakers["train"] | speakers["dev"])
    assert protocol.notes == {"dropped_unmapped": {"b": {"fear": 9}}}
    roles = [c.partition("=")[0] for c in protocol.corpora]
    assert roles == ["train:a", "test:b"] and protocol.corpora[1].startswith("test:b=csv:corpus.csv[all]#")


def test_a_label_mapped_to_no_class_and_bad_files_are_named(corpora, tmp_path):
    root, _, _ = corpora
    bad = tmp_path / "bad.toml"
    bad.write_text(EXPERIMENT.replace('"a/', f'"{root}/a/').replace('"b/', f'"{root}/b/')
                   .format(labels='{ anger = "furious" }'))
    with pytest.raises(SerbenchError, match=r"bad.toml \[test b\]: labels map to 'furious', not in classes"):
        load_protocol("cross_corpus", bad)
    bad.write_text('classes = ["a", "b"]\n[[train]]\nprotocol = "csv"\nlables = {}\n[test]\nprotocol = "csv"\n')
    with pytest.raises(SerbenchError, match=r"bad.toml \[train #1\]: unknown key 'lables'"):
        load_protocol("cross_corpus", bad)
    bad.write_text('classes = ["a", "b"]\n[[train]]\nprotocol = "csv"\ndata = "none.csv"\n[test]\nprotocol = "csv"\nname = "t"\n')
    with pytest.raises(SerbenchError, match=r"bad.toml \[train none\]: data.csv: .*none.csv does not exist"):
        load_protocol("cross_corpus", bad)


def test_the_comparability_key_carries_the_corpora_and_leaves_others_unchanged():
    parts = {"protocol": "csv", "corpus": "abc", "classes": ["a", "b"], "test_split": None, "metrics": "m"}
    by_hand = hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:10]
    assert comparability("csv", "abc", ["a", "b"], None, "m")["key"] == by_hand  # no corpora: the key it always had
    one = comparability("cross_corpus", "abc", ["a", "b"], None, "m", ["train:a=x#1", "test:b=y#2"])
    other = comparability("cross_corpus", "abc", ["a", "b"], None, "m", ["train:a=x#1", "test:c=y#3"])
    assert one["corpora"] == ["train:a=x#1", "test:b=y#2"] and one["key"] != other["key"]
    assert "train:a test:b" in heading(one) and "train:a test:c" in heading(other)  # a leaderboard group names them


def test_emobox_balanced_file_names_find_their_records():
    keys = {k: None for k in ("savee-JK-sa09", "meld-dia100_utt5-test", "meld-dia208_utt1-train",
                              "meld-dia208_utt1-test", "iemocap-Ses02F_impro03_F019")}
    assert candidates("savee", "JK/sa09.wav", keys) == ["savee-JK-sa09"]
    assert candidates("meld", "audio/final_videos_testdia100_utt5.wav", keys) == ["meld-dia100_utt5-test"]
    assert candidates("meld", "audio/dia208_utt1.wav", keys) == ["meld-dia208_utt1-train", "meld-dia208_utt1-test"]
    assert candidates("iemocap", "happy/Ses02F_impro03_F019.wav", keys) == ["iemocap-Ses02F_impro03_F019"]
    assert candidates("ravdess", "Actor_01/03-01-01-01-01-01-01.wav", keys) == []


def _emobox_dataset(folder, name: str, records: list[tuple[str, str, str]]) -> None:
    """A one-fold EmoBox dataset folder: (key, emo, wav) records, every one in train and test."""
    (folder / "fold_1").mkdir(parents=True, exist_ok=True)
    lines = []
    for n, (key, emo, wav) in enumerate(records):
        tone_wav(folder / wav, "high" if emo in ("a", "Angry") else "low", n)
        lines.append(json.dumps({"key": key, "wav": wav, "emo": emo, "length": 0.5}))
    (folder / f"{name}.jsonl").write_text("\n".join(lines) + "\n")
    (folder / "fold_1" / f"{name}_train_fold_1.jsonl").write_text("\n".join(lines[: len(lines) // 2]) + "\n")
    (folder / "fold_1" / f"{name}_test_fold_1.jsonl").write_text("\n".join(lines[len(lines) // 2:]) + "\n")


def test_emobox_track2_balanced_test_set(tmp_path):
    data = tmp_path / "EmoBox" / "data"
    speakers = ["DC", "JE", "JK", "KL"]
    savee = [(f"savee-{s}-{e}{k:02d}", e, f"{s}_{e}{k:02d}.wav") for s in speakers for e in ("a", "sa") for k in range(1, 4)]
    _emobox_dataset(data / "savee", "savee", savee)
    (data / "savee" / "label_map.json").write_text(json.dumps({"a": "Angry", "sa": "Sad"}))
    ravdess = [(f"ravdess-03-01-0{e}-01-01-0{k}-{s:02d}", {5: "Angry", 4: "Sad"}[e], f"Actor_{s:02d}/{k}{e}.wav")
               for s in range(1, 5) for e in (5, 4) for k in range(1, 4)]
    _emobox_dataset(data / "ravdess", "ravdess", ravdess)
    (data / "ravdess" / "label_map.json").write_text(json.dumps({"Angry": "Angry", "Sad": "Sad"}))
    balanced = [{"wav_filename": f"{s}/{e}{k:02d}.wav", "label": {"a": "angry", "sa": "sad"}[e], "speaker": s}
                for s in speakers for e in ("a", "sa") for k in (1, 2)]
    balanced.append({"wav_filename": "XX/a01.wav", "label": "angry", "speaker": "XX"})  # matches no record
    (data / "track2").mkdir()
    (data / "track2" / "SAVEE_selected_balenced.jsonl").write_text("\n".join(json.dumps(r) for r in balanced) + "\n")
    experiment = tmp_path / "track2.toml"
    experiment.write_text(f"""classes = ["angry", "sad"]
[[train]]
protocol = "emobox"
data = "{data / 'ravdess'}"
labels = {{ Angry = "angry", Sad = "sad" }}
[test]
protocol = "emobox"
data = "{data / 'savee'}"
balanced = true
""")
    protocol = load_protocol("cross_corpus", experiment)
    (fold,) = protocol.folds
    assert sorted(fold.test) == sorted(f"savee:savee-{s}-{e}{k:02d}" for s in speakers for e in ("a", "sa") for k in (1, 2))
    assert Counter(protocol.utterances[i].label for i in fold.test) == {"angry": 8, "sad": 8}
    assert len(fold.train) + len(fold.dev) == len(ravdess)
    assert protocol.notes == {"dropped_unmapped": {"savee": {"(balanced record not found)": 1}}}
    assert "[balanced]#" in protocol.corpora[-1]


@pytest.mark.slow
def test_cross_corpus_run_end_to_end(corpora, tmp_path):
    root, _, b = corpora
    out = tmp_path / "runs"
    done = run_cli("run", "--upstream", "fbank", "--downstream", "superb", "--protocol", "cross_corpus",
                   "--data", str(root / "file.toml"), "-o", "protocol.drop_unmapped=true", "--out", str(out), "--quiet")
    assert done.returncode == 0, done.stderr
    (run_dir,) = out.iterdir()
    result = json.loads((run_dir / "result.json").read_text())
    key = result["comparability"]
    assert [c.partition("=")[0] for c in key["corpora"]] == ["train:a", "test:b"]
    assert result["annotations"]["protocol"] == {"dropped_unmapped": {"b": {"fear": 9}}}
    assert "dropped unmapped (b: fear 9): left out of the run" in done.stdout + done.stderr
    with open(run_dir / "predictions.csv") as f:
        rows = list(csv.DictReader(f))
    assert sorted(r["utterance_id"] for r in rows) == sorted(f"b:{r['path']}" for r in b if r["label"] != "fear")
    # UA recomputed from the predictions by hand: the mean over classes of the share predicted right
    recall = [np.mean([r["prediction"] == c for r in rows if r["label"] == c]) for c in ("angry", "sad")]
    assert result["summary"]["ua"]["mean"] == pytest.approx(np.mean(recall))
    assert np.mean(recall) > 0.9  # one tone per class in both corpora: the mapping lines them up


def test_the_readme_example_reads(tmp_path):
    """The experiment file shown in docs/protocols-and-statistics.md, as written, on two small corpora."""
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[2] / "docs" / "protocols-and-statistics.md").read_text()
    example = readme.split("# a_to_b.toml\n", 1)[1].split("```", 1)[0]
    write_corpus(tmp_path / "a", {"ang": "high", "sad": "low"}, speakers=3, per_label=2, seed=0)
    write_corpus(tmp_path / "b", {"anger": "high", "sadness": "low"}, speakers=2, per_label=2, seed=50)
    (tmp_path / "b_labels.csv").write_text("label,class\nanger,angry\nsadness,sad\n")
    (tmp_path / "a_to_b.toml").write_text(example)
    protocol = load_protocol("cross_corpus", tmp_path / "a_to_b.toml")
    (fold,) = protocol.folds
    assert len(fold.test) == 8 and len(fold.train) + len(fold.dev) == 12
    assert protocol.name == "cross_corpus:a->b"


def test_the_readme_emobox_track2_example_is_a_valid_experiment(tmp_path):
    from pathlib import Path

    from serbench_plugins.protocols.cross_corpus_spec import read_spec

    readme = (Path(__file__).resolve().parents[2] / "docs" / "protocols-and-statistics.md").read_text()
    block = next(b for b in readme.split("```toml\n")[1:] if "balanced = true" in b.split("```")[0]).split("```")[0]
    (tmp_path / "track2.toml").write_text(block)
    spec = read_spec(tmp_path / "track2.toml")
    assert [e.name for e in spec.train] == ["iemocap"] and spec.test.name == "savee" and spec.test.balanced
    assert spec.classes == ("angry", "happy", "neutral", "sad")
