"""Soft labels (issue 25 item 5): rater distributions read from the corpora, EMO-SUPERB's
class-balanced soft cross-entropy and its multi-label macro-F1, a soft-label run end to end.

References: the loss and the weights by hand on a 2-utterance batch; the metric against
scikit-learn's multi-label macro-F1; the distributions against the votes written in the files.
"""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
import torch

import serbench
from serbench.api import soft_labels
from serbench.api.errors import SerbenchError
from serbench.run.plan import plan
from serbench.run.registry import create
from serbench.run.request import RunRequest

# four training utterances' rater shares over 3 classes: class 0 chosen (share > 1/3) by 3 of them,
# classes 1 and 2 by one each
TRAIN = np.array([[1, 0, 0], [1, 0, 0], [0.5, 0.5, 0], [0, 0, 1]], dtype=np.float64)
# by hand: N = 4, beta = 3/4, n = (3, 1, 1); (1 - beta) / (1 - beta^n) = (1/4) / (37/64) = 16/37 and 1, 1;
# scaled to sum to 3: 16/37 / (16/37 + 2) * 3 = 48/90, and 37/90 * 3 = 111/90 twice
HAND_WEIGHTS = [48 / 90, 111 / 90, 111 / 90]


def _soft_ce(*context, **params):
    """The loss as a job builds it: the host adds the training distributions to its parameters."""
    from serbench.run.registry import registry

    return registry().get("loss", "soft_ce").build(*context, **params)


def test_class_balanced_weights_are_the_effective_number_weights_by_hand():
    assert soft_labels.class_balanced_weights(TRAIN) == pytest.approx(HAND_WEIGHTS)


@pytest.mark.parametrize("balanced", [True, False])
def test_soft_ce_on_two_utterances_by_hand(balanced):
    loss = _soft_ce(["a", "b", "c"], [3, 0, 1], balanced=balanced, train_distributions=TRAIN)
    # softmax([ln 2, 0, 0]) = (1/2, 1/4, 1/4); softmax([0, 0, ln 3]) = (1/5, 1/5, 3/5)
    logits = torch.tensor([[math.log(2), 0.0, 0.0], [0.0, 0.0, math.log(3)]])
    targets = torch.tensor([[0.5, 0.5, 0.0], [0.0, 0.0, 1.0]])
    first = -(0.5 * math.log(1 / 2) + 0.5 * math.log(1 / 4))  # = 1.5 ln 2
    second = -math.log(3 / 5)
    if balanced:  # each utterance by its targets' mix of the class weights
        first *= 0.5 * HAND_WEIGHTS[0] + 0.5 * HAND_WEIGHTS[1]
        second *= HAND_WEIGHTS[2]
    value = loss({"logits": logits}, {"soft_labels": targets, "labels": torch.tensor([0, 2])})
    assert float(value) == pytest.approx((first + second) / 2, rel=1e-6)


def test_soft_ce_refuses_a_batch_without_distributions_and_augmented_rows():
    loss = _soft_ce(["a", "b"], [1, 1], balanced=False, train_distributions=np.eye(2))
    with pytest.raises(SerbenchError, match="soft_ce: the batch has no rater distributions"):
        loss({"logits": torch.zeros(2, 2)}, {"labels": torch.tensor([0, 1])})
    with pytest.raises(SerbenchError, match="3 rows of logits for 2 utterances"):
        loss({"logits": torch.zeros(3, 2)}, {"soft_labels": torch.eye(2), "labels": torch.tensor([0, 1])})


def test_soft_macro_f1_is_scikit_learns_multilabel_macro_f1_at_one_over_k():
    from sklearn.metrics import f1_score

    rng = np.random.default_rng(3)
    reference = rng.dirichlet(np.ones(4) * 0.5, size=60)
    probs = rng.dirichlet(np.ones(4), size=60)
    expected = f1_score(reference > 0.25, probs > 0.25, average="macro", zero_division=0)
    assert soft_labels.macro_f1_above_uniform(reference, probs) == pytest.approx(expected)
    # a class nobody chose and nothing predicted scores 0, as zero_division=0
    reference[:, 3], probs[:, 3] = 0.0, 0.0
    expected = f1_score(reference > 0.25, probs > 0.25, average="macro", zero_division=0)
    assert soft_labels.macro_f1_above_uniform(reference, probs) == pytest.approx(expected)


def _write_csv(folder: Path, rows: list[dict]) -> Path:
    """A CSV corpus with real 16 kHz wav files (soundfile): a tone per class, so a model can learn."""
    folder.mkdir(parents=True, exist_ok=True)
    for row in rows:
        t = np.arange(int(0.4 * 16000)) / 16000
        freq = {"ang": 300.0, "neu": 900.0, "sad": 1800.0}[row["label"]]
        noise = np.random.default_rng(len(row["path"]) + hash(row["path"]) % 1000).normal(0, 0.05, t.size)
        sf.write(folder / row["path"], (0.3 * np.sin(2 * np.pi * freq * t) + noise).astype(np.float32), 16000)
    path = folder / "corpus.csv"
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


def _rows(n_per_fold: int = 6) -> list[dict]:
    rows = []
    shares = {"ang": ("0.6", "0.4", "0"), "neu": ("0", "1", "0"), "sad": ("0", "0.25", "0.75")}
    for fold in ("1", "2", "3"):
        for k in range(n_per_fold):
            label = ("ang", "neu", "sad")[k % 3]
            a, n, s = shares[label]
            rows.append({"path": f"u{fold}_{k}.wav", "label": label, "speaker": f"s{fold}{k % 2}", "fold": fold,
                         "soft_ang": a, "soft_neu": n, "soft_sad": s})
    return rows


def test_csv_soft_columns_become_distributions_and_bad_rows_are_refused_naming_the_line(tmp_path):
    rows = _rows(3)
    path = _write_csv(tmp_path / "good", rows)
    protocol = create("protocol", "csv", path)
    assert protocol.utterances["u1_0.wav"].distribution == {"ang": 0.6, "neu": 0.4}
    assert protocol.utterances["u1_2.wav"].distribution == {"neu": 0.25, "sad": 0.75}
    cases = [({"soft_sad": "0.2"}, r"corpus.csv:3: the soft_ columns sum to 1.2, not 1"),
             ({"soft_neu": "-0.4", "soft_ang": "1.4"}, r"corpus.csv:3: soft_neu '-0.4' is not a share"),
             ({"soft_neu": ""}, r"corpus.csv:3: soft_neu is empty while other soft_ columns are filled"),
             ({"soft_neu": "lots"}, r"corpus.csv:3: soft_neu 'lots' is not a number")]
    for change, message in cases:
        bad = [dict(r) for r in rows]
        bad[1].update(change)
        with pytest.raises(SerbenchError, match=message):
            create("protocol", "csv", _write_csv(tmp_path / "bad", bad))
    stray = [{**r, "soft_joy": "0"} for r in rows]
    with pytest.raises(SerbenchError, match=r"corpus.csv:1: column soft_joy names no class"):
        create("protocol", "csv", _write_csv(tmp_path / "stray", stray))
    # a row with every soft_ cell empty has none; without soft_ columns the digest is the one it had
    none = [{**r, "soft_ang": "", "soft_neu": "", "soft_sad": ""} if i == 0 else r for i, r in enumerate(rows)]
    assert create("protocol", "csv", _write_csv(tmp_path / "none", none)).utterances["u1_0.wav"].distribution == {}
    plain = [{k: v for k, v in r.items() if not k.startswith("soft_")} for r in rows]
    plain_digest = create("protocol", "csv", _write_csv(tmp_path / "plain", plain)).digest()
    assert plain_digest != protocol.digest()


def test_the_default_stays_the_majority_label_and_soft_targets_need_rater_labels(tmp_path):
    path = _write_csv(tmp_path, _rows(3))
    default = plan(RunRequest("fbank", "superb", protocol="csv", data=path)).config
    # the default is left out of the configuration, so a run without soft labels keeps the id it had
    assert default["loss"]["name"] == "ce" and "targets" not in default["train"]
    soft = plan(RunRequest("fbank", "superb", protocol="csv", data=path, overrides=["train.targets=soft"])).config
    assert soft["loss"]["name"] == "soft_ce" and soft["train"]["targets"] == "soft"
    by_loss = plan(RunRequest("fbank", "superb", loss="soft_ce", protocol="csv", data=path)).config
    assert by_loss["train"]["targets"] == "soft"
    with pytest.raises(SerbenchError, match="-o train.targets=soft: loss weighted_ce trains on majority labels"):
        plan(RunRequest("fbank", "superb", loss="weighted_ce", protocol="csv", data=path, overrides=["train.targets=soft"]))
    with pytest.raises(SerbenchError, match="train.shuffle_labels with loss soft_ce: shuffled labels carry no rater"):
        plan(RunRequest("fbank", "superb", protocol="csv", data=path, overrides=["train.targets=soft", "train.shuffle_labels=true"]))
    with pytest.raises(SerbenchError, match="loss soft_ce needs rater label distributions.*lacks for 40 of 40 utterances"):
        serbench.run_benchmark("fbank", "superb", protocol="synthetic", out=tmp_path / "runs",
                     overrides=["protocol.per_class=1", "train.targets=soft"])


def test_a_soft_label_run_on_a_csv_corpus_with_rater_columns(tmp_path):
    """End to end: real wav files, soft_ columns; the run trains soft_ce and result.json's
    soft_macro_f1 per fold equals the metric recomputed with scikit-learn from predictions.csv."""
    from sklearn.metrics import f1_score

    path = _write_csv(tmp_path / "corpus", _rows(6))
    result = serbench.run_benchmark("fbank", "superb", protocol="csv", data=path, out=tmp_path / "runs",
                          overrides=["train.targets=soft", "train.max_epochs=3", "train.batch_size=4"])
    assert result.data["config"]["loss"] == "soft_ce" and result.data["config"]["params"]["train"]["targets"] == "soft"
    entry = result.data["soft_labels"]
    predictions = pd.read_csv(result.run_dir / "predictions.csv", dtype={"fold": str})
    classes = result.data["classes"]
    per_fold = {}
    for fold, rows in predictions.groupby("fold"):
        raters = rows[[f"rater_{c}" for c in classes]].to_numpy()
        probs = rows[[f"prob_{c}" for c in classes]].to_numpy()
        per_fold[fold] = f1_score(raters > 1 / 3, probs > 1 / 3, average="macro", zero_division=0)
    assert entry["per_fold"] == pytest.approx(per_fold, abs=1e-5)  # probabilities are written with 6 decimals
    assert entry["soft_macro_f1"]["mean"] == pytest.approx(np.mean(list(per_fold.values())), abs=1e-5)
    assert len(entry["soft_macro_f1"]["ci95"]) == 2
    # the reference shares in predictions.csv are the corpus's
    first = predictions[predictions["utterance_id"] == "u1_0.wav"].iloc[0]
    assert (first["rater_ang"], first["rater_neu"], first["rater_sad"]) == pytest.approx((0.6, 0.4, 0.0))
    record = json.loads(next((result.run_dir / "folds").glob("fold-1_seed-0.json")).read_text())
    assert record["soft_metrics"]["soft_macro_f1"] == pytest.approx(per_fold["1"], abs=1e-5)


def test_iemocap_evaluator_lines_become_the_external_raters_distribution(tmp_path):
    """The C-E lines written into look-alike EmoEvaluation files, counted by hand: one vote per
    chosen category of each external evaluator, self-assessments (C-F1) left out, frustration
    dropped, excited joined to happy."""
    from lookalike import write_iemocap

    raters = {
        "Ses01F_impro01_F000": ["C-E1:\tAnger; Frustration;\t()", "C-E2:\tAnger;\t()", "C-E3:\tNeutral;\t(calm)",
                                "C-F1:\tSadness;\t()"],
        "Ses01F_impro01_M001": ["C-E2:\tExcited;\t()", "C-E3:\tHappiness; Excited;\t()", "C-E4:\tNeutral;\t()"],
        "Ses02M_script01_F002": ["C-E1:\tFrustration;\t()", "C-M1:\tAnger;\t()"],
    }
    utterances = [("Ses01F_impro01_F000", "ang"), ("Ses01F_impro01_M001", "exc"), ("Ses02M_script01_F002", "sad")]
    write_iemocap(tmp_path, utterances, raters=raters)
    protocol = create("protocol", "iemocap_5fold", tmp_path, rater_labels=True)
    found = {uid: protocol.utterances[uid].distribution for uid, _ in utterances}
    assert found["Ses01F_impro01_F000"] == pytest.approx({"angry": 2 / 3, "neutral": 1 / 3})
    assert found["Ses01F_impro01_M001"] == pytest.approx({"happy": 3 / 4, "neutral": 1 / 4})
    assert found["Ses02M_script01_F002"] == {}  # no external vote on the four classes
    # off by default: the corpus is read as before, its digest unchanged
    plain = create("protocol", "iemocap_5fold", tmp_path)
    assert all(not u.distribution for u in plain.utterances.values())
    write_iemocap(tmp_path / "before", utterances)
    assert plain.digest() == create("protocol", "iemocap_5fold", tmp_path / "before").digest()
    bad = dict(raters, **{"Ses01F_impro01_F000": ["C-E1:\tAnger; Boredom;\t()"]})
    write_iemocap(tmp_path / "bad", utterances, raters=bad)
    with pytest.raises(SerbenchError, match=r"Ses01F_impro01.txt:4: unknown category 'Boredom'"):
        create("protocol", "iemocap_5fold", tmp_path / "bad", rater_labels=True)


@pytest.mark.parametrize("layout", ["field", "column"])
def test_msp_podcast_detailed_labels_become_the_raters_distribution(tmp_path, layout):
    """Votes written per rater, counted by hand; primaries outside the eight classes dropped."""
    from lookalike import write_msp_detailed, write_msp_podcast

    rows = write_msp_podcast(tmp_path)
    angry, neutral = rows[0][0], rows[21][0]  # Train rows with EmoClass A and N (3 rows per code, ASHUFDCN...)
    write_msp_detailed(tmp_path, {angry: ["Angry", "Angry", "Contempt", "Other-Annoyed"],
                                  neutral: ["Neutral", "neutral", "Sad", "Happy", "Happy"]}, layout)
    protocol = create("protocol", "msp_podcast", tmp_path, rater_labels=True)
    assert protocol.utterances[Path(angry).stem].distribution == pytest.approx({"angry": 2 / 3, "contempt": 1 / 3})
    assert protocol.utterances[Path(neutral).stem].distribution == pytest.approx(
        {"neutral": 2 / 5, "sad": 1 / 5, "happy": 2 / 5})
    assert protocol.utterances[Path(rows[1][0]).stem].distribution == {}  # no rater rows
    assert all(not u.distribution for u in create("protocol", "msp_podcast", tmp_path).utterances.values())
