"""The report in a real browser: headless Chromium (Debian's chromium + chromium-driver,
driven by selenium) opens it from file://. No console errors, every image loaded, no
request leaves the file system, and the screenshot is not blank. Skipped, with the
reason, where the browser or its driver is absent (``make test`` installs them as root)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.slow

CHROMIUM = next((p for p in ("/usr/bin/chromium", "/usr/bin/chromium-browser")
                 if Path(p).exists()), shutil.which("chromium"))
DRIVER = next((p for p in ("/usr/bin/chromedriver", "/usr/lib/chromium/chromedriver")
               if Path(p).exists()), shutil.which("chromedriver"))


def _driver(width: int, height: int):
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed "
                                    "(pip install -e '.[dev]')")
    from selenium.webdriver.chrome.service import Service

    if not (CHROMIUM and DRIVER):
        pytest.skip("headless Chromium not found: apt-get install chromium chromium-driver "
                    "(make test does this as root)")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--disable-extensions", "--no-first-run", f"--window-size={width},{height}"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    return webdriver.Chrome(service=Service(DRIVER), options=options)


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    from losslab.report import build_report
    from losslab.study import load
    from report_results import run_real_study

    out = run_real_study(tmp_path_factory.mktemp("browser"))
    return build_report(load(out), out / "report", workers=2)


@pytest.mark.parametrize("size", [(1280, 900), (390, 844)], ids=["desktop", "phone"])
def test_report_opens_offline_in_headless_chromium(report, tmp_path, size):
    driver = _driver(*size)
    try:
        driver.get(report.as_uri())
        # lazy images load when scrolled to: bring each into view, then wait for it
        count = driver.execute_script("return document.images.length")
        # every figure kind but accuracy against eta, super-class and per-activation curves
        assert count >= 15
        for i in range(count):
            driver.execute_script("document.images[arguments[0]].scrollIntoView()", i)
        driver.set_script_timeout(30)
        loaded = driver.execute_async_script("""
            const done = arguments[arguments.length - 1];
            Promise.all(Array.from(document.images).map(img => img.complete ? null :
                new Promise(r => { img.onload = img.onerror = r; })))
              .then(() => done(Array.from(document.images).map(
                  img => [img.getAttribute('src'), img.naturalWidth])));
        """)
        assert all(width > 0 for _, width in loaded), [s for s, w in loaded if w == 0]
        # phone: the page must not scroll sideways (images max-width 100 %, tables scroll)
        overflow = driver.execute_script(
            "return document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 1
        driver.execute_script("window.scrollTo(0, 0)")
        shot = tmp_path / "shot.png"
        assert driver.save_screenshot(str(shot))
        errors = [e for e in driver.get_log("browser") if e["level"] in ("SEVERE", "ERROR")]
        assert errors == []
        urls = set()
        for entry in driver.get_log("performance"):
            message = json.loads(entry["message"])["message"]
            if message["method"] == "Network.requestWillBeSent":
                urls.add(message["params"]["request"]["url"])
        assert urls, "the performance log recorded no request at all"
        assert all(u.startswith("file://") for u in urls), sorted(urls)
    finally:
        driver.quit()
    from matplotlib.image import imread

    pixels = imread(shot)[..., :3]
    # a blank page is one colour; the report's header text and figure leave many
    assert len(np.unique(pixels.reshape(-1, 3), axis=0)) > 50
    assert pixels.std() > 0.05
