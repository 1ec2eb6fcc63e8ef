"""Saved models and ``serbench predict`` (issue 26, item 5).

The reference is the run itself: a saved model fed one of the run's test (or dev) files
through ``serbench predict`` gives the probabilities the run wrote for that file in
``predictions.csv`` (or ``fold-*.dev.csv``) when it scored it. Segments are checked against
the same model fed each segment cut out as its own file.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
from safetensors import safe_open
from scipy.signal import resample_poly

import serbench
from serbench.api.work import Job
from serbench.cli.main import main
from serbench.report.rundir import RunDir
from serbench.run.plan import load_plan
from serbench.run.predict import predict, segments

pytestmark = pytest.mark.slow
CLASSES = ["neutral", "happy", "angry", "sad"]
PROBS = [f"prob_{c}" for c in CLASSES]


def _run(tmp_path_factory, downstream, seeds=(0,), extra=()):
    out = tmp_path_factory.mktemp(f"runs-{downstream}")
    result = serbench.run_benchmark(upstream="fbank", downstream=downstream, protocol="synthetic", seeds=seeds, out=out, device="cpu",
                          overrides=["protocol.per_class=2", "train.max_epochs=2", *extra])
    return Path(result.run_dir)


@pytest.fixture(scope="module")
def superb_run(tmp_path_factory) -> Path:
    return _run(tmp_path_factory, "superb", seeds=(0, 1))


@pytest.fixture(scope="module")
def logreg_run(tmp_path_factory) -> Path:
    return _run(tmp_path_factory, "logreg")


@pytest.fixture(scope="module")
def sap_gap_run(tmp_path_factory) -> Path:
    """A method whose pooling reads webrtcvad speech masks: predict computes them as the run did."""
    return _run(tmp_path_factory, "sap_gap")


def _paths(run_dir: Path) -> dict[str, Path]:
    return {u.id: Path(u.path) for u in load_plan(run_dir, "cpu").protocol().utterances.values()}


def _by_file(prediction) -> pd.DataFrame:
    return prediction.files.set_index("file")[PROBS]


@pytest.mark.parametrize("which", ["superb_run", "logreg_run", "sap_gap_run"])
def test_predict_gives_the_runs_own_test_probabilities(which, request):
    run_dir = request.getfixturevalue(which)
    paths = _paths(run_dir)
    written = pd.read_csv(run_dir / "predictions.csv", dtype={"fold": str})
    for fold in ("1", "4"):
        rows = written[(written["fold"] == fold) & (written["seed"] == 0)]
        got = _by_file(predict(run_dir, [str(paths[i]) for i in rows["utterance_id"]], fold=fold, seed=0))
        expected = rows[PROBS].to_numpy()
        np.testing.assert_allclose(got.loc[[str(paths[i]) for i in rows["utterance_id"]]].to_numpy(), expected, atol=2e-5)


def test_predict_gives_the_runs_own_dev_probabilities(superb_run):
    paths = _paths(superb_run)
    dev = pd.read_csv(RunDir(superb_run).job_dev(Job("2", 1)))
    got = _by_file(predict(superb_run, [str(paths[i]) for i in dev["utterance_id"]], fold="2", seed=1))
    np.testing.assert_allclose(got.loc[[str(paths[i]) for i in dev["utterance_id"]]].to_numpy(), dev[PROBS].to_numpy(),
                               atol=2e-5)


def test_without_fold_or_seed_every_saved_model_is_averaged(superb_run):
    paths = _paths(superb_run)
    files = [str(paths[i]) for i in sorted(paths)[:3]]
    everything = _by_file(predict(superb_run, files)).loc[files].to_numpy()
    singles = [_by_file(predict(superb_run, files, fold=str(k), seed=s)).loc[files].to_numpy()
               for k in range(1, 6) for s in (0, 1)]
    np.testing.assert_allclose(everything, np.mean(singles, axis=0), atol=1e-6)
    seed_one = _by_file(predict(superb_run, files, seed=1)).loc[files].to_numpy()
    np.testing.assert_allclose(seed_one, np.mean(singles[1::2], axis=0), atol=1e-6)


def test_the_command_prints_and_writes_probabilities(superb_run, tmp_path, capsys):
    written = pd.read_csv(superb_run / "predictions.csv", dtype={"fold": str})
    row = written[(written["fold"] == "3") & (written["seed"] == 0)].iloc[0]
    wav = _paths(superb_run)[row["utterance_id"]]
    assert main(["predict", str(superb_run), str(wav), "--fold", "3", "--seed", "0", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert all(f"{row[p]:.4f}" in out for p in PROBS) and row["prediction"] in out
    files = pd.read_csv(tmp_path / "files.csv")
    np.testing.assert_allclose(files[PROBS].to_numpy()[0], row[PROBS].to_numpy(dtype=float), atol=2e-5)
    assert len(pd.read_csv(tmp_path / "segments.csv")) == 1


def test_the_saved_model_is_weights_only_and_documented(superb_run):
    description = json.loads((superb_run / "models" / "fold-1_seed-0.json").read_text())
    assert description["format"] == "serbench.model/1" and description["classes"] == CLASSES
    assert description["upstream"]["name"] == "fbank" and description["upstream"]["fingerprint"].startswith("fbank-")
    assert description["preprocessing"]["sample_rate"] == 16000 and description["preprocessing"]["feature_dtype"] == "float16"
    assert description["pooling"]["name"] == "mean" and description["downstream"]["name"] == "superb"
    with safe_open(superb_run / "models" / "fold-1_seed-0.safetensors", framework="pt") as weights:
        names = set(weights.keys())
    assert {"classifier.weight", "classifier.bias", "project.weight"} <= names


def _long_recording(run_dir: Path, path: Path) -> list[tuple[float, float]]:
    """Three of the run's files with a second of silence around each; their (start, end) seconds."""
    pieces, spans, position = [], [], 0.0
    for uid in sorted(_paths(run_dir))[:3]:
        wav, rate = sf.read(_paths(run_dir)[uid], dtype="float32")
        pieces += [np.zeros(16000, np.float32), wav]
        spans.append((position + 1.0, position + 1.0 + wav.size / rate))
        position += 1.0 + wav.size / rate
    pieces.append(np.zeros(16000, np.float32))
    sf.write(path, np.concatenate(pieces), 16000, subtype="FLOAT")
    return spans


def test_a_long_recording_is_split_where_webrtcvad_hears_speech(superb_run, tmp_path):
    spans = _long_recording(superb_run, tmp_path / "long.wav")
    parts = segments(tmp_path / "long.wav", max_seconds=2.0)
    assert len(parts) >= 3
    for part in parts:
        assert part.end - part.start <= 2.0 + 1e-6
        assert any(a - 0.03 <= part.start and part.end <= b + 0.03 for a, b in spans), (part, spans)  # never in silence
    assert all(any(a - 0.03 <= p.start <= b for p in parts) for a, b in spans)  # every file heard


def test_segment_probabilities_are_the_segments_own_and_the_file_their_duration_weighted_mean(superb_run, tmp_path):
    _long_recording(superb_run, tmp_path / "long.wav")
    result = predict(superb_run, [str(tmp_path / "long.wav")], fold="1", seed=0, max_seconds=2.0)
    audio, _ = sf.read(tmp_path / "long.wav", dtype="float32")
    cut = []
    for k, part in enumerate(result.segments.itertuples()):
        path = tmp_path / f"segment{k}.wav"
        sf.write(path, audio[int(part.start * 16000) : int(part.end * 16000)], 16000, subtype="FLOAT")
        cut.append(str(path))
    alone = _by_file(predict(superb_run, cut, fold="1", seed=0)).loc[cut].to_numpy()
    np.testing.assert_allclose(result.segments[PROBS].to_numpy(), alone, atol=2e-5)
    weights = (result.segments["end"] - result.segments["start"]).to_numpy()
    np.testing.assert_allclose(result.files[PROBS].to_numpy()[0], weights @ alone / weights.sum(), atol=1e-4)


def test_another_sample_rate_is_resampled_as_the_run_loader_does(superb_run, tmp_path):
    wav = _paths(superb_run)[sorted(_paths(superb_run))[0]]
    audio, _ = sf.read(wav, dtype="float32")
    high = resample_poly(audio, 441, 160).astype(np.float32)
    sf.write(tmp_path / "cd.wav", high, 44100, subtype="FLOAT")
    sf.write(tmp_path / "back.wav", resample_poly(high, 160, 441).astype(np.float32), 16000, subtype="FLOAT")
    result = predict(superb_run, [str(tmp_path / "cd.wav"), str(tmp_path / "back.wav")], fold="1", seed=0)
    assert result.notes == [f"{tmp_path / 'cd.wav'}: 44100 Hz, resampled to 16000 Hz (polyphase, as the run's loader does)"]
    np.testing.assert_allclose(result.files[PROBS].to_numpy()[0], result.files[PROBS].to_numpy()[1], atol=2e-5)


def _refused(args: list[str], capsys, *expected: str) -> None:
    assert main(["predict", *args]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and err.startswith("serbench: error: "), err
    for text in expected:
        assert text in err, err


def test_bad_inputs_are_one_line_each(superb_run, tmp_path, capsys):
    wav = str(_paths(superb_run)[sorted(_paths(superb_run))[0]])
    _refused([str(tmp_path), wav], capsys, str(tmp_path), "not a run directory")
    _refused([str(tmp_path / "absent"), wav], capsys, "not a run directory")
    bare = tmp_path / "bare"
    shutil.copytree(superb_run, bare)
    shutil.rmtree(bare / "models")
    _refused([str(bare), wav], capsys, "no saved models")
    (tmp_path / "noise.wav").write_text("not audio at all")
    _refused([str(superb_run), str(tmp_path / "noise.wav")], capsys, "noise.wav", "cannot read audio")
    _refused([str(superb_run), str(tmp_path / "missing.wav")], capsys, "missing.wav", "no such audio file")
    (tmp_path / "empty").mkdir()
    _refused([str(superb_run), str(tmp_path / "empty")], capsys, "holds no audio files")
    _refused([str(superb_run), wav, "--fold", "9"], capsys, "--fold 9", "folds: 1, 2, 3, 4, 5")
    tampered = tmp_path / "tampered"
    shutil.copytree(superb_run, tampered)
    weights = tampered / "models" / "fold-1_seed-0.safetensors"
    weights.write_bytes(weights.read_bytes()[:-4] + b"\0\0\0\0")
    _refused([str(tampered), wav, "--fold", "1", "--seed", "0"], capsys, "fold-1_seed-0.safetensors", "changed since")


def test_a_fine_tuning_run_says_its_models_are_not_saved(tmp_path, capsys):
    result = serbench.run_benchmark(upstream="tiny", downstream="superb", protocol="synthetic", out=tmp_path, device="cpu",
                          overrides=["protocol.per_class=1", "train.max_epochs=1", "upstream.finetune=true"])
    run_dir = next(tmp_path.iterdir())
    assert result.run_id == run_dir.name and not (run_dir / "models").exists()
    wav = str(_paths(run_dir)[sorted(_paths(run_dir))[0]])
    _refused([str(run_dir), wav], capsys, "fine-tuning run", "not saved")


def test_a_method_that_needs_gender_is_refused(tmp_path, capsys):
    result = serbench.run_benchmark(upstream="fbank", downstream="wavlm_cond", protocol="synthetic", out=tmp_path, device="cpu",
                          overrides=["protocol.per_class=1", "train.max_epochs=1", "downstream.gender=sum"])
    run_dir = Path(result.run_dir)
    wav = str(_paths(run_dir)[sorted(_paths(run_dir))[0]])
    _refused([str(run_dir), wav], capsys, "wavlm_cond needs the gender", "fold-1_seed-0.json")


def test_a_folder_gives_every_audio_file_under_it(superb_run, tmp_path):
    written = pd.read_csv(superb_run / "predictions.csv", dtype={"fold": str})
    rows = written[(written["fold"] == "5") & (written["seed"] == 0)].iloc[:3]
    paths = _paths(superb_run)
    (tmp_path / "in" / "deeper").mkdir(parents=True)
    targets = [tmp_path / "in" / "a.wav", tmp_path / "in" / "deeper" / "b.wav", tmp_path / "in" / "c.flac"]
    for uid, target in zip(rows["utterance_id"], targets):
        audio, rate = sf.read(paths[uid], dtype="float32")
        sf.write(target, audio, rate, subtype="FLOAT" if target.suffix == ".wav" else "PCM_24")
    (tmp_path / "in" / "notes.txt").write_text("not audio: skipped by its suffix")
    got = predict(superb_run, [str(tmp_path / "in")], fold="5", seed=0).files
    assert list(got["file"]) == sorted(str(t) for t in targets)
    wav_rows = got.set_index("file").loc[[str(targets[0]), str(targets[1])], PROBS].to_numpy()
    np.testing.assert_allclose(wav_rows, rows[PROBS].to_numpy()[:2], atol=2e-5)
