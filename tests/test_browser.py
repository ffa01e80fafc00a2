"""The HTML pages in a real browser: headless Chromium (Debian ``chromium`` + ``chromium-driver``)
driven by selenium, opening the generated files from disk.

These tests fail when the browser is missing, unless ``JAXSIM_ALLOW_NO_BROWSER=1``: then they
skip, with the reason in the summary. ``make test`` runs ``scripts/browser.sh`` first, which
installs the browser when it can and sets that variable when it cannot. Under
``JAXSIM_REQUIRE_BROWSER=1`` or ``CI=true`` (``.ci/run``) they never skip. ``JAXSIM_CHROMIUM`` /
``JAXSIM_CHROMEDRIVER`` point at other binaries; ``scripts/browser.sh`` looks for the same names.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from jaxsim.cli import main
from jaxsim.viz import html as views
from tests import html_fixtures as fx
from tests.test_html import page_json

BROWSERS = ("chromium", "chromium-browser", "google-chrome")
DRIVERS = ("chromedriver", "/usr/lib/chromium/chromedriver")
PAIR = ("A man is playing a guitar on the street.", "Someone plays an instrument outside.")


def _find(env: str, names: tuple[str, ...]) -> str | None:
    if os.environ.get(env):
        return os.environ[env] if os.path.isfile(os.environ[env]) else None
    for name in names:
        found = shutil.which(name) or (name if os.path.isfile(name) else None)
        if found:
            return found
    return None


def browser_required() -> bool:
    """CI must run these tests: a skip there would hide a broken page."""
    return os.environ.get("JAXSIM_REQUIRE_BROWSER") == "1" or os.environ.get("CI") == "true"


def _missing(reason: str) -> None:
    if os.environ.get("JAXSIM_ALLOW_NO_BROWSER") == "1" and not browser_required():
        pytest.skip(f"browser test: {reason} (bash scripts/browser.sh installs it where apt-get can)")
    pytest.fail(f"{reason}. Install it (Debian: apt-get install -y chromium chromium-driver, as "
                "scripts/browser.sh does) or set JAXSIM_ALLOW_NO_BROWSER=1 to skip the browser tests"
                + ("; that is ignored here: JAXSIM_REQUIRE_BROWSER=1 or CI=true requires the browser"
                   if browser_required() else ""), pytrace=False)


@pytest.fixture(scope="module")
def browser():
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError as err:
        _missing(f"selenium is not installed ({err}); it is in the test extra: pip install -e '.[test]'")
    binary, driver = _find("JAXSIM_CHROMIUM", BROWSERS), _find("JAXSIM_CHROMEDRIVER", DRIVERS)
    if binary is None or driver is None:
        _missing(f"no headless browser: chromium at {binary}, chromedriver at {driver}")
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--window-size=1280,1000", "--force-device-scale-factor=1"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    # An explicit driver path: selenium never runs Selenium Manager (no network).
    chrome = webdriver.Chrome(options=options, service=Service(executable_path=driver))
    yield chrome
    chrome.quit()


def css(browser, selector: str) -> list:
    from selenium.webdriver.common.by import By

    return browser.find_elements(By.CSS_SELECTOR, selector)


def open_page(browser, path: Path) -> None:
    """Load a page from disk, wait for the renderer, fail on any JavaScript error."""
    from selenium.webdriver.support.ui import WebDriverWait

    browser.get(path.as_uri())
    WebDriverWait(browser, 10).until(lambda b: css(b, "#jaxsim-root[data-ready='1']"))
    errors = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
    assert errors == [], errors


def hover(browser, element) -> tuple[str, str]:
    """Move the mouse onto ``element``; the visible tooltip's (label, value) texts."""
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.support.ui import WebDriverWait

    browser.execute_script("arguments[0].scrollIntoView({block: 'center'})", element)
    ActionChains(browser).move_to_element(element).perform()
    tip = css(browser, "#jaxsim-tooltip")[0]
    WebDriverWait(browser, 5).until(lambda _: tip.is_displayed())
    return (tip.find_element("css selector", ".tip-label").text,
            tip.find_element("css selector", ".tip-value").text)


def set_threshold(browser, value: float, root: str = "") -> None:
    slider = css(browser, f"{root} input.threshold")[0]
    browser.execute_script("arguments[0].value = arguments[1];"
                           "arguments[0].dispatchEvent(new Event('input'))", slider, value)


def lines_expected(matrix: list[list[float | None]], threshold: float) -> int:
    values = np.array([[np.nan if v is None else v for v in row] for row in matrix], np.float64)
    peak = np.nanmax(np.abs(values)) or 1.0
    return int(np.sum((values != 0) & (np.abs(values) >= threshold * peak)))


def screenshot(browser, path: Path) -> None:
    browser.save_screenshot(str(path))
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 5000


def check_cell_tooltip(browser, matrix, labels_a, labels_b, root: str = "") -> None:
    values = np.array(matrix, np.float64)
    i, j = np.unravel_index(np.abs(values).argmax(), values.shape)
    cell = css(browser, f"{root} svg.heatmap rect.cell[data-i='{i}'][data-j='{j}']")[0]
    label, value = hover(browser, cell)
    assert float(value) == pytest.approx(values[i, j], rel=1e-5)
    assert label.startswith(f"{labels_a[i]} ~ {labels_b[j]}")


def test_pair_page_heatmap_lines_tooltip_and_word_toggle(browser, tiny_bert_dir, weights_dir, tmp_path):
    page = tmp_path / "pair.html"
    assert main(["explain", "--model", str(tiny_bert_dir), "--weights-dir", str(weights_dir),
                 "--format", "html", "--out", str(page), *PAIR]) == 0
    data = page_json(page.read_text(encoding="utf-8"))
    word, token = data["levels"]["word"], data["levels"]["token"]
    open_page(browser, page)
    threshold = float(css(browser, "input.threshold")[0].get_attribute("value"))
    assert threshold == 0.2

    n_a, n_b = len(word["labels_a"]), len(word["labels_b"])
    assert len(css(browser, "svg.heatmap rect.cell")) == n_a * n_b
    assert len(css(browser, "svg.pairs g.chip")) == n_a + n_b
    assert len(css(browser, "svg.pairs line.link")) == lines_expected(word["matrix"], threshold)
    check_cell_tooltip(browser, word["matrix"], word["labels_a"], word["labels_b"])
    screenshot(browser, tmp_path / "pair_words.png")

    css(browser, "input.level[value='token']")[0].click()
    assert len(css(browser, "svg.heatmap rect.cell")) == len(token["labels_a"]) * len(token["labels_b"])
    assert len(css(browser, "svg.pairs line.link")) == lines_expected(token["matrix"], threshold)
    check_cell_tooltip(browser, token["matrix"], token["labels_a"], token["labels_b"])
    set_threshold(browser, 0)
    assert len(css(browser, "svg.pairs line.link")) == lines_expected(token["matrix"], 0)
    line = css(browser, "svg.pairs line.link")[-1]  # drawn last: nothing covers its middle
    _, value = hover(browser, line)
    assert float(value) == pytest.approx(float(line.get_attribute("data-value")), rel=1e-5)
    screenshot(browser, tmp_path / "pair_pieces.png")

    css(browser, "input.level[value='word']")[0].click()
    assert len(css(browser, "svg.heatmap rect.cell")) == n_a * n_b
    assert css(browser, "span.line-count")[0].get_attribute("data-count") == str(
        lines_expected(word["matrix"], 0))


def test_report_page_histogram_pager_and_drill_down(browser, tiny_bert_dir, weights_dir, tmp_path):
    rows = [(f"{a} number {k}", f"{b} {k} times") for k in range(25) for a, b in [PAIR]]
    source = tmp_path / "pairs.tsv"
    source.write_text("sentence1\tsentence2\n" + "".join(f"{a}\t{b}\n" for a, b in rows), encoding="utf-8")
    run, page = tmp_path / "run", tmp_path / "report.html"
    assert main(["corpus", "--model", str(tiny_bert_dir), "--weights-dir", str(weights_dir), "--input",
                 str(source), "--out", str(run), "--store", "full", "--shard-size", "10",
                 "--no-progress"]) == 0
    assert main(["report", "--input", str(run), "--out", str(page), "--page-size", "10"]) == 0
    data = page_json(page.read_text(encoding="utf-8"))
    open_page(browser, page)

    bars = css(browser, "svg.histogram rect.hbar")
    assert len(bars) == 20 and sum(int(b.get_attribute("data-count")) for b in bars) == 25
    busiest = int(np.argmax(data["similarity"]["counts"]))
    _, value = hover(browser, bars[busiest])
    assert int(value) == data["similarity"]["counts"][busiest]
    assert len(css(browser, "table.word-pairs tr")) == 1 + len(data["top_word_pairs"])
    assert css(browser, "p.pos-missing")  # no POS tags in these records

    assert len(css(browser, "table.pairs-list tr.pick")) == 10
    assert css(browser, ".page-label")[0].text.startswith("page 1 of 3")
    css(browser, "button.next")[0].click()
    assert css(browser, ".page-label")[0].text.startswith("page 2 of 3")
    picked = css(browser, "table.pairs-list tr.pick[data-id='12']")[0]
    picked.click()
    detail = ".jx-detail"
    assert css(browser, f"{detail} h2")[0].text.startswith("pair 12")
    record = data["pairs"][12]["view"]["levels"]
    n_a, n_b = len(record["word"]["labels_a"]), len(record["word"]["labels_b"])
    assert len(css(browser, f"{detail} svg.heatmap rect.cell")) == n_a * n_b
    check_cell_tooltip(browser, record["word"]["matrix"], record["word"]["labels_a"],
                       record["word"]["labels_b"], root=detail)
    css(browser, f"{detail} input.level[value='token']")[0].click()
    tokens = record["token"]
    assert len(css(browser, f"{detail} svg.heatmap rect.cell")) == (
        len(tokens["labels_a"]) * len(tokens["labels_b"]))
    screenshot(browser, tmp_path / "report.png")


def test_word_pair_token_score_and_group_pages(browser, tmp_path):
    pages = {"bti": fx.word_pair_result().to_html(), "gi": fx.token_result().to_html(),
             "groups": views.groups_html(*fx.GROUP_WORDS, fx.GROUP_IDS, fx.GROUP_IMPORTANCE)}
    for name, text in pages.items():
        (tmp_path / f"{name}.html").write_text(text, encoding="utf-8")

    open_page(browser, tmp_path / "bti.html")
    assert len(css(browser, "svg.pairs line.link")) == 2  # the selected pairs
    assert len(css(browser, "svg.heatmap rect.cell.selected")) == 2
    css(browser, "input.level[value='token']")[0].click()
    assert len(css(browser, "svg.bars rect.bar")) == 5 + 6
    screenshot(browser, tmp_path / "bti.png")

    open_page(browser, tmp_path / "gi.html")
    bars = css(browser, "svg.bars rect.bar")
    assert len(bars) == 4
    _, value = hover(browser, bars[3])
    assert float(value) == pytest.approx(0.9)  # "kitten" = kit + ##ten
    css(browser, "input.level[value='token']")[0].click()
    assert len(css(browser, "svg.bars rect.bar")) == 8

    open_page(browser, tmp_path / "groups.html")
    assert len(css(browser, "svg.pairs line.link")) == 4
    assert len(css(browser, "table.groups tr")) == 1 + 4
    assert not css(browser, "input.level")  # one level only: no toggle
    screenshot(browser, tmp_path / "groups.png")


def bar_values(browser) -> list[float]:
    return [float(b.get_attribute("data-value")) for b in css(browser, "svg.contrast rect.cbar")]


def contrast_expected(q: dict, a: int, b: int) -> list[float]:
    A, B = q["hits"][a], q["hits"][b]
    return ([x - y for x, y in zip(A["query_relevance"], B["query_relevance"], strict=True)]
            + [A["query_special"] - B["query_special"]])


def test_search_page_hover_click_contrastive_toggle_and_query_switch(browser, tiny_bert, tmp_path):
    from selenium.webdriver.support.ui import Select

    from jaxsim.index import Index
    from jaxsim.viz.search import search_html

    docs = ["A man is playing a guitar.", "Someone plays an instrument on stage.",
            "A woman slices an onion.", "Two dogs run along the beach.", "A man plays the violin.",
            "A child reads a book under a tree."]
    index = Index.build(tiny_bert, docs, tmp_path / "idx", factors="fp32", shard_size=4)
    queries = ["A person plays music.", "An animal runs outside."]
    page = tmp_path / "search.html"
    page.write_text(search_html(index.search_many(queries, k=4, explain=True)), encoding="utf-8")
    data = page_json(page.read_text(encoding="utf-8"))
    q = data["queries"][0]
    open_page(browser, page)

    assert len(css(browser, "ol.hits li.hit")) == 4
    hit = q["hits"][1]
    j = int(np.argmax(np.abs(hit["doc_relevance"])))
    label, value = hover(browser, css(browser, f"li.hit[data-k='1'] span.word[data-j='{j}']")[0])
    assert float(value) == pytest.approx(hit["doc_relevance"][j], rel=1e-5)
    assert label.startswith(f"{hit['words'][j]} (hit 2)")

    css(browser, "li.hit[data-k='2']")[0].click()
    assert "current" in css(browser, "li.hit[data-k='2']")[0].get_attribute("class")
    level = q["hits"][2]["view"]["levels"]["word"]
    assert len(css(browser, ".hit-detail svg.heatmap rect.cell")) == (
        len(level["labels_a"]) * len(level["labels_b"]))
    check_cell_tooltip(browser, level["matrix"], level["labels_a"], level["labels_b"], root=".hit-detail")

    assert len(css(browser, "svg.contrast rect.cbar")) == len(q["words"]) + 1
    np.testing.assert_allclose(bar_values(browser), contrast_expected(q, 0, 1), rtol=1e-6, atol=1e-12)
    Select(css(browser, "select.contrast-b")[0]).select_by_value("3")
    np.testing.assert_allclose(bar_values(browser), contrast_expected(q, 0, 3), rtol=1e-6, atol=1e-12)
    Select(css(browser, "select.contrast-a")[0]).select_by_value("2")
    expected = contrast_expected(q, 2, 3)
    np.testing.assert_allclose(bar_values(browser), expected, rtol=1e-6, atol=1e-12)
    i = int(np.argmax(np.abs(expected)))
    _, value = hover(browser, css(browser, f"svg.contrast rect.cbar[data-i='{i}']")[0])
    assert float(value) == pytest.approx(expected[i], rel=1e-5)
    assert css(browser, "p.contrast-sum")[0].text.startswith("A = hit 3")
    screenshot(browser, tmp_path / "search.png")

    Select(css(browser, "select.query")[0]).select_by_value("1")
    assert css(browser, "#jaxsim-root h2")[0].text == f"Query: {queries[1]}"
    assert len(css(browser, "ol.hits li.hit")) == 4
    np.testing.assert_allclose(bar_values(browser), contrast_expected(data["queries"][1], 0, 1),
                               rtol=1e-6, atol=1e-12)
