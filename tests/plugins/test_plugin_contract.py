"""The plugin contract checks itself: one test over every registered Spec, the import graph
(plugins import only the core), typed ``meta``, and outputs that break the contract named at
the first batch."""

from __future__ import annotations

import ast
import importlib.metadata
import importlib.util
import inspect
import math
from pathlib import Path

import pytest
import torch

from serbench.api.errors import SerbenchError
from serbench.api.meta import BY_KIND, DownstreamMeta, typed
from serbench.api.specs import Spec
from serbench.report.metrics import METRICS
from serbench.run.needs import KNOWN
from serbench.run.registry import registry

SERBENCH = Path(__file__).resolve().parents[2] / "serbench"
CONTEXT = {"upstream": 0, "downstream": 1, "pooling": 1, "loss": 2, "protocol": 1, "executor": 0, "perturbation": 0}
SPECS = [(kind, name) for kind, specs in registry().specs.items() for name in sorted(specs)]


def _spec(kind: str, name: str) -> Spec:
    return registry().specs[kind][name]


@pytest.mark.parametrize("kind, name", SPECS, ids=[f"{k}:{n}" for k, n in SPECS])
def test_every_spec_keeps_the_contract(kind, name):
    spec = _spec(kind, name)
    assert spec.summary.strip() and spec.version.isdigit(), "a summary, and a version that is a number"
    assert isinstance(spec.meta, BY_KIND[kind]), "registration types meta as its kind's dataclass"
    for param in spec.params:  # each default passes its own declaration
        assert param.coerce(param.default, f"{name}.{param.name}") == param.default or param.type is tuple
    factory = spec.load()
    signature = inspect.signature(factory)
    positional = CONTEXT[kind] + name.endswith(":")  # a prefix spec's factory gets the rest of the name first
    names = list(signature.parameters)[positional:]
    takes_any = any(p.kind is p.VAR_KEYWORD for p in signature.parameters.values())
    declared = {p.name for p in spec.params}
    if getattr(spec.meta, "reads_protocols", False):  # the host hands such a protocol its member-corpus loader
        declared_by_host = {"load_protocol"}
    else:
        declared_by_host = set()
    assert takes_any or declared <= set(names), f"params the factory does not take: {declared - set(names)}"
    required = {n for n in names if signature.parameters[n].default is inspect.Parameter.empty
                and signature.parameters[n].kind not in (inspect.Parameter.VAR_KEYWORD, inspect.Parameter.VAR_POSITIONAL)}
    assert required <= declared | declared_by_host, f"factory arguments no Param fills: {required - declared}"
    needs = spec.meta.needs if kind in ("downstream", "pooling", "loss") else ()
    needs = needs({p.name: p.default for p in spec.params}) if callable(needs) else needs
    assert set(needs) <= set(KNOWN)
    method = spec.meta if kind == "downstream" else DownstreamMeta()
    if method.paper or method.reported or method.recipe:
        assert spec.citation.strip(), "a method from a paper cites it"
    protocols = registry().specs["protocol"]
    for row in method.reported:
        assert row["protocol"] in protocols and row["metric"] in METRICS and row["unit"] in ("%", "fraction"), row
        low, high = row.get("ci95") or (row["value"], row["value"])
        top = 100 if row["unit"] == "%" else 1
        assert 0 <= low <= row["value"] <= high <= top and math.isfinite(row["value"]), row
        assert row.get("split") and row.get("encoder") and row.get("pooling"), row


def _modules_imported_by(module: str) -> set[str]:
    """The serbench_plugins modules ``module`` imports (read from its source)."""
    tree = ast.parse(Path(importlib.util.find_spec(module).origin).read_text())
    found = set()
    for node in ast.walk(tree):
        names = []
        if isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        found |= {n for n in names if n.startswith("serbench_plugins") and _is_module(n)}
    return found


def _is_module(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except ModuleNotFoundError:  # ``package.module.attribute``: an attribute, not a module
        return False


def test_no_plugin_imports_another_plugins_module():
    """A plugin is an entry point: its module, the modules its specs' factories name and what
    those import. No module may belong to two plugins (a shared block goes to the core), and the
    core imports no plugin."""
    reg = registry()
    points = {ep.name: ep.value for ep in importlib.metadata.entry_points(group="serbench") if ep.dist.name == "serbench"}
    owners: dict[str, set[str]] = {}
    for plugin, entry in points.items():
        roots = {entry}
        for specs in reg.specs.values():
            for spec in specs.values():
                if spec.plugin == plugin:
                    factory = spec.factory
                    module = (factory.partition(":")[0] if isinstance(factory, str)
                              else getattr(getattr(factory, "func", factory), "__module__", ""))
                    roots |= {module} if module.startswith("serbench_plugins") else set()
        seen, todo = set(), list(roots)
        while todo:
            module = todo.pop()
            if module not in seen:
                seen.add(module)
                todo += _modules_imported_by(module)
        for module in seen:
            owners.setdefault(module, set()).add(plugin)
    shared = {module: sorted(plugins) for module, plugins in owners.items() if len(plugins) > 1}
    assert not shared, f"modules used by more than one plugin (move what they share to the core): {shared}"
    core = [p.name for p in SERBENCH.rglob("*.py") if "serbench_plugins" in {
        n.split(".")[0] for node in ast.walk(ast.parse(p.read_text()))
        for n in ([node.module or ""] if isinstance(node, ast.ImportFrom) else
                  [a.name for a in node.names] if isinstance(node, ast.Import) else [])}]
    assert not core, f"core modules importing a plugin: {core}"


@pytest.mark.parametrize("kind, name", SPECS, ids=[f"{k}:{n}" for k, n in SPECS])
def test_every_spec_is_listed_with_its_parameters(kind, name, capsys):
    from serbench.cli.main import main

    assert main(["list", kind, name]) == 0
    shown = capsys.readouterr().out
    assert name in shown and all(p.name in shown for p in _spec(kind, name).params)


def _refusal(kind: str, meta) -> str:
    try:
        typed(kind, meta)
    except SerbenchError as exc:
        return str(exc)
    return ""


def test_meta_is_typed_per_kind_and_an_unknown_key_is_refused_with_a_suggestion():
    assert "did you mean 'default_pooling'" in _refusal("downstream", {"default_poolng": "mean"})
    assert "'trainable' is str, expected" in _refusal("upstream", {"trainable": "no"})
    assert "one of 'frozen', 'finetune'" in _refusal("downstream", {"upstream": "fine-tune"})
    assert "expected a dict or serbench.api.meta.PoolingMeta" in _refusal("pooling", DownstreamMeta())
    assert _refusal("pooling", {"needs": lambda params: ("vad",)}) == ""
    converted = typed("downstream", {"default_loss": "ce", "reported": [{"protocol": "x"}]})
    assert converted == DownstreamMeta(default_loss="ce", reported=({"protocol": "x"},))
    assert converted.default_pooling == "" and converted.upstream == "frozen"  # every key has its default


class _Wrong(torch.nn.Module):
    """A downstream that returns 5 logits for 4 classes."""

    def __init__(self, context, **_):
        super().__init__()
        self.out = torch.nn.Linear(context.dim, len(context.classes) + 1)

    def forward(self, batch):
        return {"logits": self.out(batch["features"].mean(dim=(1, 2)))}


class _Plain(_Wrong):
    """A downstream that returns a bare tensor instead of a dict."""

    def forward(self, batch):
        return self.out(batch["features"].mean(dim=(1, 2)))


class _WidePooling(torch.nn.Module):
    """A pooling whose output is wider than its declared out_dim."""

    def __init__(self, dim):
        super().__init__()
        self.out_dim = dim

    def forward(self, frames, mask, batch=None):
        return torch.cat([frames.mean(1), frames.mean(1)], dim=-1)


class _FlatFbank:
    """An upstream that returns [B, T, D] instead of UpstreamOutput's [L, B, T, D]."""

    def __new__(cls):
        from serbench_plugins.upstreams.fbank import Fbank

        class Flat(Fbank):
            def forward(self, wavs, lengths):
                out = super().forward(wavs, lengths)
                return type(out)(out.hidden_states[0], out.lengths)

        return Flat()


def _vector_loss(classes, counts):
    """A loss that returns one value per utterance instead of a scalar."""
    return lambda outputs, batch: torch.nn.functional.cross_entropy(outputs["logits"], batch["labels"], reduction="none")


@pytest.mark.parametrize("kind, plugin, message", [
    ("upstream", _FlatFbank, r"upstream bad \(Flat from test_plugin_contract\): hidden_states is \[\d+, \d+, 80\], expected 4-D"),
    ("loss", _vector_loss, r"loss bad \(function from builtins\): returned \[2\], expected a scalar tensor"),
    ("downstream", _Wrong, r"downstream bad \(_Wrong from test_plugin_contract\): logits are \[2, 5\], expected \[batch=2, classes=4\]"),
    ("downstream", _Plain, r"downstream bad \(_Plain from test_plugin_contract\): forward returned Tensor, expected a dict"),
    ("pooling", _WidePooling, r"pooling bad \(_WidePooling from test_plugin_contract\): returned \[2, 512\], expected \[batch, out_dim=256\]"),
])
def test_a_plugin_output_that_breaks_the_contract_is_named_at_the_first_batch(kind, plugin, message, tmp_path, monkeypatch):
    import serbench

    monkeypatch.setenv("SERBENCH_CACHE", str(tmp_path / "cache"))  # a bad upstream must not be served fbank's entries
    specs = registry().specs[kind]
    monkeypatch.setitem(specs, "bad", Spec(name="bad", factory=plugin, summary="x", plugin="acme",
                                           meta=typed(kind, {"trainable": False} if kind == "upstream" else {})))
    names = {"upstream": "fbank", "downstream": "superb", "pooling": None, "loss": None, kind: "bad"}
    with pytest.raises(SerbenchError, match=message):
        serbench.run_benchmark(names["upstream"], names["downstream"], pooling=names["pooling"], loss=names["loss"],
                     protocol="synthetic", out=tmp_path, overrides=["protocol.per_class=1", "train.max_epochs=1"])
    if kind != "upstream":  # (an upstream is caught while extracting, before any job)
        failures = list(tmp_path.glob("*/failed/*.json"))
        assert len(failures) == 1, "the run stops at the first job: the other four would fail alike"
        done = list(tmp_path.glob("*/jobs/*.json"))
        assert not done


WRONG_HEAD = '''
import torch
from serbench.api import DownstreamMeta, Spec, hookimpl


class FiveLogits(torch.nn.Module):
    def __init__(self, context):
        super().__init__()
        self.linear = torch.nn.Linear(context.dim, 5)

    def forward(self, batch):
        return {"logits": self.linear(batch["features"][:, -1].mean(1))}


@hookimpl
def register_downstreams():
    return [Spec(name="five_logits", factory=FiveLogits, summary="5 logits whatever the classes",
                 meta=DownstreamMeta(default_pooling="mean"))]
'''


@pytest.mark.e2e
def test_workers_start_no_job_after_one_broke_a_plugins_contract(tmp_path):
    """In a pool of workers (where the plugin is installed, as an entry point), the first jobs
    fail naming the plugin and the others are not started: they would fail alike."""
    from conftest import run_cli

    site = tmp_path / "site"
    site.mkdir()
    (site / "acme_head.py").write_text(WRONG_HEAD)
    info = site / "acme_head-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: acme_head\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[serbench]\nacme_head = acme_head\n")
    done = run_cli("run", "--upstream", "fbank", "--downstream", "five_logits", "--protocol", "synthetic",
                   "-o", "protocol.per_class=1", "-o", "train.max_epochs=1", "--executor", "local",
                   "-o", "executor.workers=2", "--out", str(tmp_path / "runs"),
                   env={"PYTHONPATH": str(site), "SERBENCH_CACHE": str(tmp_path / "cache")})
    assert done.returncode == 2
    assert "downstream five_logits (FiveLogits from acme_head): logits are [2, 5], expected [batch=2, classes=4]" in done.stderr
    failures = list(tmp_path.glob("runs/*/failed/*.json"))
    assert 1 <= len(failures) <= 2, "one job per worker at most"  # two workers may start together
    assert f"{5 - len(failures)} not started (a plugin broke its contract" in done.stderr
