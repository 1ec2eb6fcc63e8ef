"""Perturbation plugins (issue 25, item 3), each checked against an independent reference: the
SNR measured on the noise plugin's output, the telephone band by its spectrum (scipy's Welch
estimate), mu-law codes worked by hand, clipping and gain by hand, the synthetic reverberation's
RT60 by Schroeder's backward integration; the cache key per perturbation; and a synthetic run
with ``--perturb`` whose reported unchanged share and scores are recomputed from its files."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
from scipy.signal import welch
from sklearn.metrics import balanced_accuracy_score

from serbench.api.errors import SerbenchError
from serbench.run.cache import FORMAT_VERSION, CacheKey
from serbench.run.perturb import Perturber, parse, parse_all
from serbench.run.registry import create
from serbench_plugins.perturbations.reverb import polack_rir
from serbench_plugins.perturbations.telephone import mu_law_decode, mu_law_encode

RATE = 16_000


def _speechlike(seconds: float = 2.0, seed: int = 0) -> np.ndarray:
    """A harmonic tone with a slow envelope and a little noise: broadband, not stationary."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * RATE)) / RATE
    wav = sum(np.sin(2 * np.pi * 150 * k * t) / k for k in range(1, 40)) * (0.5 + 0.5 * np.sin(2 * np.pi * 2 * t))
    return (0.1 * wav + 0.01 * rng.standard_normal(t.size)).astype(np.float32)


def _snr_db(clean: np.ndarray, noisy: np.ndarray) -> float:
    noise = noisy.astype(np.float64) - clean.astype(np.float64)
    return 10 * np.log10(np.mean(clean.astype(np.float64) ** 2) / np.mean(noise ** 2))


@pytest.mark.parametrize("snr", [-5.0, 0.0, 5.0, 20.0])
@pytest.mark.parametrize("color", ["white", "pink"])
def test_noise_is_added_at_the_asked_snr_measured_on_the_output(snr, color):
    wav = _speechlike()
    out = create("perturbation", "noise", snr=snr, color=color)(wav, np.random.default_rng(1))
    assert out.shape == wav.shape and out.dtype == np.float32
    assert _snr_db(wav, out) == pytest.approx(snr, abs=0.01)  # float32 output rounds the last digits


def test_pink_noise_falls_by_ten_db_per_decade():
    """The log-log slope of Welch's power spectral density of the added noise is -1 (1/f)."""
    wav = _speechlike(8.0)
    noise = create("perturbation", "noise", snr=0.0, color="pink")(wav, np.random.default_rng(2)) - wav
    freqs, psd = welch(noise, RATE, nperseg=4096)
    band = (freqs > 50) & (freqs < 6000)
    slope = np.polyfit(np.log10(freqs[band]), np.log10(psd[band]), 1)[0]
    assert slope == pytest.approx(-1.0, abs=0.1)
    freqs, psd = welch(create("perturbation", "noise", snr=0.0)(wav, np.random.default_rng(2)) - wav, RATE, nperseg=4096)
    assert np.polyfit(np.log10(freqs[band]), np.log10(psd[band]), 1)[0] == pytest.approx(0.0, abs=0.1)


def test_noise_from_a_folder_of_recordings_keeps_the_snr_and_its_files_are_in_the_fingerprint(tmp_path):
    rng = np.random.default_rng(3)
    sf.write(tmp_path / "hum.wav", (0.3 * np.sin(2 * np.pi * 50 * np.arange(RATE // 2) / RATE)).astype(np.float32), RATE)
    sf.write(tmp_path / "hiss.wav", (0.05 * rng.standard_normal(RATE)).astype(np.float32), RATE)
    wav = _speechlike()
    condition = parse(f"noise:snr=3,folder={tmp_path}")
    out = Perturber(condition).apply(wav, "utterance-hash")
    assert _snr_db(wav, out) == pytest.approx(3.0, abs=0.01)
    before = Perturber(condition).fingerprint
    sf.write(tmp_path / "hiss.wav", (0.05 * rng.standard_normal(RATE)).astype(np.float32), RATE)  # other content
    assert Perturber(condition).fingerprint != before


def test_a_silent_utterance_is_returned_unchanged_by_noise():
    silent = np.zeros(RATE, dtype=np.float32)
    assert np.array_equal(create("perturbation", "noise", snr=0.0)(silent, np.random.default_rng(0)), silent)


def _energy_above(wav: np.ndarray, hz: float) -> float:
    freqs, psd = welch(wav, RATE, nperseg=1024)
    return float(psd[freqs > hz].sum() / psd.sum())


@pytest.mark.parametrize("codec", ["mulaw", "alaw", "none"])
def test_telephone_band_leaves_no_energy_above_4_khz(codec):
    white = (0.2 * np.random.default_rng(4).standard_normal(4 * RATE)).astype(np.float32)
    out = create("perturbation", "telephone", codec=codec)(white, np.random.default_rng(0))
    assert out.shape == white.shape
    assert _energy_above(white, 4200) > 0.4  # white noise: about half its power is above 4 kHz
    assert _energy_above(out, 4200) < 0.01  # a codec's quantisation noise is band-limited too: it is coded at 8 kHz
    low = lambda x: welch(x, RATE, nperseg=1024)[1][(welch(x, RATE, nperseg=1024)[0] > 300)  # noqa: E731
                                                     & (welch(x, RATE, nperseg=1024)[0] < 3400)].sum()
    assert low(out) == pytest.approx(low(white), rel=0.1)  # the voice band passes


def test_mu_law_codes_and_decoding_match_a_hand_computation():
    # F(x) = sign(x) ln(1 + 255|x|) / ln 256; code = floor((F + 1) / 2 * 255 + 1/2)
    # x = 0.5: ln(128.5) / ln(256) = 4.85593 / 5.54518 = 0.875703 -> 1.875703 / 2 * 255 = 239.15 -> 239
    # x = 0.01: ln(3.55) / ln(256) = 1.266948 / 5.545177 = 0.228477 -> 156.63 -> 157
    # x = 0 -> 127.5 -> 128; x = 1 -> 255; x = -1 -> 0; x = -0.5 -> 255 - 239.15 = 15.85 -> 16
    codes = mu_law_encode(np.array([0.5, 0.01, 0.0, 1.0, -1.0, -0.5, 2.0]))
    assert codes.tolist() == [239, 157, 128, 255, 0, 16, 255]
    # code 239: y = 2 * 239 / 255 - 1 = 0.874510; x = (256^y - 1) / 255 = (127.651 - 1) / 255 = 0.496677
    assert mu_law_decode(np.array([239]))[0] == pytest.approx(0.496677, abs=1e-6)
    assert mu_law_decode(np.array([0, 255])).tolist() == pytest.approx([-1.0, 1.0])


def test_clipping_and_gain_by_hand():
    wav = np.array([0.2, -0.8, 0.4, 1.0, -0.3], dtype=np.float32)
    rng = np.random.default_rng(0)
    # peak 1.0, level 0.5: everything beyond +-0.5 is cut to +-0.5
    assert create("perturbation", "clip", level=0.5)(wav, rng).tolist() == pytest.approx([0.2, -0.5, 0.4, 0.5, -0.3])
    quiet = wav / 4  # relative to the utterance's own peak (0.25): the same shape at a quarter of the level
    assert create("perturbation", "clip", level=0.5)(quiet, rng).tolist() == pytest.approx([0.05, -0.125, 0.1, 0.125, -0.075])
    # 20 dB is a factor of 10 in amplitude; -6.0206 dB halves it
    assert create("perturbation", "gain", db=20.0)(wav, rng).tolist() == pytest.approx([2.0, -8.0, 4.0, 10.0, -3.0], rel=1e-6)
    assert create("perturbation", "gain", db=-6.0206)(wav, rng).tolist() == pytest.approx([0.1, -0.4, 0.2, 0.5, -0.15], rel=1e-4)


@pytest.mark.parametrize("rt60", [0.3, 0.8])
def test_synthetic_room_response_decays_by_60_db_in_rt60_by_schroeder_integration(rt60):
    rir = polack_rir(rt60, 0.0, np.random.default_rng(5))
    tail = rir[1:]  # the reverberant part (the direct path is one sample)
    energy = np.cumsum(tail[::-1] ** 2)[::-1]  # Schroeder's backward integral
    decay = 10 * np.log10(energy / energy[0])
    t = np.arange(decay.size) / RATE
    fit = (decay <= -5) & (decay >= -25)  # T20, extrapolated to 60 dB
    slope = np.polyfit(t[fit], decay[fit], 1)[0]
    assert -60.0 / slope == pytest.approx(rt60, rel=0.1)
    assert np.sum(tail ** 2) == pytest.approx(1.0)  # drr 0 dB: reverberant energy equals the direct path's


def test_reverb_keeps_length_and_power():
    wav = _speechlike()
    out = create("perturbation", "reverb", rt60=0.6)(wav, np.random.default_rng(6))
    assert out.shape == wav.shape
    assert np.mean(out.astype(np.float64) ** 2) == pytest.approx(np.mean(wav.astype(np.float64) ** 2), rel=1e-4)
    assert not np.allclose(out, wav)


def test_a_perturbation_is_deterministic_per_condition_and_utterance():
    wav = _speechlike()
    noise = Perturber(parse("noise:snr=5"))
    first = noise.apply(wav, "aaaa")
    assert np.array_equal(first, Perturber(parse("noise: snr = 5.0")).apply(wav, "aaaa"))  # another spelling, same draw
    assert not np.array_equal(first, noise.apply(wav, "bbbb"))  # another utterance, another draw
    assert not np.array_equal(first, Perturber(parse("noise:snr=5,seed=1")).apply(wav, "aaaa"))
    assert not np.array_equal(first, noise.apply(wav, "aaaa", copy=1))  # an augmentation copy


def test_the_cache_key_differs_per_perturbation_and_clean_folders_keep_their_names():
    key = CacheKey("fbank", "fp", (0, 1), "float16", 80, 100.0, "1")
    # the clean folder's name as the cache named it before perturbations existed
    before = hashlib.sha256(json.dumps([FORMAT_VERSION, "fp", [0, 1], "float16", "1"]).encode()).hexdigest()[:16]
    assert key.folder_name == before
    names = {key.folder_name}
    for text in ("noise:snr=5", "noise:snr=10", "noise:snr=5,color=pink", "telephone", "telephone:codec=alaw",
                 "reverb", "clip", "gain"):
        names.add(CacheKey(**{**key.__dict__, "perturbation": Perturber(parse(text)).fingerprint}).folder_name)
    assert len(names) == 9


@pytest.mark.parametrize("text, message", [
    ("echo", r"--perturb: unknown perturbation 'echo'"),
    ("noise:snr", r"'snr' is not key=value"),
    ("noise:loud=3", r"has no parameter 'loud'"),
    ("reverb:rt60=0", r"reverb\.rt60: 0.0 is out of range"),
    ("noise:snr=5,snr=6", r"'snr' is given twice"),
    ("", r"expected NAME\[:key=value"),
])
def test_a_bad_condition_is_one_clear_error_naming_the_option(text, message):
    with pytest.raises(SerbenchError, match=message):
        parse(text)


def test_the_same_condition_twice_is_refused():
    with pytest.raises(SerbenchError, match="given twice"):
        parse_all(["noise:snr=5", "noise:snr=5.0,color=white"])


def test_robustness_thresholds_without_a_condition_are_refused():
    from serbench.run.plan import plan
    from serbench.run.request import RunRequest

    with pytest.raises(SerbenchError, match="robustness.max_drop: the robustness rule applies to --perturb"):
        plan(RunRequest("fbank", "superb", protocol="synthetic", device="cpu", overrides=["robustness.max_drop=0.1"]))


def test_a_run_without_the_new_options_keeps_its_configuration():
    from serbench.run.plan import plan
    from serbench.run.request import RunRequest

    config = plan(RunRequest("fbank", "superb", protocol="synthetic", device="cpu")).config
    assert "perturb" not in config and "robustness" not in config
    assert "augment" not in config["train"] and "augment_copies" not in config["train"]


def test_augmentation_trains_on_the_epochs_copy_and_evaluates_on_clean():
    from serbench.api.protocol import Utterance
    from serbench.run.augment import AugmentedFeatures, copy_of
    from serbench.run.batching import FeatureBatcher

    ids = [f"u{k}" for k in range(6)]
    utterances = {i: Utterance(id=i, path="x.wav", speaker="s", label="a") for i in ids}
    clean = {i: np.zeros((1, 3, 2), np.float32) for i in ids}
    copies = [{i: np.full((1, 3, 2), c, np.float32) for i in ids} for c in (1.0, 2.0)]
    batcher = AugmentedFeatures(FeatureBatcher(clean, utterances, ["a"]), copies, ids[:4])
    seen = set()
    for epoch in (1, 2, 3):
        batcher.set_epoch(epoch)
        batch = batcher(ids, train=True)
        values = batch["features"][:, 0, 0, 0].tolist()
        for i, value in zip(ids, values):
            expected = copy_of(i, epoch, 2) if i in ids[:4] else 0  # dev and test ids are never perturbed
            assert value == expected
            seen.add((i, value))
        assert batcher(ids)["features"].abs().sum() == 0  # evaluation: clean
    assert {v for i, v in seen if i == "u0"} == {0.0, 1.0, 2.0}  # three epochs visit each of the three copies


@pytest.mark.slow
def test_a_synthetic_run_with_perturb_reports_what_its_files_hold(tmp_path, monkeypatch):
    from serbench.run.execute import run
    from serbench.run.request import RunRequest

    monkeypatch.setenv("SERBENCH_CACHE", str(tmp_path / "cache"))  # the session's cache stays as other tests expect it
    request = RunRequest("fbank", "superb", protocol="synthetic", device="cpu", seeds=(0, 1),
                         overrides=["protocol.per_class=2", "train.max_epochs=2"], perturbations=["noise:snr=5"])
    result = run(request, out=tmp_path)
    section = result.data["robustness"]
    (key, entry), = section["conditions"].items()
    assert key.startswith("noise:") and entry["perturbation"]["label"] == "noise:snr=5.0"
    clean = pd.read_csv(result.run_dir / "predictions.csv", dtype={"fold": str, "utterance_id": str})
    perturbed = pd.read_csv(result.run_dir / "predictions_perturbed.csv", dtype={"fold": str, "utterance_id": str})
    assert set(perturbed["condition"]) == {key} and len(perturbed) == len(clean)
    pairs = clean.merge(perturbed, on=["fold", "seed", "utterance_id"], suffixes=("", "_p"))
    assert len(pairs) == len(clean)
    assert entry["unchanged"] == pytest.approx(float((pairs["prediction"] == pairs["prediction_p"]).mean()))
    # UA per job by scikit-learn, averaged over seeds then folds, as the table's statistic
    def table_ua(frame: pd.DataFrame, column: str) -> float:
        per_job = frame.groupby(["fold", "seed"]).apply(lambda g: balanced_accuracy_score(g["label"], g[column]))
        return float(per_job.groupby(level="fold").mean().mean())
    assert entry["summary"]["ua"]["mean"] == pytest.approx(table_ua(pairs, "prediction_p"))
    assert entry["difference"]["ua"]["mean"] == pytest.approx(table_ua(pairs, "prediction_p") - table_ua(pairs, "prediction"))
    rule = entry["rule"]
    assert rule["passed"] == (rule["drop_ua"] <= 0.05 and rule["unchanged"] >= 0.5)
    assert hashlib.sha256((result.run_dir / "predictions_perturbed.csv").read_bytes()).hexdigest() == section["predictions_sha256"]
    # serbench score --clean recomputes the section from the two files alone
    from serbench.report.score_robustness import score_robustness

    scored = score_robustness(result.run_dir / "predictions_perturbed.csv", result.run_dir / "predictions.csv")
    assert scored["conditions"][key] == {k: v for k, v in entry.items() if k != "perturbation"}
    cut = tmp_path / "cut.csv"
    perturbed.iloc[:-1].to_csv(cut, index=False)
    with pytest.raises(SerbenchError, match=r"cut.csv: condition .* does not pair with .*predictions.csv"):
        score_robustness(cut, result.run_dir / "predictions.csv")
    with pytest.raises(SerbenchError, match=r"predictions.csv:1: no 'condition' column"):
        score_robustness(result.run_dir / "predictions.csv", result.run_dir / "predictions.csv")
    # a hand-edited section is refused where the result is read, naming the part
    from serbench.report.results import load_result

    edited = json.loads((result.run_dir / "result.json").read_text())
    edited["robustness"]["conditions"][key]["unchanged"] = 1.5
    (tmp_path / "edited.json").write_text(json.dumps(edited))
    with pytest.raises(SerbenchError, match=r"edited.json: robustness.conditions\[.*\].unchanged is 1.5, not a share"):
        load_result(tmp_path / "edited.json")
    # the same run again is read back: every job done, the same section
    again = run(request, out=tmp_path)
    assert again.data["robustness"]["conditions"] == section["conditions"]


def test_check_plugin_names_a_perturbation_with_randomness_of_its_own():
    from serbench.cli.check_plugin import check_perturbation

    def own_noise(wav, rng):
        return wav + np.random.standard_normal(wav.size).astype(np.float32)  # not the generator serbench seeds

    def shorter(wav, rng):
        return wav[:-1]

    failed = {c.name for c in check_perturbation(own_noise, "own") if not c.passed}
    assert failed == {"deterministic given the generator"}
    assert "same length" in {c.name for c in check_perturbation(shorter, "short") if not c.passed}
    assert all(c.passed for c in check_perturbation(create("perturbation", "reverb"), "reverb"))


def test_perturbed_and_augmented_audio_batches_for_fine_tuning(tmp_path):
    """Fine-tuning reads audio: the perturbed batcher hands the encoder perturbed waveforms and
    marks them not whole (the front-end cache holds clean audio); augmentation perturbs training
    batches only, by the epoch's copy; the inner batcher reads clean audio again afterwards."""
    from serbench.api.protocol import Utterance
    from serbench.run.augment import AugmentedAudio, copy_of
    from serbench.run.batching import AudioBatcher
    from serbench.run.cache import utterance_hash
    from serbench.run.robustness_eval import PerturbedAudio

    wav = _speechlike(0.5)
    sf.write(tmp_path / "a.wav", wav, RATE)
    utterances = {f"u{k}": Utterance(id=f"u{k}", path=tmp_path / "a.wav", speaker="s", label="a") for k in range(4)}
    inner = AudioBatcher(utterances, ["a"], 0.0, 0)
    clean = inner(["u0"])["wavs"][0].numpy()
    gain = Perturber(parse("gain:db=20"))
    batch = PerturbedAudio(inner, gain)(["u0"])
    assert np.allclose(batch["wavs"][0].numpy(), clean * 10, rtol=1e-5) and batch["whole"] == [False]
    assert np.array_equal(inner(["u0"])["wavs"][0].numpy(), clean)  # restored
    augmented = AugmentedAudio(inner, gain, copies=1)
    for epoch in (1, 2):
        augmented.set_epoch(epoch)
        rows = augmented(list(utterances), train=True)["wavs"].numpy()
        for row, uid in zip(rows, utterances):
            expected = gain.apply(clean, utterance_hash(utterances[uid]), 1) if copy_of(uid, epoch, 1) else clean
            assert np.allclose(row, expected, rtol=1e-6)
        assert np.array_equal(augmented(["u0"])["wavs"][0].numpy(), clean)  # evaluation: clean


def test_the_paired_fold_interval_is_the_t_interval_of_the_per_fold_differences():
    """With speakers nested in folds the cluster is the fold, and the jackknife interval of the
    difference of fold means equals Student's t interval over the per-fold differences (scipy,
    each fold's UA by scikit-learn)."""
    from scipy import stats as scipy_stats

    from serbench.report.results import speaker_table
    from serbench.report.robustness import paired_cluster_interval

    rng = np.random.default_rng(8)
    classes = ["a", "b", "c"]
    rows = []
    for fold in range(6):
        for speaker in (f"s{fold}x", f"s{fold}y"):
            for k in range(20):
                label = classes[k % 3]
                clean = label if rng.random() < 0.7 else classes[rng.integers(3)]
                noisy = clean if rng.random() < 0.6 else classes[rng.integers(3)]
                rows.append((str(fold), 0, f"{speaker}-{k}", speaker, label, clean, noisy))
    frame = pd.DataFrame(rows, columns=["fold", "seed", "utterance_id", "speaker", "label", "prediction", "noisy"])
    perturbed = frame.drop(columns="prediction").rename(columns={"noisy": "prediction"})
    clean = frame.drop(columns="noisy")
    a, b = speaker_table(clean, classes), speaker_table(perturbed, classes)
    intervals, cluster = paired_cluster_interval(a.counts, b.counts, a.fold_of_job)
    assert cluster["unit"] == "fold" and cluster["clusters"] == 6
    diffs = [balanced_accuracy_score(g["label"], g["noisy"]) - balanced_accuracy_score(g["label"], g["prediction"])
             for _, g in frame.groupby("fold")]
    low, high = scipy_stats.t.interval(0.95, len(diffs) - 1, loc=np.mean(diffs), scale=scipy_stats.sem(diffs))
    assert intervals["ua"] == pytest.approx([low, high])


def test_augmentation_settings_are_canonical_and_checked():
    from serbench.run.plan import plan
    from serbench.run.request import RunRequest

    one = plan(RunRequest("fbank", "superb", protocol="synthetic", device="cpu", overrides=["train.augment=noise:snr=10"]))
    two = plan(RunRequest("fbank", "superb", protocol="synthetic", device="cpu", overrides=["train.augment=noise: snr=10.0 ,color=white"]))
    assert one.config["train"]["augment"] == two.config["train"]["augment"] == "noise:color=white,folder=,seed=0,snr=10.0"
    assert one.config["train"]["augment_copies"] == 2 and one.run_id == two.run_id
    with pytest.raises(SerbenchError, match="-o train.augment_copies: set -o train.augment"):
        plan(RunRequest("fbank", "superb", protocol="synthetic", device="cpu", overrides=["train.augment_copies=3"]))
    with pytest.raises(SerbenchError, match="-o train.augment: unknown perturbation 'nois'"):
        plan(RunRequest("fbank", "superb", protocol="synthetic", device="cpu", overrides=["train.augment=nois:snr=10"]))


@pytest.mark.e2e
def test_a_bad_perturb_option_is_one_line_and_exit_2(tmp_path):
    from conftest import run_cli

    done = run_cli("run", "--upstream", "fbank", "--downstream", "superb", "--protocol", "synthetic", "--device", "cpu",
                   "--out", str(tmp_path), "--perturb", "noise:snr=loud")
    assert done.returncode == 2 and not list(tmp_path.iterdir())
    assert done.stderr.strip().count("\n") == 0 and "--perturb noise.snr: expected float, got 'loud'" in done.stderr
