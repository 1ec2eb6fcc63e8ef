"""The leaderboard site, rendered in headless Chromium as a person opens it from disk:
one row per run, a click on a column header sorts it, every image loads, no console error."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from conftest import run_cli

pytestmark = pytest.mark.e2e
CHROMIUM, DRIVER = shutil.which("chromium") or "/usr/bin/chromium", shutil.which("chromedriver") or "/usr/bin/chromedriver"


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    pytest.importorskip("matplotlib", reason="the site's figures need pip install 'serbench[plot]'")
    tmp = tmp_path_factory.mktemp("site")
    base = ["run", "--upstream", "fbank", "--protocol", "synthetic", "--quiet", "-o", "protocol.per_class=4",
            "-o", "train.max_epochs=3", "--recipe", "shared", "--out", str(tmp / "runs")]
    for downstream in ("superb", "sap_gap"):
        done = run_cli(*base, "--downstream", downstream)
        assert done.returncode == 0, done.stderr
    runs = sorted(str(p) for p in (tmp / "runs").iterdir())
    built = run_cli("leaderboard", *runs, "--html", str(tmp / "site"))
    assert built.returncode == 0, built.stderr
    return tmp / "site", [Path(r).name for r in runs]


def _browser():
    webdriver = pytest.importorskip("selenium.webdriver", reason="the browser test needs selenium (in serbench[dev])")
    if not (Path(CHROMIUM).exists() and Path(DRIVER).exists()):
        pytest.skip("Chromium is not installed here (apt-get install chromium chromium-driver; .ci/run does)")
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1400,1000"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(service=Service(DRIVER), options=options)


def test_the_site_in_a_real_browser(site, tmp_path):
    from selenium.webdriver.common.by import By

    root, run_ids = site
    browser = _browser()
    try:
        browser.get((root / "index.html").as_uri())
        rows = browser.find_elements(By.CSS_SELECTOR, "#table-synthetic tbody tr.measured")
        assert len(rows) == 2  # one row per run
        links = {a.get_attribute("href").split("/runs/")[1].split("/")[0]
                 for a in browser.find_elements(By.CSS_SELECTOR, "#table-synthetic tbody tr.measured a")}
        assert links == set(run_ids)
        assert sorted(row.find_element(By.TAG_NAME, "code").text for row in rows) == sorted(run_ids)  # the run id shown
        header = next(th for th in browser.find_elements(By.CSS_SELECTOR, "#table-synthetic th") if th.text.startswith("UA"))
        column = [th.text for th in browser.find_elements(By.CSS_SELECTOR, "#table-synthetic th")].index(header.text)

        def values():
            cells = browser.find_elements(By.CSS_SELECTOR, f"#table-synthetic tbody tr td:nth-child({column + 1})")
            return [float(c.get_attribute("data-value")) for c in cells]

        header.click()
        assert values() == sorted(values())  # ascending
        header.click()
        assert values() == sorted(values(), reverse=True)  # then descending
        (forest,) = browser.find_elements(By.TAG_NAME, "img")  # every system of the protocol, one forest plot
        assert browser.execute_script("return arguments[0].complete && arguments[0].naturalWidth > 0", forest)
        browser.save_screenshot(str(tmp_path / "index.png"))
        assert (tmp_path / "index.png").stat().st_size > 10_000

        browser.get((root / "runs" / run_ids[0] / "index.html").as_uri())
        images = browser.find_elements(By.TAG_NAME, "img")
        assert len(images) == 6  # confusion, per-class recall, forest, per fold, curves, reliability
        for image in images:  # a broken image has no natural size
            assert browser.execute_script("return arguments[0].complete && arguments[0].naturalWidth > 0", image), \
                image.get_attribute("src")
        browser.save_screenshot(str(tmp_path / "run.png"))
        errors = [entry for entry in browser.get_log("browser") if entry["level"] == "SEVERE"]
        assert errors == []
    finally:
        browser.quit()


def test_the_site_fetches_nothing_from_the_network(site):
    root, _ = site
    for page in [root / "index.html", *root.glob("runs/*/index.html")]:
        text = page.read_text()
        assert "http://" not in text and "https://" not in text and "<script src" not in text, page
