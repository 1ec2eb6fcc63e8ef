"""Measured results beside the papers' reported rows: like with like only (same variant,
protocol, test split and metric, on a corpus the row can be checked against).

The results are copies of one real result.json (a one-epoch wavlm_cond run on a small
MSP-Podcast-like folder), edited into the runs each test needs."""

from __future__ import annotations

import copy
import json

import pytest

from serbench.api.errors import SerbenchError
from serbench.report import leaderboard
from serbench.report.leaderboard import beside_reported, pairing
from serbench.report.results import load_result
from serbench.run.registry import registry

from conftest import run_cli

DEV_SIZE = 24  # Development rows written below: the size of the real run's test split


@pytest.fixture(scope="module")
def real(tmp_path_factory) -> dict:
    """result.json of a real run: wavlm_cond, gender=sum, std pooling, MSP-Podcast Development."""
    from lookalike import write_msp_podcast

    root = tmp_path_factory.mktemp("real")
    rows = [[f"MSP-PODCAST_{k * 100 + n:04d}.wav", "ASHUFDCN"[n % 8], "4.2", "3.0", "5.5", str(100 + 10 * k + n % 6),
             ("Female", "Male")[n % 6 % 2], split]
            for k, split in enumerate(("Train", "Development", "Test1")) for n in range(DEV_SIZE)]
    write_msp_podcast(root / "msp", rows)
    done = run_cli("run", "--upstream", "fbank", "--downstream", "wavlm_cond", "--protocol", "msp_podcast",
                   "--data", str(root / "msp"), "--pooling", "std", "-o", "protocol.test_set=Development",
                   "-o", "downstream.gender=sum", "-o", "train.max_epochs=1", "--out", str(root / "runs"))
    assert done.returncode == 0, done.stderr
    (result,) = (root / "runs").glob("*/result.json")
    return json.loads(result.read_text())


def _copy(real, tmp_path, run_id, downstream=None, protocol=None, params=None, loss=None, pooling=None, ua=None):
    """A copy of the real result, written as run ``run_id`` with the given edits; ``params``
    maps a section (protocol, downstream) to the values that replace it."""
    data = copy.deepcopy(real)
    data["run_id"] = run_id
    config = data["config"]
    for key, value in (("downstream", downstream), ("protocol", protocol), ("loss", loss), ("pooling", pooling)):
        if value is not None:
            config[key] = value
    for section, values in (params or {}).items():
        config["params"][section] = values
    if ua is not None:
        data["summary"]["ua"] = {**data["summary"]["ua"], "mean": ua, "ci95": [ua - 0.02, ua + 0.02]}
    (tmp_path / run_id).mkdir()
    (tmp_path / run_id / "result.json").write_text(json.dumps(data))
    return load_result(tmp_path / run_id)


def _defaults(method: str) -> dict:
    return {p.name: p.default for p in registry().get("downstream", method).params}


def _gmp_atl(real, tmp_path, run_id, loss="am_softmax", **downstream):
    """A gmp_atl run on IEMOCAP 5-fold, five folds of the published 5531 utterances."""
    result = _copy(real, tmp_path, run_id, downstream="gmp_atl", protocol="iemocap_5fold", loss=loss, pooling="own",
                   params={"protocol": {"merge_excited": True, "dev": "fraction", "dev_fraction": 0.2, "seed": 0},
                           "downstream": {**_defaults("gmp_atl"), **downstream}}, ua=0.75)
    base = result.data["folds"][0]
    result.data["folds"] = [{**base, "fold": session, "n_test": n} for session, n in sorted(_sessions().items())]
    return result


def _sessions() -> dict[str, int]:
    """Utterances per IEMOCAP session in EmoBox's reference list of the 4-class task (5531 in all)."""
    from collections import Counter

    from lookalike import reference_records

    return dict(Counter(record["wav"].split("/")[2][-1] for record in reference_records()))


def _rows(text):
    """The table's body rows as dicts keyed by header."""
    lines = [line for line in text.split("\n\n")[0].splitlines() if line.startswith("|") and "---" not in line]
    if not lines:
        return []
    cells = [[cell.strip() for cell in line.strip("|").split("|")] for line in lines]
    return [dict(zip(cells[0], row)) for row in cells[1:]]


@pytest.mark.e2e
def test_a_gender_sum_run_stands_beside_the_sum_row_only(real, tmp_path):
    run = _copy(real, tmp_path, "sum")
    rows = _rows(beside_reported([run], registry()))
    # of the paper's twelve Development rows (three poolings, five gender modes, three text
    # modes, one fusion), the one with gender=sum, text none, std pooling and a linear projection
    assert [r["reported variant"] for r in rows] == ["gender=sum"]
    found = pairing(run, registry())
    assert [row["variant"] for row, _ in found.not_comparable] == ["gender=sum"] and not found.pairs


@pytest.mark.e2e
def test_a_variant_the_paper_did_not_report_pairs_with_nothing_and_says_why(real, tmp_path):
    mlp = _copy(real, tmp_path, "mlp", params={"downstream": {**_defaults("wavlm_cond"), "gender": "sum", "projection": "mlp"}})
    sum_mean = _copy(real, tmp_path, "summean", pooling="mean")
    text = beside_reported([mlp, sum_mean], registry())
    assert not _rows(text)
    assert ("mlp (wavlm_cond, msp_podcast / Development): the paper reports no row of its variant (fused_runs=0 "
            "pooling=std downstream.gender=sum downstream.text=none downstream.projection=mlp)") in text
    assert "summean (wavlm_cond, msp_podcast / Development): the paper reports no row of its variant (fused_runs=0 pooling=mean" in text


@pytest.mark.e2e
def test_a_small_msp_podcast_copy_is_shown_not_comparable_with_its_reason(real, tmp_path):
    run = _copy(real, tmp_path, "tiny")
    text = beside_reported([run], registry())
    (row,) = _rows(text)
    assert row["reported (%)"] == "not comparable [1]" and row["measured (%)"].startswith("0.00")
    assert row["reported on"] == "MSP-Podcast, release not stated; Development, size not stated"
    assert ("[1] the paper does not state which MSP-Podcast release it used (release not stated), so no copy "
            "can be checked against it") in text
    assert "32.00" not in text  # the paper's number is not printed as if it stood beside this run


@pytest.mark.e2e
def test_the_test_split_size_is_checked_against_the_rows_stated_release_and_size(real, tmp_path):
    run = _copy(real, tmp_path, "sized")
    reported = registry().get("downstream", "wavlm_cond").meta.reported
    stated = {**next(r for r in reported if r["variant"] == "gender=sum"), "release": "v1.11"}
    assert leaderboard._corpus_mismatch({**stated, "n_test": 19815}, run) == (
        "its test split has 24 utterances; the paper's (MSP-Podcast v1.11, Development) has 19815")
    assert leaderboard._corpus_mismatch({**stated, "n_test": DEV_SIZE}, run) == ""
    assert leaderboard.test_size(run) == DEV_SIZE == run.data["folds"][0]["n_test"]


@pytest.mark.e2e
def test_a_matching_variant_pairs_and_its_neighbours_do_not(real, tmp_path):
    reg = registry()
    full = _gmp_atl(real, tmp_path, "full")
    ce = _gmp_atl(real, tmp_path, "ce", loss="ce")
    layer = _gmp_atl(real, tmp_path, "layer4", layer=-4)
    bare = _gmp_atl(real, tmp_path, "bare", multitask=False, pseudo_labels=False, layer=-6)  # layer unused without GMPs
    assert leaderboard.test_size(full) == sum(_sessions().values()) == 5531
    paired = {r.run_id: sorted({row["variant"] for row in pairing(r, reg).pairs}) for r in (full, ce, layer, bare)}
    assert paired == {"full": ["full (layer -3)"], "ce": ["GMPs + CE"], "layer4": ["layer -4"], "bare": ["AMS without GMPs"]}
    rows = _rows(beside_reported([full], reg))
    assert [(r["reported variant"], r["metric"], r["reported (%)"]) for r in rows] == [
        ("full (layer -3)", "UA", "82.00"), ("full (layer -3)", "WA", "80.00")]
    assert rows[0]["measured (%)"] == "75.00 ± 2.00" and rows[0]["test split"] == "test session"


@pytest.mark.e2e
def test_a_fusion_row_pairs_with_a_fused_result_of_five_runs_only(real, tmp_path):
    reg = registry()
    runs = [_copy(real, tmp_path, f"m{k}") for k in range(5)]
    fused = _copy(real, tmp_path, "fused", downstream="fusion(" + ", ".join(r.run_id for r in runs) + ")", pooling="",
                  loss="", params={})
    fused.data["config"].update(pooling=None, loss=None, fused_runs=[r.run_id for r in runs])
    del fused.data["config"]["params"]
    found = pairing(fused, reg, runs)
    assert [row["variant"] for row, _ in found.not_comparable] == ["fusion of five models"]
    assert all(row["variant"] == "gender=sum" for r in runs for row, _ in pairing(r, reg, [fused]).not_comparable)
    pair = copy.deepcopy(fused.data)
    pair["config"]["fused_runs"] = pair["config"]["fused_runs"][:2]
    two = type(fused)(pair, tmp_path / "two")
    assert "the paper reports no row of its variant (fused_runs=2" in pairing(two, reg, runs).why
    assert pairing(fused, reg, runs[:4]).why == (
        "a fusion of runs not among the results given (m4): which method and test split it answers to is unknown")


@pytest.mark.e2e
def test_a_result_stands_beside_its_own_protocol_and_split_only(real, tmp_path):
    five_fold = _gmp_atl(real, tmp_path, "a")
    loso = _gmp_atl(real, tmp_path, "b")
    loso.data["config"]["protocol"] = "iemocap_loso10"
    text = beside_reported([five_fold, loso], registry())
    assert {r["protocol"] for r in _rows(text)} == {"iemocap_5fold"}
    assert "b (gmp_atl, iemocap_loso10 / test speaker): the paper reports iemocap_5fold / test session only" in text


@pytest.mark.e2e
def test_a_test_set_result_is_not_paired_with_development_numbers(real, tmp_path):
    test1 = _copy(real, tmp_path, "t1", params={"protocol": {"test_set": "Test1", "dev_fraction": 0.1, "seed": 0}})
    text = beside_reported([test1], registry())
    assert not _rows(text)
    assert "t1 (wavlm_cond, msp_podcast / Test1): the paper reports msp_podcast / Development only" in text


@pytest.mark.e2e
def test_leaderboard_command_puts_results_beside_reported(real, tmp_path):
    result = _gmp_atl(real, tmp_path, "c")
    (result.run_dir / "result.json").write_text(json.dumps(result.data))
    done = run_cli("leaderboard", str(result.run_dir), "--reported")
    assert done.returncode == 0, done.stderr
    header = done.stdout.splitlines()[0]
    assert "reported variant" in header and "reported on" in header and "75.00 ± 2.00" in done.stdout


@pytest.mark.e2e
def test_the_reported_table_shows_settings_release_and_split(real, tmp_path):
    text = leaderboard.reported(registry())
    line = next(row for row in _rows(text) if row["variant"] == "gender=sum")
    assert line["corpus"] == "MSP-Podcast, release not stated" and line["test split"] == "Development, size not stated"
    assert line["settings"] == "pooling=std downstream.gender=sum downstream.text=none downstream.projection=linear"


def test_every_reported_setting_names_a_parameter_and_one_of_its_values():
    reg = registry()
    for name, spec in reg.specs["downstream"].items():
        params = {f"downstream.{p.name}": p for p in spec.params}
        for row in spec.meta.reported:
            leaderboard.check_reported_row(name, spec, row)
            assert row["settings"], row  # every row says what defines it
            for key, value in row["settings"].items():
                if key in params:
                    param = params[key]
                    assert isinstance(value, param.type) and (not param.choices or value in param.choices), (row, key)
                elif key == "pooling":
                    assert value in reg.specs["pooling"], row
                elif key == "loss":
                    assert value in reg.specs["loss"], row


def test_a_setting_that_names_no_parameter_is_refused():
    spec = registry().get("downstream", "wavlm_cond")
    row = {**spec.meta.reported[0], "settings": {"downstream.gendre": "sum"}}
    with pytest.raises(SerbenchError, match="downstream wavlm_cond: reported row 'pooling=mean': settings key "
                                            "downstream.gendre is not pooling, loss, fused_runs or one of its"):
        leaderboard.check_reported_row("wavlm_cond", spec, row)


@pytest.mark.e2e
def test_the_site_puts_reported_rows_beside_like_results_only(real, tmp_path):
    from serbench.report.leaderboard import reported_for
    from serbench.report.site import _reported_rows

    reg = registry()
    dev = _copy(real, tmp_path, "dv")
    assert reported_for(dev, reg)[1] == []  # not comparable: the paper states no MSP-Podcast release
    full = _gmp_atl(real, tmp_path, "full")
    rows = _reported_rows(full, reported_for(full, reg)[1])
    assert [row["downstream"] for row in rows] == ["gmp_atl (reported: full (layer -3))"]
    assert [cell["text"] for cell in rows[0]["metrics"]][:2] == ["82.00", "80.00"]


@pytest.mark.e2e
def test_a_run_on_a_corpus_copy_that_differs_from_the_published_counts_is_marked_and_never_paired(real, tmp_path):
    from serbench.report.leaderboard import markdown

    differs = _gmp_atl(real, tmp_path, "d")
    differs.data["annotations"] = {"corpus_differs": ["total: 5530 here, 5531 published"]}
    text = beside_reported([differs], registry())
    assert not _rows(text) and "d (gmp_atl, iemocap_5fold / test session): its copy of the corpus differs" in text
    assert "CORPUS DIFFERS from the published counts" in markdown([differs])


@pytest.mark.e2e
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
