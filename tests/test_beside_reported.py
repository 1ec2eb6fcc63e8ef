"""Measured results beside the papers' reported rows: like with like only."""

from __future__ import annotations

import json

from serbench.leaderboard import beside_reported
from serbench.registry import registry
from serbench.results import Result

from conftest import run_cli


def _result(tmp_path, downstream, protocol, protocol_params, ua=0.7, run_id="run"):
    entry = lambda mean: {"mean": mean, "std": 0.01, "ci95": [mean - 0.02, mean + 0.02],  # noqa: E731
                          "ci95_bootstrap": [mean - 0.03, mean + 0.01]}
    data = {"run_id": run_id, "main_metric": "ua",
            "config": {"upstream": "hubert_base", "downstream": downstream, "pooling": "own", "protocol": protocol, "seeds": [0],
                       "params": {"protocol": protocol_params}, "recipe": {"name": "paper"}},
            "summary": {"ua": entry(ua), "wa": entry(ua - 0.01), "macro_f1": entry(ua - 0.02)}}
    return Result(data, tmp_path / run_id)


def _rows(text):
    """The table's body rows as lists of cells."""
    lines = [line for line in text.splitlines() if line.startswith("|") and "---" not in line][1:]
    return [[cell.strip() for cell in line.strip("|").split("|")] for line in lines]


def test_a_result_stands_beside_its_own_protocol_and_split_only(tmp_path):
    reg = registry()
    five_fold = _result(tmp_path, "gmp_atl", "iemocap_5fold", {"merge_excited": True}, run_id="a")
    loso = _result(tmp_path, "gmp_atl", "iemocap_loso10", {"merge_excited": True}, run_id="b")
    text = beside_reported([five_fold, loso], reg)
    rows = _rows(text)
    reported = [r for r in reg.get("downstream", "gmp_atl").meta.reported if r["protocol"] == "iemocap_5fold"]
    assert len(rows) == len(reported)  # every 5-fold row once, the 10-fold result never
    assert all(r[1:3] == ["iemocap_5fold", "test session"] for r in rows)
    full_ua = next(r for r in rows if r[6] == "full (layer -3)" and r[3] == "UA")
    assert full_ua[5] == "70.00 ± 2.00" and full_ua[8] == "82.00"
    assert "b (gmp_atl, iemocap_loso10 / test speaker): the paper reports iemocap_5fold / test session only" in text


def test_a_test_set_result_is_not_paired_with_development_numbers(tmp_path):
    reg = registry()
    test1 = _result(tmp_path, "wavlm_cond", "msp_podcast", {"test_set": "Test1"}, run_id="t1")
    dev = _result(tmp_path, "wavlm_cond", "msp_podcast", {"test_set": "Development"}, run_id="dv")
    text = beside_reported([test1, dev], reg)
    rows = _rows(text)
    assert rows and all(r[2] == "Development" and r[3] == "macro-F1" for r in rows)
    assert "t1 (wavlm_cond, msp_podcast / Test1): the paper reports msp_podcast / Development only" in text
    assert "32.00" in text  # gender=sum, reported as 0.32, shown in percent


def test_leaderboard_command_puts_results_beside_reported(tmp_path):
    result = _result(tmp_path, "gmp_atl", "iemocap_5fold", {"merge_excited": True}, ua=0.75, run_id="c")
    result.run_dir.mkdir()
    (result.run_dir / "result.json").write_text(json.dumps({**result.data, "schema": "serbench.result/1"}))
    done = run_cli("leaderboard", str(result.run_dir), "--reported")
    assert done.returncode == 0, done.stderr
    assert "reported variant" in done.stdout.splitlines()[0] and "75.00 ± 2.00" in done.stdout


def test_the_site_puts_reported_rows_beside_like_results_only(tmp_path):
    from serbench.leaderboard import reported_for
    from serbench.site import _reported_rows

    reg = registry()
    test1 = _result(tmp_path, "wavlm_cond", "msp_podcast", {"test_set": "Test1"}, run_id="t1")
    dev = _result(tmp_path, "wavlm_cond", "msp_podcast", {"test_set": "Development"}, run_id="dv")
    assert _reported_rows(test1, reported_for(test1, reg)[1]) == []  # a Test1 run beside no Development number
    rows = _reported_rows(dev, reported_for(dev, reg)[1])
    assert rows and all(row["kind"] == "reported" for row in rows)
    assert all("(measured: hubert_base, own)" in row["upstream"] for row in rows)  # what differs is said
    shown = [cell["text"] for row in rows for cell in row["metrics"]]
    assert "32.00" in shown  # the paper's 0.32, in percent like the measured cells


def test_a_run_on_a_corpus_copy_that_differs_from_the_published_counts_is_marked_and_never_paired(tmp_path):
    from serbench.leaderboard import markdown

    differs = _result(tmp_path, "gmp_atl", "iemocap_5fold", {"merge_excited": True}, run_id="d")
    differs.data["annotations"] = {"corpus_differs": ["total: 5530 here, 5531 published"]}
    text = beside_reported([differs], registry())
    assert not _rows(text) and "d (gmp_atl, iemocap_5fold / test session): its copy of the corpus differs" in text
    assert "CORPUS DIFFERS from the published counts" in markdown([differs])


def test_a_run_records_and_warns_how_its_corpus_differs_from_the_published_counts(tmp_path):
    from lookalike import write_iemocap

    ids = [f"Ses0{s}{g}_impro01_{g}00{k}" for s in range(1, 6) for g in "FM" for k in range(4)]
    write_iemocap(tmp_path / "iemocap", [(i, ("neu", "ang", "sad", "hap")[int(i[-1])]) for i in ids])
    done = run_cli("run", "--upstream", "fbank", "--downstream", "superb", "--protocol", "iemocap_5fold",
                   "--data", str(tmp_path / "iemocap"), "-o", "train.max_epochs=1", "--out", str(tmp_path / "runs"))
    assert done.returncode == 0, done.stderr
    assert "WARNING: this copy of the corpus differs from iemocap_5fold as published (total: 40 here, 5531 published" in done.stderr
    (result,) = (tmp_path / "runs").glob("*/result.json")
    differs = json.loads(result.read_text())["annotations"]["corpus_differs"]
    assert differs[0] == "total: 40 here, 5531 published" and "speaker:05M: 4 here, 651 published" in differs
