"""Headless Chromium for the meta tests, driven with Selenium through Debian's chromedriver.

Why Selenium: it is the W3C WebDriver client the browser vendors keep, it clicks
with real (trusted) input events, waits for conditions and takes screenshots, and
Debian ships chromium and chromium-driver as one matched pair. Given both paths,
Selenium does not start its driver manager, so nothing is downloaded.

    python -m meta_tests.browser docs/matrix.html docs/matrix.png [CLAUSE BACKEND]

saves a screenshot of a matrix page with the details of one cell open (the README's
example, docs/matrix.png).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sys
import tempfile
from pathlib import Path

DEBIAN_PACKAGES = "chromium chromium-driver"
CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-dev-shm-usage")


def chromium_paths() -> tuple[str, str] | None:
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver") or ("/usr/bin/chromedriver" if os.path.exists("/usr/bin/chromedriver") else None)
    return (browser, driver) if browser and driver else None


def missing() -> str | None:
    """Why no browser test can run here, or None."""
    if chromium_paths() is None:
        return (f"headless Chromium is not installed: install Debian's packages {DEBIAN_PACKAGES} "
                f"(apt-get install -y {DEBIAN_PACKAGES})")
    try:
        import selenium  # noqa: F401  (the "test" extra)
    except ImportError:
        return "selenium is not installed: pip install -c ci/constraints.txt -e '.[test]'"
    return None


@contextlib.contextmanager
def chromium(width: int = 1500, height: int = 950):
    """A Selenium driver for a fresh headless Chromium profile, closed on exit."""
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    browser, driver_path = chromium_paths()
    with tempfile.TemporaryDirectory(prefix="nnconform-chromium-") as profile:
        options = Options()
        options.binary_location = browser
        for flag in (*CHROMIUM_FLAGS, f"--user-data-dir={profile}", f"--window-size={width},{height}"):
            options.add_argument(flag)
        driver = webdriver.Chrome(service=Service(executable_path=driver_path), options=options)
        try:
            yield driver
        finally:
            driver.quit()


def cell(driver, clause: str, backend: str):
    """The matrix cell of ``clause`` (a row header) and ``backend`` (a column header)."""
    from selenium.webdriver.common.by import By

    columns = [th.text for th in driver.find_elements(By.CSS_SELECTOR, "#matrix thead th")][1:]
    index = next(i for i, title in enumerate(columns) if title.split(" (")[0] == backend)
    row = driver.find_element(By.XPATH, f"//table[@id='matrix']/tbody/tr[th/code[text()='{clause}']]")
    return row.find_elements(By.CSS_SELECTOR, "td.cell")[index]


def open_details(driver, clause: str, backend: str):
    """Click a cell (on its first symbol: a findings link in it leads away) and wait until
    its details are shown; returns the details panel."""
    from selenium.webdriver.common.by import By

    return click(driver, cell(driver, clause, backend).find_element(By.CSS_SELECTOR, ".sym"))


def click(driver, element):
    """Scroll ``element`` to the middle of the table, click it, and wait for the details panel."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.ui import WebDriverWait

    driver.execute_script("arguments[0].scrollIntoView({block: 'center', inline: 'center'})", element)
    element.click()
    panel = driver.find_element(By.ID, "details")
    WebDriverWait(driver, 10).until(expected_conditions.visibility_of(panel))
    return panel


def screenshot(page: Path, out: Path, clause: str = "dropout.train.drop-rate", backend: str = "torch") -> None:
    with chromium(width=1920, height=1000) as driver:
        driver.get(page.absolute().as_uri())
        open_details(driver, clause, backend)
        driver.save_screenshot(str(out))


if __name__ == "__main__":
    if len(sys.argv) not in (3, 5):
        raise SystemExit("usage: python -m meta_tests.browser PAGE.html OUT.png [CLAUSE BACKEND]")
    screenshot(Path(sys.argv[1]), Path(sys.argv[2]), *sys.argv[3:])
