"""``--task dimensional`` end to end on the synthetic corpus, and its refusals.

The result's CCC, Pearson r and MAE are recomputed from ``predictions.csv`` with audmetric and
scipy (not serbench's code), per fold and over every prediction together."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
from scipy import stats as scipy_stats

from serbench.api.errors import SerbenchError
from serbench.report.results import comparability
from serbench.run.plan import plan
from serbench.run.request import RunRequest

from conftest import run_cli

audmetric = pytest.importorskip("audmetric")
DIMS = ["arousal", "valence", "dominance"]
FAST = ["-o", "protocol.per_class=2", "-o", "train.max_epochs=3"]


@pytest.fixture(scope="module")
def dimensional_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs")
    done = run_cli("run", "--upstream", "fbank", "--downstream", "superb", "--protocol", "synthetic", "--task",
                   "dimensional", *FAST, "--out", str(out))
    assert done.returncode == 0, done.stderr
    (run_dir,) = out.iterdir()
    return done, run_dir


@pytest.mark.slow
def test_result_ccc_equals_ccc_recomputed_from_predictions(dimensional_run):
    _, run_dir = dimensional_run
    result = json.loads((run_dir / "result.json").read_text())
    frame = pd.read_csv(run_dir / "predictions.csv", dtype={"fold": str})
    assert result["task"] == "dimensional" and result["dimensions"] == DIMS and result["main_metric"] == "ccc_mean"
    assert result["config"]["loss"] == "mse"
    assert {f"{side}_{d}" for d in DIMS for side in ("pred", "true")} <= set(frame.columns)
    assert "prediction" not in frame.columns
    for record in result["folds"]:
        rows = frame[frame["fold"] == record["fold"]]
        assert len(rows) == record["n_test"]
        for d in DIMS:
            truth, guess = rows[f"true_{d}"].to_numpy(), rows[f"pred_{d}"].to_numpy()
            assert record["metrics"][f"ccc_{d}"] == pytest.approx(audmetric.concordance_cc(truth, guess), abs=1e-12)
            assert record["metrics"][f"pearson_{d}"] == pytest.approx(scipy_stats.pearsonr(guess, truth)[0], abs=1e-9)
            assert record["metrics"][f"mae_{d}"] == pytest.approx(audmetric.mean_absolute_error(truth, guess), abs=1e-12)
        assert record["metrics"]["ccc_mean"] == pytest.approx(np.mean([record["metrics"][f"ccc_{d}"] for d in DIMS]))
    for d in DIMS:
        per_fold = [audmetric.concordance_cc(g[f"true_{d}"], g[f"pred_{d}"]) for _, g in frame.groupby("fold")]
        entry = result["summary"][f"ccc_{d}"]
        assert entry["mean"] == pytest.approx(np.mean(per_fold), abs=1e-12)
        low, high = scipy_stats.t.interval(0.95, len(per_fold) - 1, np.mean(per_fold), scipy_stats.sem(per_fold))
        assert entry["ci95"] == pytest.approx([max(low, -1.0), min(high, 1.0)], abs=1e-9)
        assert entry["cluster"]["unit"] == "fold" and entry["speakers"] == 10
        assert result["overall"]["metrics"][f"ccc_{d}"] == pytest.approx(
            audmetric.concordance_cc(frame[f"true_{d}"], frame[f"pred_{d}"]), abs=1e-9)


@pytest.mark.slow
def test_targets_are_the_corpus_annotations_scaled(dimensional_run):
    """true_<dim> is the EmoEvaluation triple [V, A, D] of the generated tree, (x - 1) / 4."""
    _, run_dir = dimensional_run
    from serbench.api.user_config import cache_dir

    frame = pd.read_csv(run_dir / "predictions.csv").set_index("utterance_id")
    found = 0
    for path in (cache_dir() / "synthetic").glob("v1-n2-seed0/Session*/dialog/EmoEvaluation/*.txt"):
        for line in path.read_text().splitlines():
            if line.startswith("[") and "\t" in line:
                uid, triple = line.split("\t")[1], line.split("\t")[3]
                v, a, d = (float(x) for x in triple.strip("[]").split(","))
                row = frame.loc[uid]
                assert (row["true_valence"], row["true_arousal"], row["true_dominance"]) == pytest.approx(
                    ((v - 1) / 4, (a - 1) / 4, (d - 1) / 4), abs=1e-6)
                found += 1
    assert found == len(frame) == 80


@pytest.mark.slow
def test_run_table_shows_the_dimensional_metrics(dimensional_run):
    done, _ = dimensional_run
    for name in ("ccc_mean", "ccc_arousal", "pearson_valence", "mae_dominance"):
        assert name in done.stdout
    assert "UA" not in done.stdout


def test_categorical_configuration_has_no_task_key_and_its_comparability_key_is_unchanged():
    categorical = plan(RunRequest("fbank", "superb", None, None, "synthetic", None, [0], "cpu", ["protocol.per_class=2"]))
    dimensional = plan(RunRequest("fbank", "superb", None, None, "synthetic", None, [0], "cpu", ["protocol.per_class=2"],
                       task="dimensional"))
    assert "task" not in categorical.config and dimensional.config["task"]["name"] == "dimensional"
    assert categorical.run_id != dimensional.run_id
    import hashlib

    parts = {"protocol": "p", "corpus": "c", "classes": ["a", "b"], "test_split": None, "metrics": "serbench.metrics/1"}
    assert comparability("p", "c", ["a", "b"], None)["key"] == \
        hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:10]
    assert comparability("p", "c", ["a", "b"], None, task="dimensional: arousal")["key"] != \
        comparability("p", "c", ["a", "b"], None)["key"]


@pytest.mark.e2e  # refused as a user types it: the CLI in a subprocess
@pytest.mark.parametrize("args, message", [
    (["--downstream", "wap_la", "--task", "dimensional"], "downstream wap_la has no regression head"),
    (["--downstream", "superb", "--loss", "ccc"], "--loss ccc: it trains the dimensional task, not categorical"),
    (["--downstream", "superb", "--loss", "ce", "--task", "dimensional"], "--loss ce: it trains the categorical task"),
])
def test_refusals_in_one_line(args, message):
    done = run_cli("run", "--upstream", "fbank", "--protocol", "synthetic", *args, "--prepare")
    assert done.returncode != 0
    assert message in done.stderr and len(done.stderr.strip().splitlines()) == 1, done.stderr


def _csv_corpus(tmp_path, header: str, rows: list[str]):
    for k in range(len(rows)):
        sf.write(tmp_path / f"{k}.wav", np.zeros(1600, dtype=np.float32), 16000)
    (tmp_path / "corpus.csv").write_text(header + "\n" + "\n".join(rows) + "\n")
    return tmp_path / "corpus.csv"


@pytest.mark.e2e
def test_a_protocol_without_dimensions_refuses_the_task(tmp_path):
    rows = [f"{k}.wav,{'ab'[k % 2]},s{k},{k % 3 + 1}" for k in range(12)]
    data = _csv_corpus(tmp_path, "path,label,speaker,fold", rows)
    done = run_cli("run", "--upstream", "fbank", "--downstream", "superb", "--protocol", "csv", "--data", str(data),
                   "--task", "dimensional", "--prepare", "--out", str(tmp_path / "runs"))
    assert done.returncode != 0 and len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert "gives no arousal, valence or dominance values" in done.stderr


@pytest.mark.e2e
def test_a_partly_filled_dimension_column_names_the_line(tmp_path):
    rows = [f"{k}.wav,{'ab'[k % 2]},s{k},{k % 3 + 1},{'' if k == 4 else 3}" for k in range(12)]
    data = _csv_corpus(tmp_path, "path,label,speaker,fold,arousal", rows)
    done = run_cli("run", "--upstream", "fbank", "--downstream", "superb", "--protocol", "csv", "--data", str(data),
                   "--task", "dimensional", "--prepare", "--out", str(tmp_path / "runs"))
    assert done.returncode != 0 and len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert f"{data}:6: no arousal value" in done.stderr


def test_a_csv_subset_of_dimensions_is_what_the_run_regresses(tmp_path):
    from serbench.run.dimensional_task import dimensions_of
    from serbench.run.registry import registry

    rows = [f"{k}.wav,{'ab'[k % 2]},s{k},{k % 3 + 1},{1 + k % 5},{5 - k % 5}" for k in range(12)]
    data = _csv_corpus(tmp_path, "path,label,speaker,fold,valence,dominance", rows)
    the_plan = plan(RunRequest("fbank", "superb", None, None, "csv", str(data), [0], "cpu", [], task="dimensional"))
    protocol = the_plan.protocol()
    assert dimensions_of(protocol, list(protocol.utterances), registry().get("downstream", "superb")) == (
        "valence", "dominance")
    sap_gap = registry().get("downstream", "sap_gap")
    assert dimensions_of(protocol, list(protocol.utterances), sap_gap) == ("valence",)
    bad = _csv_corpus(tmp_path, "path,label,speaker,fold,valence", ["0.wav,a,s0,1,2", "1.wav,b,s1,2,nan"])
    with pytest.raises(SerbenchError, match=f"{bad}:3: valence nan is outside"):
        plan(RunRequest("fbank", "superb", None, None, "csv", str(bad), [0], "cpu", [], task="dimensional")).protocol()


def test_iemocap_reads_each_utterances_v_a_d_triple_exactly(tmp_path):
    """Look-alike files for the reference utterance list (every 7th utterance, so the test
    stays small), each with its own [V, A, D] triple, chosen so that any two of the three
    differ: reading A as V (or D) would fail. IEMOCAP's header names the order
    ``[V, A, D]``, and its annotator lines ``val; act; dom`` agree."""
    from serbench.api import iemocap_format as fmt

    from lookalike import reference_records, write_iemocap

    records = reference_records()[::7]
    ids = [r["key"].removeprefix("iemocap-") for r in records]
    triples = {uid: (1.0 + (k % 9) / 2, 1.0 + ((k + 3) % 9) / 2, 1.0 + ((k + 6) % 9) / 2) for k, uid in enumerate(ids)}
    write_iemocap(tmp_path, [(uid, r["emo"]) for uid, r in zip(ids, records)], vad=triples.get)
    utterances = {u.id: u for u in fmt.read_corpus(tmp_path, fmt.label_map())}
    assert set(utterances) == set(ids) and len(ids) > 700
    for uid, (v, a, d) in triples.items():
        assert utterances[uid].attributes == {"valence": (v - 1) / 4, "arousal": (a - 1) / 4, "dominance": (d - 1) / 4}


@pytest.mark.slow
def test_score_reproduces_the_runs_result_from_its_predictions(dimensional_run):
    from serbench.report.score import score_file

    _, run_dir = dimensional_run
    result = json.loads((run_dir / "result.json").read_text())
    scored = score_file(run_dir / "predictions.csv")
    assert scored["dimensions"] == DIMS and scored["metrics"] == result["metrics"]
    assert scored["summary"] == result["summary"]
    assert [r["metrics"] for r in scored["folds"]] == [f["metrics"] for f in result["folds"]]


def test_score_refuses_a_value_that_is_not_a_number_naming_the_line(tmp_path):
    from serbench.report.score import score_file

    table = tmp_path / "preds.csv"
    table.write_text("utterance_id,pred_arousal,true_arousal\na,0.5,0.25\nb,inf,0.5\n")
    with pytest.raises(SerbenchError, match=f"{table}:3: pred_arousal 'inf' is not a finite number"):
        score_file(table)
    table.write_text("utterance_id,pred_arousal,true_arousal,pred_valence\na,0.5,0.25,0.1\n")
    with pytest.raises(SerbenchError, match="'pred_valence' without its partner"):
        score_file(table)


def test_score_of_a_hand_made_table_matches_audmetric(tmp_path):
    rng = np.random.default_rng(0)
    truth = rng.uniform(0, 1, 40)
    guess = truth * 0.5 + rng.normal(0, 0.1, 40)
    table = tmp_path / "preds.csv"
    pd.DataFrame({"utterance_id": [f"u{k}" for k in range(40)], "pred_valence": guess, "true_valence": truth}).to_csv(
        table, index=False)
    from serbench.report.score import score_file

    scored = score_file(table)
    assert scored["summary"]["ccc_valence"]["mean"] == pytest.approx(audmetric.concordance_cc(truth, guess), abs=1e-6)
    assert scored["summary"]["mae_valence"]["mean"] == pytest.approx(audmetric.mean_absolute_error(truth, guess), abs=1e-6)


@pytest.mark.slow
def test_leaderboard_shows_a_dimensional_results_own_metrics(dimensional_run):
    import csv
    import io

    from serbench.report import leaderboard
    from serbench.report.results import load_result

    _, run_dir = dimensional_run
    result = load_result(run_dir)
    text = leaderboard.markdown([result])
    assert "ccc_arousal" in text and "UA (%)" not in text and "task dimensional: arousal, valence, dominance" in text
    mean = result.summary["ccc_valence"]["mean"]
    low, high = result.summary["ccc_valence"]["ci95"]
    assert f"{mean:.3f} ± {(high - low) / 2:.3f}" in text or f"{mean:.3f} [" in text
    (row,) = list(csv.DictReader(io.StringIO(leaderboard.csv_table([result]))))
    assert float(row["ccc_valence_mean"]) == pytest.approx(mean, abs=1e-4)
    assert float(row["mae_dominance_mean"]) == pytest.approx(result.summary["mae_dominance"]["mean"], abs=1e-4)


@pytest.mark.slow
def test_plot_and_the_site_show_a_dimensional_run(dimensional_run, tmp_path):
    _, run_dir = dimensional_run
    done = run_cli("plot", str(run_dir), "--format", "svg")
    assert done.returncode == 0, done.stderr
    assert {"forest.svg", "scatter.svg", "per_fold.svg"} <= {p.name for p in (run_dir / "figures").iterdir()}
    done = run_cli("leaderboard", str(run_dir), "--html", str(tmp_path / "site"))
    assert done.returncode == 0, done.stderr
    assert "ccc_arousal" in (tmp_path / "site" / "index.html").read_text()



def test_scoring_a_dimensional_table_imports_no_torch(tmp_path):
    import subprocess
    import sys

    path = tmp_path / "dims.csv"
    path.write_text("utterance_id,pred_valence,true_valence\na,0.1,0.2\nb,0.5,0.4\nc,0.9,0.7\n")
    probe = ("import sys; from serbench.cli.main import main; code = main(['score', sys.argv[1]]); "
             "print('torch' in sys.modules, code)")
    done = subprocess.run([sys.executable, "-c", probe, str(path)], capture_output=True, text=True)
    assert done.stdout.split()[-2:] == ["False", "0"], done.stderr
