"""report.html in a real browser: headless Chromium (Debian's `chromium`) driven by playwright.

Screenshots at desktop and phone widths go to reports/browser/ (gitignored). Without the browser
the tests skip with the command that installs it; CI (.ci/run) installs it and runs them.
"""

import importlib.util
import os
from pathlib import Path

import pytest

from slmbench.bench.html_report import write_report
from slmbench.bench.report_benchmark import CHROMIUM, CHROMIUM_FLAGS

from test_report import XSS, hostile_run

INSTALL = "apt-get update && apt-get install -y chromium && pip install playwright"
ARTEFACTS = Path(__file__).resolve().parents[1] / "reports" / "browser"
WIDTHS = {"desktop": (1280, 900), "phone": (390, 844)}



def _missing_browser() -> str | None:
    if importlib.util.find_spec("playwright") is None:
        return f"playwright is not installed: {INSTALL}"
    if not Path(CHROMIUM).exists():
        return f"no Chromium at {CHROMIUM}: {INSTALL}"
    return None


if _missing_browser():
    if os.environ.get("SLMBENCH_REQUIRE_BROWSER"):  # set by .ci/run: CI must run these tests
        pytest.fail(f"SLMBENCH_REQUIRE_BROWSER is set but {_missing_browser()}", pytrace=False)
    pytest.skip(_missing_browser(), allow_module_level=True)

from playwright import sync_api as playwright_api  # noqa: E402  (only once the browser is known to be there)


@pytest.fixture(scope="module")
def browser():
    with playwright_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        yield launched
        launched.close()


@pytest.fixture(scope="module")
def hostile_report(tiny_bench_run, tmp_path_factory) -> Path:
    """The tiny run's report with hostile outputs and one sample the adapter fixed."""
    records, samples = hostile_run(tiny_bench_run)
    return write_report(tmp_path_factory.mktemp("report") / "report.html", records, samples, "hostile")


class OpenPage:
    """A page on the report that records console errors, page errors and dialogs."""

    def __init__(self, browser, path: Path, width: int, height: int):
        self.page = browser.new_page(viewport={"width": width, "height": height})
        self.errors, self.dialogs = [], []
        self.page.on("console", lambda message: self.errors.append(message.text) if message.type == "error" else None)
        self.page.on("pageerror", lambda error: self.errors.append(str(error)))
        self.page.on("dialog", self._dialog)
        self.page.goto(path.resolve().as_uri(), wait_until="load")

    def _dialog(self, dialog):
        self.dialogs.append(dialog.message)
        dialog.dismiss()

    def visible_samples(self, group) -> int:
        return sum(sample.is_visible() for sample in group.query_selector_all("article.sample"))


@pytest.fixture(params=list(WIDTHS))
def opened(request, browser, hostile_report):
    width, height = WIDTHS[request.param]
    page = OpenPage(browser, hostile_report, width, height)
    for group in page.page.query_selector_all("details.group"):
        group.evaluate("element => { element.open = true; }")
    yield request.param, page
    ARTEFACTS.mkdir(parents=True, exist_ok=True)
    page.page.screenshot(path=str(ARTEFACTS / f"report-{request.param}.png"), full_page=True)
    page.page.close()


def test_tables_and_the_per_sample_view_render(opened):
    _, page = opened
    summary_rows = page.page.query_selector_all("#summary table tbody tr")
    iris_group = page.page.query_selector("#task-iris details.group")
    assert len(summary_rows) == 2 and page.page.query_selector_all("#summary svg")
    assert page.visible_samples(iris_group) == 4 and len(iris_group.query_selector_all(".cell")) == 8
    assert page.page.query_selector("#task-iris .confusion table") and page.page.query_selector("#adapters svg")


def test_filters_change_what_is_shown(opened):
    _, page = opened
    group = page.page.query_selector("#task-iris details.group")
    shown = {}
    for name in ("fixed", "failed", "broken", "all"):
        group.query_selector(f"button[data-filter={name}]").click()
        shown[name] = (page.visible_samples(group), group.query_selector(".shown-n").inner_text())
    expected = {"fixed": (1, "1"), "broken": (0, "0"), "all": (4, "4")}
    failed, counted = shown["failed"]
    assert {name: shown[name] for name in expected} == expected and failed >= 1 and counted == str(failed)


def test_hostile_output_renders_as_text_and_nothing_runs(opened):
    _, page = opened
    output = page.page.query_selector("#task-iris article.sample pre.output").inner_text()
    assert XSS[0] in output and XSS[1] in output
    injected = page.page.evaluate("document.querySelectorAll('img[src=x], article script, pre script').length")
    assert (page.dialogs, page.errors, injected, len(page.page.query_selector_all("script"))) == ([], [], 0, 1)


def test_phone_width_has_no_page_wide_horizontal_scroll(opened):
    width_name, page = opened
    width = WIDTHS[width_name][0]
    assert page.page.evaluate("document.documentElement.scrollWidth") <= width
