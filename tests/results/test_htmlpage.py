"""The report page in a real headless browser (Debian's chromium driven by Playwright): it loads without console
errors and without network, shows the JSON's numbers, filters and searches, shows a sample's prompt, code and tests
side by side (highlighted) and an agent's trace, holds several runs with their verdict changes and a side-by-side
diff whose links work, never scrolls sideways at 1400 px, survives hostile model text, and renders a 10,000-sample
two-run page lazily (its load time is measured in benchmarks/perf/bench_htmlpage.py, not here). The junitxml
properties are checked here too.

Screenshots go to the test's folder, and to $AGENTBENCH_SCREENSHOTS when it is set (to look at them)."""

import json
import os
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from conftest import read_records, read_report
from pytest_agentbench.results.page import main as html_main
from pytest_agentbench.results.page import render, write_html
from pytest_agentbench.results.report import aggregate

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
WIDTH = 1400


@pytest.fixture(scope="module")
def browser():
    sync_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright (tests extra)")
    if CHROMIUM is None:
        pytest.skip("no chromium: apt-get install chromium (scripts/setup.sh --tests)")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield b
        b.close()


def open_page(browser, path, hash_=""):
    page = browser.new_page(viewport={"width": WIDTH, "height": 900})
    problems, requests = [], []
    page.on("console", lambda m: problems.append(m.text) if m.type in ("error", "warning") else None)
    page.on("pageerror", lambda e: problems.append(str(e)))
    page.on("request", lambda r: requests.append(r.url) if not r.url.startswith(("file:", "data:")) else None)
    page.goto(path.as_uri() + hash_)
    page.wait_for_function("document.getElementById('count').textContent !== ''")
    return page, problems, requests


def no_sideways_scroll(page) -> None:
    """Nothing on the page is wider than the 1400 px window, and no element scrolls sideways."""
    wide = page.evaluate("""() => {
        const out = [];
        if (document.documentElement.scrollWidth > window.innerWidth) out.push("page " + document.documentElement.scrollWidth);
        for (const n of document.querySelectorAll("body *")) {
            const s = getComputedStyle(n);
            if (["auto", "scroll"].includes(s.overflowX) && n.scrollWidth > n.clientWidth + 1) out.push(n.tagName + "." + n.className);
        }
        return out;
    }""")
    assert wide == []


def shot(page, folder: Path, name: str) -> None:
    page.screenshot(path=str(folder / name), full_page=True)
    if os.environ.get("AGENTBENCH_SCREENSHOTS"):
        Path(os.environ["AGENTBENCH_SCREENSHOTS"]).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(os.environ["AGENTBENCH_SCREENSHOTS"]) / name), full_page=True)


def score_text(r: dict) -> str:
    err = r["errors"]["pass@1"]
    return f"{r['pass@1']:.3f} ± {err['se']:.3f} [{err['lo']:.3f}, {err['hi']:.3f}]"


def test_a_run_page_shows_the_reports_numbers_and_filters(arith, browser):
    result = arith.runpytest("--model", "good,half", "--samples", "2", "--agentbench-html", "page.html")
    assert result.ret == 1
    report = read_report(arith)
    page, problems, requests = open_page(browser, arith.path / "page.html")
    assert problems == [] and requests == []
    rows = page.locator("#scores tbody tr")
    assert rows.count() == 2
    for i, r in enumerate(report["results"]):
        cells = rows.nth(i).locator("td").all_inner_texts()
        assert cells[0] == r["model"] and cells[1] == r["suite"] and int(cells[3]) == r["samples"]
        assert cells[4] == score_text(r)
    # the plot: one error bar per result, its ends at the interval's bounds
    assert page.locator("#plot svg circle").count() == 2
    assert page.locator("#plot svg title").all_text_contents()[1].endswith(score_text(report["results"][1]))
    assert page.locator("#count").inner_text() == "12 of 12 samples"
    page.select_option("#outcome", "failed")
    assert page.locator("#count").inner_text() == "3 of 12 samples"
    assert set(page.locator("#samples tbody tr td:nth-child(5)").all_inner_texts()) == {"failed"}
    page.select_option("#outcome", "")
    page.fill("#search", "arith/10")
    assert page.locator("#count").inner_text() == "4 of 12 samples"
    page.locator("#samples tbody tr.row").first.click()
    detail = page.locator("tr.detail")
    labels = detail.locator(".cols3 .label").all_inner_texts()
    assert [x.lower() for x in labels] == ["prompt", "model's code (the reply)", "tests"]
    assert detail.locator(".cols3 pre").nth(0).inner_text() == "10+10="  # the task's prompt, from the record
    assert detail.locator(".cols3 pre").nth(1).inner_text() == "20"  # good's reply
    page.fill("#search", "")
    page.locator("th[data-key=wall_s]").click()
    assert page.locator("#count").inner_text() == "12 of 12 samples"
    no_sideways_scroll(page)
    shot(page, arith.path, "run.png")
    page.close()


def test_with_a_baseline_the_page_holds_both_runs_their_changes_and_diffs(arith, browser):
    assert arith.runpytest("--model", "good", "--agentbench-json", "base.json").ret == 0
    result = arith.runpytest(
        "--model",
        "half",
        "--agentbench-baseline",
        "base.json",
        "--agentbench-model-map",
        "half=good",
        "--agentbench-max-drop",
        "0.02",
        "--agentbench-html",
        "page.html",
    )
    assert result.ret == 0
    report, base = read_report(arith), read_report(arith, "base.json")
    page, problems, requests = open_page(browser, arith.path / "page.html")
    assert problems == [] and requests == [] and page.locator("#gate-section").is_visible()
    lines = page.locator("#gates li").all_inner_texts()
    assert lines == [line.strip() for line in report["gate"]["lines"]]
    assert any(line.startswith("INCONCLUSIVE half/arith") for line in lines)
    assert page.locator(".moved").inner_text().count("arith/10") == 1
    # the gate is above the scores
    assert page.locator("#gate-section").bounding_box()["y"] < page.locator("#scores").bounding_box()["y"]
    # a table of the runs, the baseline first; both runs' scores as in their JSON
    runs = page.locator("#runs tbody tr")
    assert runs.count() == 2 and runs.nth(0).locator("td").first.inner_text() == "#1 base.json"
    scores = {
        tuple(r.locator("td").all_inner_texts()[:3]): r.locator("td").all_inner_texts()[5]
        for r in page.locator("#scores tbody tr").all()
    }
    assert scores == {
        ("#1 base.json", "good", "arith"): score_text(base["results"][0]),
        ("#2 report.json", "half", "arith"): score_text(report["results"][0]),
    }
    # per-task verdict changes: the regressed tasks are the comparison's, with the JSON's counts
    (cmp,) = report["comparison"]["comparisons"]
    regressed = page.locator("#changes tbody tr[data-kind=regressed]")
    assert sorted(r.locator("td").nth(1).inner_text() for r in regressed.all()) == sorted(cmp["paired"]["regressed"])
    for row in regressed.all():
        task = row.locator("td").nth(1).inner_text()
        (n0, c0), (n1, c1) = base["results"][0]["per_task"][task], report["results"][0]["per_task"][task]
        assert row.locator("td").nth(2).inner_text() == f"{c0}/{n0} passed"
        assert row.locator("td").nth(3).inner_text() == f"{c1}/{n1} passed"
    assert "1 regressed" in page.locator("#change-count").inner_text()
    page.check("#unchanged")
    assert page.locator("#changes tbody tr").count() == 3
    # the regressed task's link opens the side-by-side diff of its samples in the two runs
    page.locator(".moved a", has_text="arith/10").click()
    page.wait_for_selector("#diff .pair")
    assert (
        page.locator("#diff-title").inner_text() == "arith/10: good/arith in #1 base.json vs half/arith in #2 "
        "report.json"
    )
    pair = page.locator("#diff .pair").first
    assert pair.locator(".badge").all_inner_texts() == ["passed", "failed"]
    assert pair.locator("table.diff td.del").all_inner_texts() == ["20"]
    assert pair.locator("table.diff td.add").all_inner_texts() == ["nope"]
    no_sideways_scroll(page)
    shot(page, arith.path, "baseline.png")
    # a verdict change's own diff link, and a sample's link to its peer in the other run
    page.locator("#changes tbody tr[data-kind=regressed] a").first.click()
    assert "arith/10" in page.locator("#diff-title").inner_text()
    page.goto((arith.path / "page.html").as_uri() + "#view=sample&run=1&model=half&suite=arith&task=arith%2F10")
    page.wait_for_selector("tr.detail")
    assert page.locator("#count").inner_text() == "1 of 6 samples"
    page.locator("tr.detail a").first.click()
    assert page.locator("#diff .pair").count() == 1
    assert problems == []
    page.close()


def test_the_html_command_puts_reports_side_by_side(arith, browser, capsys):
    assert arith.runpytest("--model", "good", "--agentbench-json", "a/report.json").ret == 0
    assert arith.runpytest("--model", "bad", "--agentbench-json", "b/report.json").ret == 1
    a, b = arith.path / "a" / "report.json", arith.path / "b" / "report.json"
    out = arith.path / "both.html"
    assert html_main([str(a), str(b), "-o", str(out)]) == 0
    page, problems, _ = open_page(browser, out)
    assert problems == [] and page.locator("#runs tbody tr").count() == 2
    assert page.locator("#count").inner_text() == "6 of 6 samples"
    assert "3 regressed" in page.locator("#change-count").inner_text()
    page.close()
    # never over a file it did not write; a file that is no report is one line, exit 2
    foreign = arith.path / "notes.html"
    foreign.write_text("<p>mine</p>")
    assert html_main([str(a), "-o", str(foreign)]) == 2 and foreign.read_text() == "<p>mine</p>"
    assert html_main([str(arith.path / "models.yaml"), "-o", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-2].startswith("html: refusing to overwrite") and err[-1].startswith("html: ") and len(err) == 2
    # records that no longer add up to their report (a later run rewrote them) are left out, and the page says so
    shutil.copy(a, arith.path / "kept.json")
    assert arith.runpytest("--model", "bad", "--agentbench-json", "a/report.json").ret == 1
    assert html_main([str(arith.path / "kept.json"), "-o", str(out)]) == 0
    assert "no longer holds this report's samples" in capsys.readouterr().err
    page, problems, _ = open_page(browser, out)
    assert problems == [] and page.locator("#count").inner_text() == "0 of 0 samples"
    assert "no longer holds this report's samples" in page.locator("#meta").inner_text()
    page.close()


def test_an_agents_page_shows_prompt_code_tests_and_its_trace(pytester, humanevalfix_path, browser):
    from conftest import SCRIPTED, fix_project

    pytester.makeconftest(SCRIPTED.replace("DATA", repr(str(humanevalfix_path))))
    pytester.makefile(".yaml", models="models:\n  scripted: {backend: scripted}\n")
    fix_project(pytester)
    select = ["-k", "Python/0 or Python/2", "--humanevalfix-path", str(humanevalfix_path)]
    assert pytester.runpytest("--model", "scripted", "--iters", "0", "--agentbench-json", "base.json", *select).ret == 1
    pytester.runpytest(
        "--model",
        "scripted",
        "--iters",
        "1",
        "--agentbench-baseline",
        "base.json",
        "--agentbench-html",
        "page.html",
        *select,
    )
    records = {r["task"]: r for r in read_records(pytester)}
    page, problems, requests = open_page(
        browser, pytester.path / "page.html", "#view=sample&run=1&model=scripted&suite=humanevalfix&task=Python%2F0"
    )
    assert problems == [] and requests == []
    detail = page.locator("tr.detail")
    rec = records["Python/0"]
    prompt, code, tests = (detail.locator(".cols3 > div").nth(i) for i in range(3))
    assert prompt.locator("pre").inner_text() == rec["prompt"] and "Fix the bug" in rec["prompt"]
    assert code.locator(".label").inner_text().lower() == "model's code (as run)"
    assert code.locator("pre").inner_text() == rec["program"]
    assert tests.locator("pre").inner_text() == rec["tests"] and "def check" in rec["tests"]
    # highlighted by the bundled Prism: keywords are tokens, the text is unchanged
    assert code.locator(".token.keyword").count() > 3 and tests.locator(".token.keyword").count() > 3
    # the whole trace, from the trace file the record points to
    trace = json.loads(Path(rec["trace"]["path"]).read_text())
    steps = detail.locator(".trace .step")
    assert steps.count() == len(trace["steps"]) == 3  # the buggy try, its test run, the fixed final reply
    assert [s.split(" · ")[0] for s in steps.locator(".head").all_inner_texts()] == [
        f"{i + 1}. {s['type']}" for i, s in enumerate(trace["steps"])
    ]
    assert "failed" in steps.nth(1).inner_text()  # the feedback round's test result
    assert page.locator("#changes tbody tr[data-kind=improved]").count() == 2
    no_sideways_scroll(page)
    shot(page, pytester.path, "agent.png")
    # the diff of a task's samples: the buggy reply before, the fixed one after, the trace beside it
    page.locator("#changes tbody tr[data-kind=improved] a").first.click()
    pair = page.locator("#diff .pair").first
    pair.locator(".badge").nth(1).wait_for()  # the diff is drawn after the click: all_inner_texts() does not wait
    assert pair.locator(".badge").all_inner_texts() == ["failed", "passed"]
    assert pair.locator("table.diff td.add").count() > 0 and "trace" in pair.inner_text().lower()
    no_sideways_scroll(page)
    shot(page, pytester.path, "agent-diff.png")
    page.close()


def test_hostile_model_text_stays_text(tmp_path, browser):
    evil = '</script><script>window.PWNED=1</script><img src=x onerror="window.PWNED=2">\u2028'
    records = [
        {
            "model": "m",
            "suite": "humaneval",
            "task": "HumanEval/0",
            "sample": 0,
            "status": "failed",
            "reason": evil,
            "completion": evil,
            "program": "def f():\n    return '" + evil + "'\n",
            "prompt": evil,
            "tests": "# " + evil,
            "stdout": evil,
            "stderr": "",
            "wall_s": 0.1,
            "model_s": 0.1,
            "sandbox_s": 0.0,
            "prompt_tokens": 1,
            "completion_tokens": 1,
            "extra": {"steps": [{"type": "tool_call", "tool": evil, "args": {"cmd": evil}, "text": evil}]},
        }
    ]
    path = tmp_path / "evil.html"
    write_html(path, [{"results": aggregate(records), "gate": {}, "run": {}}] * 2, [records, records])
    page, problems, requests = open_page(browser, path)
    page.locator("#samples tbody tr.row").first.click()
    page.check("#unchanged")
    page.locator("#changes tbody a").first.click()
    page.wait_for_selector("#diff .pair")
    assert page.evaluate("window.PWNED === undefined") and problems == [] and requests == []
    assert evil.strip("\u2028") in page.locator("#samples tbody td.reason").first.inner_text()
    assert evil.strip("\u2028") in page.locator("tr.detail .cols3 pre").nth(1).inner_text()
    assert page.locator("img").count() == 0
    assert page.locator("tr.detail .trace .step .head").inner_text().startswith("1. tool_call · </script>")
    page.close()


def big_records(run: int, n: int = 10_000) -> list[dict]:
    return [
        {
            "model": f"model-{m}",
            "suite": "humaneval",
            "task": f"HumanEval/{t}",
            "sample": s,
            "status": ("passed", "failed", "error")[(t + s + m + run) % 3],
            "reason": f"AssertionError {t}",
            "completion": "def f(x):\n    return x\n" * 40,
            "stdout": "out\n" * 50,
            "stderr": "err\n" * 50,
            "prompt": f"Complete HumanEval/{t}\n" * 20,
            "tests": f"def check(f):\n    assert f({t}) == {t}\n",
            "wall_s": 0.5,
            "model_s": 0.4,
            "sandbox_s": 0.01,
            "prompt_tokens": 100,
            "completion_tokens": 80,
        }
        for m in range(2)
        for t in range(164)
        for s in range(31)
    ][:n]


def test_a_ten_thousand_sample_two_run_page_renders_lazily(tmp_path, browser):
    reports, records = [], []
    for run in range(2):
        recs = big_records(run)
        reports.append({"results": aggregate(recs), "gate": {}, "run": {}})
        records.append(recs)
    path = tmp_path / "big.html"
    path.write_text(render(reports, records))
    page, problems, _ = open_page(browser, path)
    assert problems == [] and page.locator("#count").inner_text().startswith("20000 of 20000")
    assert page.locator("#samples tbody tr").count() == 200  # rendered lazily
    page.select_option("#run", "1")
    page.fill("#search", "HumanEval/163")
    assert (
        page.locator("#count").inner_text().startswith("31 of 20000")
    )  # model-0 only: the 10,000 cut falls in model-1
    tally = dict(reversed(part.split(" ")) for part in page.locator("#change-count").inner_text().split(" · "))
    changed = sum(int(n) for kind, n in tally.items() if kind != "unchanged")
    assert page.locator("#changes tbody tr").count() == min(changed, 50) and changed > 0
    page.close()


def test_junitxml_carries_suite_model_outcome_and_score(arith):
    result = arith.runpytest("--model", "half", "--junitxml", "junit.xml")
    assert result.ret == 1
    cases = ET.parse(arith.path / "junit.xml").getroot().iter("testcase")
    props = {}
    for case in cases:
        p = {e.get("name"): e.get("value") for e in case.iter("property")}
        props[p["agentbench_task"]] = p
        assert "agentbench" not in p  # the whole record stays in the report, not in the XML
    assert props["arith/1"] == {
        "agentbench_suite": "arith",
        "agentbench_model": "half",
        "agentbench_task": "arith/1",
        "agentbench_sample": "0",
        "agentbench_outcome": "passed",
        "agentbench_score": "1.0",
    }
    assert props["arith/10"]["agentbench_outcome"] == "failed" and props["arith/10"]["agentbench_score"] == "0.0"
    json.dumps(props)


def test_the_plot_has_the_reports_error_bars_and_raises_no_warning(tmp_path):
    import warnings

    from pytest_agentbench.results.plots import figure, plot_records

    records = big_records(0, 600) + [
        dict(r, suite="other", status="passed" if r["sample"] % 2 else "failed") for r in big_records(1, 200)
    ]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fig = figure(records)
        assert plot_records(records, tmp_path / "p.png").read_bytes()[:4] == b"\x89PNG"
    results = {(r["model"], r["suite"]): r for r in aggregate(records)}
    labels = sorted(t.get_text() for t in fig.axes[0].texts)
    want = sorted(
        f"{r['pass@1']:.3f} [{r['errors']['pass@1']['lo']:.2f}, {r['errors']['pass@1']['hi']:.2f}]"
        for r in results.values()
    )
    assert labels == want
    # the error bars span each result's interval
    bars = next(c for c in fig.axes[0].containers if type(c).__name__ == "ErrorbarContainer")
    spans = sorted((round(seg[0][0], 6), round(seg[1][0], 6)) for seg in bars.lines[2][0].get_segments())
    assert spans == sorted(
        (round(r["errors"]["pass@1"]["lo"], 6), round(r["errors"]["pass@1"]["hi"], 6)) for r in results.values()
    )
