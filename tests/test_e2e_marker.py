"""The ``e2e`` switch of tests/conftest.py: a plain ``pytest`` leaves e2e tests out and says
so; ``--e2e`` (what CI runs) and any ``-m`` expression bring them back; a test in the ``e2e/``
folder is e2e unmarked."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

CONFTEST = Path(__file__).with_name("conftest.py")
TESTS = """
import pytest

def test_fast():
    pass

@pytest.mark.e2e
def test_end_to_end():
    pass

"""


@pytest.fixture
def suite(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makeconftest(CONFTEST.read_text(encoding="utf-8"))
    pytester.makeini("[pytest]\nmarkers =\n    e2e: end to end\n")
    pytester.makepyfile(test_two=TESTS)
    return pytester


def test_a_plain_run_deselects_e2e(suite):
    suite.runpytest("-p", "no:cacheprovider").assert_outcomes(passed=1, deselected=1)


def test_the_e2e_option_runs_everything(suite):
    suite.runpytest("-p", "no:cacheprovider", "--e2e").assert_outcomes(passed=2)


@pytest.mark.parametrize("expression, passed", [("e2e", ["test_end_to_end"]), ("not e2e", ["test_fast"]),
                                                ("e2e or not e2e", ["test_fast", "test_end_to_end"])])
def test_a_marker_expression_decides_alone(suite, expression, passed):
    result = suite.runpytest("-p", "no:cacheprovider", "-v", "-m", expression)
    result.assert_outcomes(passed=len(passed), deselected=2 - len(passed))
    assert [name for name in ("test_fast", "test_end_to_end") if f"::{name} PASSED" in result.stdout.str()] == passed


def test_a_test_in_the_e2e_folder_is_e2e_unmarked(suite):
    suite.mkdir("e2e")
    (suite.path / "e2e" / "test_far.py").write_text("def test_far():\n    pass\n")
    suite.runpytest("-p", "no:cacheprovider").assert_outcomes(passed=1, deselected=2)
    result = suite.runpytest("-p", "no:cacheprovider", "-v", "-m", "e2e")
    result.assert_outcomes(passed=2, deselected=1)
    assert "test_far.py::test_far PASSED" in result.stdout.str()


@pytest.mark.e2e  # it runs `serbench --help` in a subprocess
def test_only_an_e2e_test_may_run_the_cli_in_a_subprocess(suite):
    suite.makepyfile(test_cli="""
import pytest
from conftest import run_cli

def test_unmarked():
    run_cli("--version")

@pytest.fixture(scope="module")
def shared():
    return run_cli("--help")

@pytest.mark.e2e
def test_marked_through_a_module_fixture(shared):
    assert shared.returncode == 0
""")
    result = suite.runpytest("-p", "no:cacheprovider", "--e2e", "test_cli.py")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*test_cli.py::test_unmarked runs the CLI in a subprocess: mark it @pytest.mark.e2e*"])
