"""What may be ranked together, and how a ranked system is named.

A ranking, a "≈ best" mark or a paired test means something only between results that share a
comparability key (:func:`serbench.report.results.comparability`: protocol, corpus digest, classes,
test split, metric definitions). A protocol's name is not enough: one ``csv`` or ``emobox``
protocol reads many corpora, and one corpus can be read with other classes or another test
set. Every table, the site and the forest plot therefore split their results into
:func:`groups`, rank within each, and say so when given results span several.

A system's label (:func:`system_label`) must tell two poolings, two override sets or two
plugin versions of one method apart, or a reader cannot tell which row is which.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:  # results pulls in pandas and scipy: not needed to build the CLI
    from serbench.report.results import Result

LABEL_KINDS = ("downstream", "upstream", "pooling", "loss")


def clipped(interval: Sequence[float] | None) -> list[float] | None:
    """An interval as displayed: inside [0, 1], the range of every metric shown (a t interval
    near 0 or 1 overshoots it, and results written before intervals were clipped at the source
    still hold such bounds); None stays None."""
    return None if interval is None else [min(max(float(bound), 0.0), 1.0) for bound in interval]


def user_overrides(result: Result) -> str:
    """``section.key=value`` for each ``-o`` the user gave (config.overrides), without where it
    ran (the executor section moves no score); '' when none."""
    overrides = result.data["config"].get("overrides") or {}
    user = {f"{section}.{key}": value for section, values in overrides.items() if section != "executor"
            for key, value in values.items()}
    return ", ".join(f"{k}={v}" for k, v in sorted(user.items()))


def versions(result: Result) -> str:
    """Each plugin's version, the system's own first, as ``superb 1, fbank 1, mean 1, ce 1,
    synthetic 1`` (a bumped version can move scores, so two versions of one plugin are two
    systems)."""
    plugins, config = result.data.get("plugins") or {}, result.data["config"]
    first = [config[kind] for kind in LABEL_KINDS if config.get(kind) in plugins]
    names = list(dict.fromkeys(first + list(plugins)))
    return ", ".join(f"{name} {plugins[name]}" for name in names)


def system_label(result: Result) -> str:
    """Short but distinct: downstream, upstream, pooling and loss each with its plugin version,
    the recipe, and the user's overrides, e.g. ``superb v1 · fbank v1 · attention v2 · ce v1 ·
    recipe shared · train.lr=0.001``."""
    config, plugins = result.data["config"], result.data.get("plugins") or {}
    parts = [f"{config[kind]} v{plugins[config[kind]]}" if config[kind] in plugins else str(config[kind])
             for kind in LABEL_KINDS if config.get(kind)]
    recipe = (config.get("recipe") or {}).get("name")
    return " · ".join(filter(None, parts + [f"recipe {recipe}" if recipe else "", user_overrides(result)]))


class Group(NamedTuple):
    """Results that share one comparability key, best first on ``metric``."""

    comparability: dict
    results: list
    metric: str

    @property
    def key(self) -> str:
        return self.comparability["key"]

    @property
    def heading(self) -> str:
        return heading(self.comparability)


def heading(comparability: dict) -> str:
    """A group's heading, short: ``synthetic · corpus 3f2a9c1e · classes neutral, happy, angry,
    sad · test: test session · key 0a1b2c3d4e`` (a long class list is cut, the key still tells
    groups apart)."""
    from serbench.report.results import CORPUS_UNKNOWN, METRIC_DEFINITIONS

    corpus = comparability["corpus"]
    classes = ", ".join(comparability["classes"])
    if len(classes) > 48:
        classes = f"{len(comparability['classes'])}: {classes[:44]}…"
    parts = [comparability["protocol"], f"corpus {corpus if corpus.startswith(CORPUS_UNKNOWN) else corpus[:8]}",
             f"classes {classes}"]
    if comparability["test_split"]:
        parts.append(f"test: {comparability['test_split']}")
    if comparability.get("corpora"):  # a cross-corpus run: its corpora by role and name
        parts.append(" ".join(c.partition("=")[0] for c in comparability["corpora"]))
    if comparability.get("task"):  # only another task than categorical is recorded
        parts.append(f"task {comparability['task']}")
    if comparability.get("precision"):  # only another extraction precision than fp32 is recorded
        parts.append(f"extracted in {comparability['precision']}")
    if comparability["metrics"] != METRIC_DEFINITIONS:
        parts.append(f"metrics {comparability['metrics']}")
    return " · ".join(parts + [f"key {comparability['key']}"])


def groups(results: Sequence[Result]) -> list[Group]:
    """``results`` split by comparability key, each group best first on its main metric; groups
    ordered by protocol, then corpus. A group whose runs name different main metrics (a csv
    protocol's ``main_metric`` parameter) is ranked on UA, the metric every protocol has."""
    from serbench.report.results import comparability_of

    by_key: dict[str, tuple[dict, list]] = {}
    for r in results:
        found = comparability_of(r)
        by_key.setdefault(found["key"], (found, []))[1].append(r)
    out = []
    for found, members in by_key.values():
        metrics = {r.data.get("main_metric", "ua") for r in members}
        metric = metrics.pop() if len(metrics) == 1 else "ua"
        out.append(Group(found, sorted(members, key=lambda r: -r.summary[metric]["mean"]), metric))
    return sorted(out, key=lambda g: (g.comparability["protocol"], g.comparability["corpus"], g.key))


def ordered(results: Sequence[Result]) -> list[Result]:
    """Runs group by group (:func:`groups`), best first within each: the order of every table."""
    return [r for group in groups(results) for r in group.results]


def mixed_warning(found: Sequence[Group]) -> str:
    """The line that keeps a table of several comparability groups from passing as one ranking
    ('' for one group)."""
    if len(found) < 2:
        return ""
    runs = sum(len(g.results) for g in found)
    return (f"WARNING: these {runs} results span {len(found)} comparability groups (protocol, corpus, classes, test "
            "split or metric definitions differ); each group is ranked on its own, and no number is comparable "
            "across groups.")
