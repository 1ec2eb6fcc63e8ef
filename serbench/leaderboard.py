"""Result files to publishable tables: ``mean ± half-width`` of the 95% interval, in percent."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from tabulate import tabulate

from serbench.errors import SerbenchError

if TYPE_CHECKING:  # results pulls in pandas and scipy: not needed to build the CLI
    from serbench.results import Result

COLUMNS = {"ua": "UA", "wa": "WA", "macro_f1": "macro-F1"}
CI_KINDS = ("t", "bootstrap")


def cell(entry: dict, ci: str) -> str:
    """``73.87 ± 2.53``; the bootstrap interval may be asymmetric, so its half-width is half
    its length. With one fold the t interval does not exist and the cell says so."""
    interval = entry["ci95"] if ci == "t" else entry["ci95_bootstrap"]
    mean = entry["mean"] * 100
    if interval is None:
        return f"{mean:.2f} (1 fold)"
    return f"{mean:.2f} ± {(interval[1] - interval[0]) * 50:.2f}"


def _check_ci(ci: str) -> None:
    if ci not in CI_KINDS:
        raise SerbenchError(f"--ci {ci!r}: expected one of {', '.join(CI_KINDS)}")


def rows(results: Sequence[Result], ci: str = "t") -> list[list[str]]:
    _check_ci(ci)
    ordered = sorted(
        results,
        key=lambda r: (r.data["config"]["protocol"], -r.summary[r.data.get("main_metric", "ua")]["mean"]),
    )
    table = []
    for r in ordered:
        config = r.data["config"]
        table.append(
            [config["protocol"], config["upstream"], config["downstream"], config["pooling"], ",".join(map(str, config["seeds"]))]
            + [cell(r.summary[m], ci) for m in COLUMNS]
        )
    return table


def markdown(results: Sequence[Result], ci: str = "t") -> str:
    """A GitHub-flavoured markdown table, one row per run, best first within a protocol."""
    headers = ["protocol", "upstream", "downstream", "pooling", "seeds"] + [f"{name} (%)" for name in COLUMNS.values()]
    note = "Student-t over folds" if ci == "t" else "speaker-level bootstrap"
    body = tabulate(rows(results, ci), headers=headers, tablefmt="pipe", disable_numparse=True)
    return f"{body}\n\nValues: mean ± half-width of the 95% confidence interval ({note}).\n"


REPORTED_FIELDS = ("protocol", "split", "encoder", "pooling", "metric", "value", "unit")
UNITS = {"%": 1.0, "fraction": 100.0}


def reported(reg) -> str:
    """The papers' own numbers, from each downstream's ``meta['reported']``, for reading
    beside what serbench measures: every value in percent (a paper's fractions converted and
    marked), with the protocol, test split, encoder and pooling each row was measured with."""
    table, notes = [], []
    for name in sorted(reg.specs["downstream"]):
        spec = reg.specs["downstream"][name]
        for row in spec.meta.get("reported", []):
            missing = [k for k in REPORTED_FIELDS if k not in row]
            if missing or row["unit"] not in UNITS:
                raise SerbenchError(f"downstream {name}: a reported row lacks {missing or ['a known unit']} ({row})")
            scale = UNITS[row["unit"]]
            ci = row.get("ci95")
            mark = " (from 0–1)" if row["unit"] == "fraction" else ""
            caveat = row.get("caveat")
            if caveat and caveat not in notes:
                notes.append(caveat)
            table.append([spec.meta.get("paper", spec.citation), name, row.get("variant", ""), row["protocol"],
                          row["split"], row["encoder"], row["pooling"], row["metric"],
                          f"{row['value'] * scale:.2f}{mark}" + (f" [{notes.index(caveat) + 1}]" if caveat else ""),
                          f"[{ci[0] * scale:.2f}, {ci[1] * scale:.2f}]" if ci else ""])
    headers = ["paper", "downstream", "variant", "protocol", "test split", "encoder", "pooling", "metric", "reported (%)", "95% CI (%)"]
    body = tabulate(table, headers=headers, tablefmt="pipe", disable_numparse=True)
    footnotes = "".join(f"\n[{k}] {note}." for k, note in enumerate(notes, start=1))
    return (f"{body}\n\nNumbers as published by each method's authors (their encoders, recipes and splits), not "
            f"measured by serbench; in percent.{footnotes}\n")


def test_split(reg, protocol: str, params: dict) -> str | None:
    """What a run's folds were scored on, from its protocol's ``meta['test_split']`` (a
    template over the protocol's parameters); None when the protocol does not say."""
    spec = reg.specs["protocol"].get(protocol)
    template = spec.meta.get("test_split") if spec else None
    return template.format(**params) if template else None


def beside_reported(results: Sequence[Result], reg, ci: str = "t") -> str:
    """Each measured result beside its method's reported rows, paired only like with like:
    same downstream, protocol, test split and metric. A result with no such row is listed
    under the table with the reason, never paired with another protocol's or split's number."""
    _check_ci(ci)
    table, unpaired = [], []
    for r in sorted(results, key=lambda r: (r.data["config"]["downstream"], r.data["config"]["protocol"])):
        config = r.data["config"]
        method, protocol = config["downstream"], config["protocol"]
        split = test_split(reg, protocol, config["params"]["protocol"])
        spec = reg.specs["downstream"].get(method)
        candidates = spec.meta.get("reported", []) if spec else []
        pairs = [row for row in candidates
                 if split is not None and row["protocol"] == protocol and row["split"] == split and row["metric"] in r.summary]
        if not pairs:
            seen = sorted({f"{row['protocol']} / {row['split']}" for row in candidates})
            unpaired.append(f"{r.data['run_id']} ({method}, {protocol} / {split or 'test split not declared'}): "
                            + (f"the paper reports {', '.join(seen)} only" if seen else "no reported numbers"))
            continue
        recipe = (config.get("recipe") or {}).get("name", "")
        for row in pairs:
            scale = UNITS[row["unit"]]
            table.append([method, protocol, split, COLUMNS.get(row["metric"], row["metric"]),
                          ", ".join([config["upstream"], config["pooling"]] + ([f"recipe {recipe}"] if recipe else [])),
                          cell(r.summary[row["metric"]], ci), row.get("variant", ""), f"{row['encoder']}, {row['pooling']}",
                          f"{row['value'] * scale:.2f}"])
    headers = ["downstream", "protocol", "test split", "metric", "measured with", "measured (%)", "reported variant",
               "reported with", "reported (%)"]
    note = "Student-t over folds" if ci == "t" else "speaker-level bootstrap"
    body = tabulate(table, headers=headers, tablefmt="pipe", disable_numparse=True) if table else "(no result pairs with a reported row)"
    tail = "".join(f"\n- {line}" for line in unpaired)
    return (f"{body}\n\nMeasured: mean ± half-width of the 95% confidence interval ({note}); reported: as published "
            f"(in percent). Rows pair only the same protocol, test split and metric."
            + (f"\n\nNot paired:{tail}" if unpaired else "") + "\n")
