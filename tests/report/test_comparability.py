"""Results are ranked, marked and compared within one comparability key only; systems get
distinct labels; intervals are shown clipped to [0, 100].

Three real runs on the embedded corpus: two poolings on one copy (``per_class=4``) and one on
another (``per_class=3``): the same protocol name, a different corpus."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
import shutil

import pytest

import serbench
from serbench.api.errors import SerbenchError
from serbench.report.leaderboard import csv_table, latex, markdown
from serbench.report.ranking import groups, system_label
from serbench.report.results import comparability_of, load_result

pytestmark = pytest.mark.e2e
SMALL = ["train.max_epochs=2"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs")
    made = {}
    for name, pooling, per_class in (("mean", "mean", 4), ("std", "std", 4), ("other", "mean", 3)):
        made[name] = serbench.run_benchmark("fbank", "superb", pooling=pooling, protocol="synthetic", out=out / name,
                                  overrides=SMALL + [f"protocol.per_class={per_class}"], recipe="shared")
    return made


def _copy(result, target, edit):
    """A copy of a real run directory whose result.json ``edit`` changed."""
    shutil.copytree(result.run_dir, target)
    data = json.loads((target / "result.json").read_text())
    edit(data)
    (target / "result.json").write_text(json.dumps(data))
    return load_result(target)


def test_a_run_records_its_comparability_key(runs):
    data = runs["mean"].data
    recorded = data["comparability"]
    corpus = json.loads((runs["mean"].run_dir / "corpus.json").read_text())["digest"]  # written when the run started
    assert recorded["protocol"] == "synthetic" and recorded["corpus"] == corpus
    assert recorded["classes"] == data["classes"] == ["neutral", "happy", "angry", "sad"]
    assert recorded["test_split"] == "test session"
    parts = {k: recorded[k] for k in ("protocol", "corpus", "classes", "test_split", "metrics")}
    assert recorded["key"] == hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:10]
    assert runs["std"].data["comparability"] == recorded  # another pooling: the same task
    assert runs["other"].data["comparability"]["corpus"] != corpus  # another corpus under one protocol name
    assert runs["other"].data["comparability"]["key"] != recorded["key"]


def _tables(text):
    """Each markdown table of ``text`` as (heading above it, [run ids of its rows])."""
    out, heading = [], None
    lines = text.splitlines()
    for k, line in enumerate(lines):
        if line.startswith("### "):
            heading = line[4:]
        if line.startswith("| protocol"):
            body = []
            for row in lines[k + 2:]:
                if not row.startswith("|"):
                    break
                body.append([c.strip() for c in row.strip("|").split("|")][9])  # the run column
            out.append((heading, body))
    return out


def test_two_corpora_of_one_protocol_never_share_a_markdown_ranking(runs):
    text = markdown(list(runs.values()))
    assert text.splitlines()[0].startswith("WARNING: these 3 results span 2 comparability groups")
    tables = _tables(text)
    assert len(tables) == 2
    by_run = {run: heading for heading, body in tables for run in body}
    assert by_run[runs["mean"].run_id] == by_run[runs["std"].run_id] != by_run[runs["other"].run_id]
    for heading, _ in tables:
        assert heading.startswith("synthetic · corpus ") and "key " in heading
    key = runs["other"].data["comparability"]["key"]
    assert sorted(body for _, body in tables) == sorted([[runs["other"].run_id], [
        r.run_id for r in sorted((runs["mean"], runs["std"]), key=lambda r: -r.summary["ua"]["mean"])]])
    assert f"key {key}" in by_run[runs["other"].run_id]
    one = markdown([runs["mean"], runs["std"]])  # one group: no warning, the table first, its group named
    assert not one.startswith("WARNING") and one.startswith("| protocol") and "Comparable group: synthetic" in one


def test_two_corpora_of_one_protocol_never_share_a_csv_ranking(runs):
    rows = list(csv.DictReader(io.StringIO(csv_table(list(runs.values())))))
    by_run = {row["run"]: row for row in rows}
    other, mean, std = (by_run[runs[k].run_id] for k in ("other", "mean", "std"))
    assert other["rank"] == "1"  # alone in its group, whatever its score beside the others
    assert {mean["rank"], std["rank"]} == {"1", "2"}
    best = max((runs["mean"], runs["std"]), key=lambda r: r.summary["ua"]["mean"])
    assert by_run[best.run_id]["rank"] == "1"
    assert mean["comparability"] == std["comparability"] == runs["mean"].data["comparability"]["key"]
    assert other["comparability"] == runs["other"].data["comparability"]["key"] != mean["comparability"]
    assert other["group"] != mean["group"]
    assert float(mean["ua_mean"]) == pytest.approx(runs["mean"].summary["ua"]["mean"] * 100, abs=1e-4)


def test_latex_puts_each_group_under_its_own_paragraph(runs):
    text = latex(list(runs.values()))
    assert text.count("\\paragraph{synthetic") == 2 and text.count("\\toprule") == 2
    assert "\\textbf{WARNING: these 3 results span 2 comparability groups" in text


def test_the_site_ranks_and_marks_within_one_key(runs, tmp_path):
    pytest.importorskip("matplotlib", reason="the site's figures need pip install 'serbench[plot]'")
    from serbench.report.site import build
    from serbench.run.registry import registry

    index = build(list(runs.values()), tmp_path / "site", registry()).read_text()
    assert "WARNING: these 3 results span 2 comparability groups" in index
    sections = re.split(r"<h2 ", index)[1:]
    assert len(sections) == 2
    keys = {k: runs[k].data["comparability"]["key"] for k in runs}
    by_key = {next(key for key in keys.values() if f'id="table-synthetic-{key}"' in s): s for s in sections}
    same, alone = by_key[keys["mean"]], by_key[keys["other"]]
    measured = lambda section: re.findall(r'<tr class="measured">.*?<code>([^<]+)</code>', section, re.S)  # noqa: E731
    assert sorted(measured(same)) == sorted([runs["mean"].run_id, runs["std"].run_id])
    assert measured(alone) == [runs["other"].run_id]
    assert "&#8776;best" in same  # a pair of one key is compared paired: the best of it is marked
    assert "cannot be compared paired" not in same
    for key, section in by_key.items():  # each group its own forest plot, labelled by system
        figure = re.search(r'<img src="(forest-[0-9a-f]+\.svg)"', section).group(1)
        assert figure == f"forest-{key}.svg"
    svg = (tmp_path / "site" / f"forest-{keys['mean']}.svg").read_text()
    assert "superb v1 · fbank v1 · mean v1" in svg and "superb v1 · fbank v1 · std v1" in svg


def test_compare_refuses_runs_of_different_keys(runs):
    from serbench.report.compare import compare

    a, b = runs["mean"], runs["other"]
    with pytest.raises(SerbenchError) as refused:
        compare([a.run_dir, b.run_dir])
    message = str(refused.value)
    assert str(a.run_dir) in message and str(b.run_dir) in message and "\n" not in message
    assert f"corpus {a.data['comparability']['corpus']} vs {b.data['comparability']['corpus']}" in message
    paired = compare([runs["mean"].run_dir, runs["std"].run_dir])  # one key: compared
    assert len(paired["comparisons"]) == 1


def test_labels_tell_two_poolings_and_two_override_sets_apart(runs, tmp_path):
    mean, std = system_label(runs["mean"]), system_label(runs["std"])
    assert mean != std
    assert mean == "superb v1 · fbank v1 · mean v1 · ce v1 · recipe shared · protocol.per_class=4, train.max_epochs=2"
    lr = _copy(runs["mean"], tmp_path / "lr", lambda d: d["config"]["overrides"]["train"].update(lr=0.001))
    assert system_label(lr) != mean and "train.lr=0.001" in system_label(lr)
    bumped = _copy(runs["mean"], tmp_path / "v2", lambda d: d["plugins"].update(mean="2"))
    assert system_label(bumped) != mean and "mean v2" in system_label(bumped)
    assert "mean 2" in markdown([bumped])  # the versions column


def test_a_macro_f1_interval_below_zero_is_shown_from_zero(runs, tmp_path):
    pytest.importorskip("matplotlib", reason="the site's figures need pip install 'serbench[plot]'")
    from serbench.report.site import build
    from serbench.run.registry import registry

    def low(data):  # as an older result (before clipping at the source) could hold it
        data["summary"]["macro_f1"].update(mean=0.02, ci95=[-0.03, 0.07], ci95_bootstrap=[-0.01, 0.05])

    poor = _copy(runs["mean"], tmp_path / "poor", low)
    row = next(line for line in markdown([poor]).splitlines() if poor.run_id in line)
    assert "| 2.00 [0.00, 7.00] |" in row  # the macro-F1 cell: not 2.00 ± 5.00, which claims -3
    assert "| 2.00 [0.00, 5.00]" in markdown([poor], ci="bootstrap")
    (line,) = csv.DictReader(io.StringIO(csv_table([poor])))
    assert (line["macro_f1_t_low"], line["macro_f1_t_high"]) == ("0.0000", "7.0000")
    assert line["macro_f1_boot_low"] == "0.0000"
    index = build([poor], tmp_path / "site", registry()).read_text()
    assert "2.00 [0.00, 7.00]" in index and "-3.00" not in index
    page = (tmp_path / "site" / "runs" / poor.run_id / "index.html").read_text()
    assert "[0.00, 7.00]" in page and "[0.00, 5.00]" in page and "-" + "3.00" not in page


def test_results_written_before_the_key_group_apart_with_the_corpus_unknown(runs, tmp_path):
    from serbench.report.compare import compare

    def forget(data):
        del data["comparability"]

    old_mean = _copy(runs["mean"], tmp_path / "old_mean", forget)
    old_std = _copy(runs["std"], tmp_path / "old_std", forget)
    fallback = comparability_of(old_mean)
    assert fallback["corpus"].startswith("unknown") and "per_class=4" in fallback["corpus"]
    assert fallback["classes"] == runs["mean"].data["classes"]
    assert comparability_of(old_std) == fallback  # old results of one task still rank together
    found = groups([old_mean, old_std, runs["mean"]])
    assert [len(g.results) for g in found] == [1, 2] or [len(g.results) for g in found] == [2, 1]
    assert any("corpus unknown" in g.heading for g in found)
    with pytest.raises(SerbenchError, match="rerun serbench finish on it"):
        compare([old_mean.run_dir, runs["std"].run_dir])


def test_a_damaged_comparability_record_is_named(runs, tmp_path):
    bad = _copy(runs["mean"], tmp_path / "bad", lambda d: d["comparability"].update(classes="neutral"))
    with pytest.raises(SerbenchError, match=r"bad/result\.json: comparability .*classes a list"):
        comparability_of(bad)
    forged = _copy(runs["mean"], tmp_path / "forged", lambda d: d["comparability"].update(key="../../evil"))
    assert comparability_of(forged)["key"] == runs["mean"].data["comparability"]["key"]  # recomputed, never trusted


def test_the_forest_plot_refuses_runs_of_several_keys(runs, tmp_path):
    pytest.importorskip("matplotlib", reason="plots need pip install 'serbench[plot]'")
    from serbench.report.plots import plot_systems

    with pytest.raises(SerbenchError, match="span 2 comparability groups"):
        plot_systems(list(runs.values()), tmp_path / "forest.svg")


def test_a_fusion_carries_its_runs_key_and_refuses_another(runs, tmp_path):
    from serbench.report.fusion import fuse

    fused = fuse([runs["mean"].run_dir, runs["std"].run_dir], tmp_path / "fused")
    assert fused.data["comparability"] == runs["mean"].data["comparability"]
    with pytest.raises(SerbenchError):
        fuse([runs["mean"].run_dir, runs["other"].run_dir], tmp_path / "refused")
