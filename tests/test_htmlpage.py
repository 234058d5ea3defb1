"""The report page in a real headless browser (Debian's chromium driven by Playwright): it loads without console
errors and without network, shows the JSON's numbers, filters and searches, opens a sample's details, survives
hostile model text, and opens a 10,000-sample run quickly. The junitxml properties are checked here too."""
import json
import shutil
import time
import xml.etree.ElementTree as ET

import pytest
from conftest import read_report

from pytest_agentbench.htmlpage import render
from pytest_agentbench.report import aggregate

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="module")
def browser():
    sync_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright (tests extra)")
    if CHROMIUM is None:
        pytest.skip("no chromium: apt-get install chromium (scripts/setup.sh --tests)")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield b
        b.close()


def open_page(browser, path):
    page = browser.new_page()
    problems, requests = [], []
    page.on("console", lambda m: problems.append(m.text) if m.type in ("error", "warning") else None)
    page.on("pageerror", lambda e: problems.append(str(e)))
    page.on("request", lambda r: requests.append(r.url) if not r.url.startswith(("file:", "data:")) else None)
    started = time.perf_counter()
    page.goto(path.as_uri())
    page.wait_for_selector("#samples tbody tr")
    return page, problems, requests, time.perf_counter() - started


def test_a_run_page_shows_the_reports_numbers_and_filters(arith, browser):
    result = arith.runpytest("--model", "good,half", "--samples", "2", "--agentbench-html", "page.html")
    assert result.ret == 1
    report = read_report(arith)
    page, problems, requests, _ = open_page(browser, arith.path / "page.html")
    assert problems == [] and requests == []
    rows = page.locator("#scores tbody tr")
    assert rows.count() == 2
    for i, r in enumerate(report["results"]):
        cells = rows.nth(i).locator("td").all_inner_texts()
        assert cells[0] == r["model"] and cells[1] == r["suite"] and int(cells[3]) == r["samples"]
        err = r["errors"]["pass@1"]
        assert cells[4] == f"{r['pass@1']:.3f} ± {err['se']:.3f} [{err['lo']:.3f}, {err['hi']:.3f}]"
    assert page.locator("#count").inner_text() == "12 of 12 samples"
    page.select_option("#outcome", "failed")
    assert page.locator("#count").inner_text() == "3 of 12 samples"
    assert set(page.locator("#samples tbody tr td:nth-child(5)").all_inner_texts()) == {"failed"}
    page.select_option("#outcome", "")
    page.fill("#search", "arith/10")
    assert page.locator("#count").inner_text() == "4 of 12 samples"
    page.locator("#samples tbody tr.row").first.click()
    assert "completion" in page.locator("tr.detail").inner_text().lower()
    page.fill("#search", "")
    page.locator("th[data-key=wall_s]").click()
    assert page.locator("#count").inner_text() == "12 of 12 samples"
    page.screenshot(path=str(arith.path / "page.png"), full_page=True)
    page.close()


def test_with_a_baseline_the_comparison_comes_first(arith, browser):
    assert arith.runpytest("--model", "good", "--agentbench-json", "base.json").ret == 0
    result = arith.runpytest("--model", "half", "--agentbench-baseline", "base.json", "--agentbench-model-map",
                             "half=good", "--agentbench-max-drop", "0.02", "--agentbench-html", "page.html")
    assert result.ret == 0
    page, problems, _, _ = open_page(browser, arith.path / "page.html")
    assert problems == [] and page.locator("#gate-section").is_visible()
    lines = page.locator("#gate li").all_inner_texts()
    assert lines == [line.strip() for line in read_report(arith)["gate"]["lines"]]
    assert any(line.startswith("INCONCLUSIVE half/arith") for line in lines)
    assert page.locator("#moved").inner_text().count("arith/10") == 1
    # the gate is above the scores
    assert page.locator("#gate-section").bounding_box()["y"] < page.locator("#scores").bounding_box()["y"]
    page.close()


def test_hostile_model_text_stays_text(tmp_path, browser):
    evil = "</script><script>window.PWNED=1</script><img src=x onerror=\"window.PWNED=2\">\u2028"
    records = [{"model": "m", "suite": "humaneval", "task": "HumanEval/0", "sample": 0, "status": "failed",
                "reason": evil, "completion": evil, "stdout": evil, "stderr": "", "wall_s": 0.1, "model_s": 0.1,
                "sandbox_s": 0.0, "prompt_tokens": 1, "completion_tokens": 1}]
    path = tmp_path / "evil.html"
    path.write_text(render({"results": aggregate(records), "gate": {}, "run": {}}, records))
    page, problems, requests, _ = open_page(browser, path)
    assert page.evaluate("window.PWNED === undefined") and problems == [] and requests == []
    assert evil.strip("\u2028") in page.locator("#samples tbody td.reason").inner_text()
    page.close()


def test_ten_thousand_samples_open_quickly(tmp_path, browser):
    records = [{"model": f"model-{m}", "suite": "humaneval", "task": f"HumanEval/{t}", "sample": s,
                "status": ("passed", "failed", "error")[(t + s + m) % 3], "reason": f"AssertionError {t}",
                "completion": "def f(x):\n    return x\n" * 40, "stdout": "out\n" * 50, "stderr": "err\n" * 50,
                "wall_s": 0.5, "model_s": 0.4, "sandbox_s": 0.01, "prompt_tokens": 100, "completion_tokens": 80}
               for m in range(2) for t in range(164) for s in range(31)][:10_000]
    path = tmp_path / "big.html"
    path.write_text(render({"results": aggregate(records), "gate": {}, "run": {}}, records))
    page, problems, _, seconds = open_page(browser, path)
    assert problems == [] and page.locator("#count").inner_text().startswith("10000 of 10000")
    assert page.locator("#samples tbody tr").count() == 200          # rendered lazily
    page.fill("#search", "HumanEval/163")
    assert page.locator("#count").inner_text().startswith("31 of 10000")  # model-0 only: the 10,000 cut falls in model-1
    page.close()
    print(f"10,000 samples: {path.stat().st_size / 2**20:.1f} MiB, loaded and rendered in {seconds:.2f} s")
    assert seconds < 10  # generous: a laptop opens it in about a second (README)


def test_junitxml_carries_suite_model_outcome_and_score(arith):
    result = arith.runpytest("--model", "half", "--junitxml", "junit.xml")
    assert result.ret == 1
    cases = ET.parse(arith.path / "junit.xml").getroot().iter("testcase")
    props = {}
    for case in cases:
        p = {e.get("name"): e.get("value") for e in case.iter("property")}
        props[p["agentbench_task"]] = p
        assert "agentbench" not in p   # the whole record stays in the report, not in the XML
    assert props["arith/1"] == {"agentbench_suite": "arith", "agentbench_model": "half", "agentbench_task": "arith/1",
                                "agentbench_sample": "0", "agentbench_outcome": "passed", "agentbench_score": "1.0"}
    assert props["arith/10"]["agentbench_outcome"] == "failed" and props["arith/10"]["agentbench_score"] == "0.0"
    json.dumps(props)
