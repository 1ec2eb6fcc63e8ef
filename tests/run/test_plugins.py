"""Plugin discovery: built-ins, a third-party entry point, duplicates, broken plugins."""

from __future__ import annotations

import json
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

from serbench.api import hookspecs
from serbench.api.errors import SerbenchError
from serbench.api.specs import KINDS
from serbench.run.plugin_manager import make_plugin_manager
from serbench.run.registry import HOOKS, Registry, available, create

from conftest import run_cli

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "serbench-maxpool"


def _fake_distribution(site: Path, name: str, module_source: str) -> None:
    """An installed distribution as pip leaves it: a module and a dist-info with entry points."""
    (site / f"{name}.py").write_text(module_source)
    info = site / f"{name}-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(f"[serbench]\n{name} = {name}\n")


GOOD = """
from serbench.api.hookspecs import hookimpl
from serbench.api.specs import Param, Spec

@hookimpl
def register_losses():
    return [Spec(name="focal_test", factory=lambda classes, counts, gamma: None, summary="x",
                 params=(Param("gamma", float, 2.0, "focusing"),))]
"""
DUPLICATE = """
from serbench.api.hookspecs import hookimpl
from serbench.api.specs import Spec

@hookimpl
def register_poolings():
    return [Spec(name="mean", factory=lambda dim: None, summary="a second mean")]
"""
BROKEN = "import a_module_that_does_not_exist\n"


@pytest.fixture
def site(tmp_path, monkeypatch) -> Path:
    folder = tmp_path / "site"
    folder.mkdir()
    monkeypatch.syspath_prepend(str(folder))
    return folder


def test_builtins_are_registered_through_the_entry_point_group():
    assert "fbank" in available("upstreams") and "tiny" in available("upstream")
    assert {"superb", "sap_gap", "wavlm_cond", "wap_la", "gmp_atl"} <= set(available("downstream"))
    assert {"ce", "weighted_ce"} <= set(available("losses"))
    assert "synthetic" in available("protocols")
    assert "mean" in available("pooling")


def test_every_hook_is_documented_and_implemented_by_a_builtin():
    plugins = make_plugin_manager(autoload=False)
    for kind in KINDS:
        hook = getattr(hookspecs, HOOKS[kind])
        assert hook.__doc__ and len(hook.__doc__.split()) > 5, HOOKS[kind]
        assert getattr(plugins.manager.hook, HOOKS[kind]).get_hookimpls(), f"no built-in {kind}"


def test_third_party_entry_point_is_discovered_and_autoload_switch_skips_it(site, monkeypatch):
    _fake_distribution(site, "acme_loss", GOOD)
    registry = Registry(make_plugin_manager(autoload=True))
    spec = registry.get("loss", "focal_test")
    assert spec.plugin == "acme_loss" and spec.params[0].default == 2.0
    assert "upstream:fbank" in registry.names_by_plugin["fbank"]
    monkeypatch.setenv("SERBENCH_DISABLE_PLUGIN_AUTOLOAD", "1")
    without = Registry(make_plugin_manager())
    assert "focal_test" not in without.specs["loss"]
    assert "fbank" in without.specs["upstream"]  # built-ins still load


def test_a_duplicate_name_names_both_plugins_and_only_that_spec_is_skipped(site):
    _fake_distribution(site, "acme_dup", DUPLICATE)
    _fake_distribution(site, "acme_loss", GOOD)
    with pytest.warns(UserWarning, match=r"duplicate pooling name 'mean'.*'poolings'.*'acme_dup'"):
        registry = Registry(make_plugin_manager(autoload=True))
    assert registry.get("pooling", "mean").plugin == "poolings"  # the built-in keeps its name
    assert "duplicate" in registry.plugins.failures["acme_dup"] and "focal_test" in registry.specs["loss"]


BAD_SPECS = {
    "not a Spec": ("return ['mean']", r"register_poolings returned 'mean', not a Spec"),
    "default out of its own range": (
        "return [Spec(name='p1', factory=lambda dim, k: None, summary='x', params=(Param('k', int, 0, 'k', bounds='>= 1'),))]",
        r"p1\.k default: 0 is out of range \(must be >= 1\)"),
    "a Param the factory does not take": (
        "return [Spec(name='p3', factory=lambda dim: None, summary='x', params=(Param('k', int, 1, 'k'),))]",
        r"p3: its factory takes no parameter 'k'"),
    "default of the wrong type": (
        "return [Spec(name='p2', factory=lambda dim, k: None, summary='x', params=(Param('k', int, 'two', 'k'),))]",
        r"p2\.k default: expected int, got 'two'"),
    "a misspelled meta key": (
        "return [Spec(name='p4', factory=lambda dim: None, summary='x', meta={'need': ('vad',)})]",
        r"p4: meta key 'need' is not one a pooling declares \(did you mean 'needs'\?\)"),
    "another kind's meta": (
        "from serbench.api import ProtocolMeta\n    return [Spec(name='p5', factory=lambda dim: None, summary='x', meta=ProtocolMeta())]",
        r"p5: meta is ProtocolMeta, expected a dict or serbench.api.meta.PoolingMeta"),
}


@pytest.mark.parametrize("case", BAD_SPECS)
@pytest.mark.e2e
def test_a_bad_third_party_spec_is_skipped_with_a_warning_and_every_command_still_works(site, case):
    body, message = BAD_SPECS[case]
    source = ("from serbench.api import hookimpl, Param, Spec\n\n@hookimpl\ndef register_poolings():\n    " + body + "\n")
    name = f"acme_bad{list(BAD_SPECS).index(case)}"  # a module name of its own: imported modules stay cached
    _fake_distribution(site, name, source)
    with pytest.warns(UserWarning, match=message):
        registry = Registry(make_plugin_manager(autoload=True))
    assert name in registry.plugins.failures and "mean" in registry.specs["pooling"]
    done = run_cli("plugins", env={"PYTHONPATH": str(site)})
    assert done.returncode == 0 and name in done.stderr


def test_plugin_that_fails_to_import_is_reported_and_the_rest_keep_working(site):
    _fake_distribution(site, "acme_broken", BROKEN)
    _fake_distribution(site, "acme_loss", GOOD)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        registry = Registry(make_plugin_manager(autoload=True))
    assert "acme_broken" in registry.plugins.failures
    assert "a_module_that_does_not_exist" in registry.plugins.failures["acme_broken"]
    assert any("acme_broken" in str(w.message) for w in caught)
    assert "focal_test" in registry.specs["loss"] and "superb" in registry.specs["downstream"]


@pytest.mark.parametrize("source, error", [
    ("import sys\nsys.exit(0)\n", "SystemExit: 0"),
    ("class Boom(BaseException):\n    pass\nraise Boom('on import')\n", "Boom: on import"),
    ("from serbench.api import hookimpl\n\n@hookimpl\ndef register_pooling():\n    return []\n",
     "@hookimpl register_pooling is not a serbench hook (did you mean 'register_poolings'?)"),
])
@pytest.mark.e2e
def test_a_plugin_that_exits_or_misspells_a_hook_on_import_fails_alone_named(site, source, error):
    _fake_distribution(site, "acme_rude", source)
    done = run_cli("list", "poolings", env={"PYTHONPATH": str(site)})
    assert done.returncode == 0 and "mean" in done.stdout, done.stderr  # every command still works
    assert "acme_rude" in done.stderr and error in done.stderr


@pytest.mark.e2e
def test_cli_plugins_json_shows_the_broken_plugin_with_its_error(site):
    _fake_distribution(site, "acme_broken", BROKEN)
    done = run_cli("plugins", env={"PYTHONPATH": str(site)})
    assert done.returncode == 0, done.stderr
    entries = {e["name"]: e for e in json.loads(done.stdout)}
    assert "ModuleNotFoundError" in entries["acme_broken"]["error"]
    assert entries["superb"]["registers"] == ["downstream:superb"] and entries["superb"]["error"] is None
    assert entries["superb"]["hooks"] == ["register_downstreams"]
    assert "acme_broken" in done.stderr and done.stderr.count("\n") == 1  # one warning line


def test_unknown_names_suggest_the_closest_one():
    with pytest.raises(SerbenchError, match=r"unknown upstream 'fbnak' \(did you mean 'fbank'\?\)"):
        create("upstream", "fbnak")
    with pytest.raises(SerbenchError, match=r"unknown plugin kind 'upstrem' \(did you mean 'upstream'\?\)"):
        available("upstrem")
    with pytest.raises(SerbenchError, match=r"has no parameter 'nmels' \(did you mean 'n_mels'\?\)"):
        create("upstream", "fbank", nmels=40)


def test_create_checks_parameter_types():
    assert create("upstream", "fbank", n_mels=40).dim == 40
    with pytest.raises(SerbenchError, match="n_mels: expected int"):
        create("upstream", "fbank", n_mels="forty")


@pytest.mark.e2e
def test_example_package_installs_and_its_pooling_is_used(tmp_path):
    """The worked example of docs/writing-plugins.md, installed with pip as a user would."""
    site = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation",
         "--target", str(site), str(EXAMPLE)],
        check=True, capture_output=True,
    )
    listed = run_cli("list", "poolings", env={"PYTHONPATH": str(site)})
    assert listed.returncode == 0, listed.stderr
    assert "max" in listed.stdout and "maxpool" in listed.stdout


def _every_spec():
    reg = Registry(make_plugin_manager(autoload=False))
    return [spec for kind in KINDS for spec in reg.specs[kind].values()]


@pytest.mark.parametrize("spec", _every_spec(), ids=lambda spec: spec.name)
def test_every_spec_loads_its_factory_and_documents_its_parameters(spec):
    assert callable(spec.load()), spec.factory  # a "module:attribute" factory names something real
    assert spec.summary and spec.version
    for param in spec.params:
        assert param.doc, f"{spec.name}.{param.name} has no doc"
        if param.default is not None:
            assert param.coerce(param.default, spec.name) == param.default


def test_listing_plugins_imports_neither_torch_nor_scipy():
    code = ("import sys; from serbench.run.registry import registry; registry(); "
            "print(sorted(m for m in ('torch', 'scipy', 'transformers', 'pandas') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]", done.stdout


def test_a_factory_that_names_nothing_fails_with_the_plugin_named():
    from serbench.api.specs import Spec

    spec = Spec(name="ghost", factory="serbench_plugins.superb.model:NoSuchHead", summary="x")
    with pytest.raises(SerbenchError, match="ghost: its factory 'serbench_plugins.superb.model:NoSuchHead'"):
        spec.build()
