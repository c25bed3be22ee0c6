#!/usr/bin/env python3
"""The Streaming tab in a real browser: Debian's headless chromium, driven by Selenium through chromedriver.

Run by StreamingTabBrowserTests.swift against a `sluice serve` it started, with a word count running (RUNNING) and a
pipeline that died at its start (DEAD):

    streaming_tab.py BASE_URL RUNNING_ID DEAD_ID SCREENSHOT_PATH

It checks that the list shows the running pipeline; that its page draws Spark's four charts with one point per
completed batch, at the API's values; that the completed batches table says what /batches/ID/streaming/batches says at
the same moment (the batches present in both, a new one may arrive in between); that a batch's page shows its stages
and source ranges; that nothing was loaded from another origin and nothing broke the page's security policy; that a
dead pipeline's page shows its cause and empty charts; and that the stop button stops the pipeline (the page shows
`killed`, and so does the API). It saves a screenshot of the running pipeline's page. Exit status 0 when all held.
"""
import json
import math
import os
import re
import sys
import time
import urllib.request

from selenium import webdriver
from selenium.common.exceptions import TimeoutException
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

METRICS = ["inputRate", "schedulingDelayMilliseconds", "processingMilliseconds", "totalDelayMilliseconds"]


class Failure(Exception):
    pass


def check(condition, message):
    if not condition:
        raise Failure(message)


def api(base, path, method="GET"):
    request = urllib.request.Request(base + path, method=method, headers={"X-Requested-By": "streaming-tab-test"})
    with urllib.request.urlopen(request, timeout=30) as answer:
        return json.loads(answer.read() or b"{}")


def wait(driver, what, timeout, condition):
    """Waits until condition(driver) is truthy; a timeout names what was awaited."""
    try:
        return WebDriverWait(driver, timeout, poll_frequency=0.1).until(lambda d: condition(d))
    except TimeoutException:
        raise Failure(f"timed out after {timeout} s waiting for {what}") from None


def number(text):
    """A figure as the page writes it ("1,234", "24.0"): its value and the rounding its decimals allow."""
    match = re.fullmatch(r"([\d,]+)(?:\.(\d+))?", text.strip())
    check(match, f"not a number: {text!r}")
    decimals = len(match.group(2) or "")
    value = float(match.group(1).replace(",", "") + ("." + match.group(2) if match.group(2) else ""))
    return value, 0.5 * 10 ** -decimals + 1e-9


def duration_ms(text):
    """A duration as the page writes it ("0.42 ms", "12.3 ms", "1.25 s"): milliseconds and the rounding allowed."""
    match = re.fullmatch(r"([\d,.]+) (ms|s)", text.strip())
    check(match, f"not a duration: {text!r}")
    value, tolerance = number(match.group(1))
    factor = 1000 if match.group(2) == "s" else 1
    return value * factor, tolerance * factor


# Everything the page shows of the completed batches, read in one script so it is one moment's picture.
READ_TABLE = """
return Array.from(document.querySelectorAll('#completed tbody tr[data-batch-id]')).map((tr) => {
  const cells = {};
  for (const td of tr.cells) if (td.dataset.field) cells[td.dataset.field] = {text: td.innerText.trim(), value: td.dataset.value};
  return {id: Number(tr.dataset.batchId), status: tr.dataset.status, cells};
});
"""

READ_CHARTS = """
const out = {};
for (const svg of document.querySelectorAll('svg[data-chart]')) {
  const box = svg.viewBox.baseVal;
  out[svg.dataset.chart] = {
    points: Number(svg.dataset.points),
    width: box.width, height: box.height,
    line: (svg.querySelector('path.line') || {getAttribute: () => ''}).getAttribute('d'),
    dots: Array.from(svg.querySelectorAll('circle.pt')).map((c) => ({
      id: Number(c.dataset.batchId), value: Number(c.dataset.value),
      x: Number(c.getAttribute('cx')), y: Number(c.getAttribute('cy'))})),
    bars: Array.from(svg.querySelectorAll('rect.hbar')).map((r) => Number(r.getAttribute('width'))),
    nodata: !!svg.querySelector('.nodata'),
  };
}
return out;
"""


def check_charts(driver, base, pipeline):
    charts = driver.execute_script(READ_CHARTS)
    batches = api(base, f"/batches/{pipeline}/streaming/batches?size=1000")["batches"]
    completed = {b["id"]: b for b in batches if b["status"] == "completed"}
    for metric in METRICS:
        chart = charts.get(metric)
        check(chart, f"no timeline for {metric}")
        check(chart["points"] >= 5, f"{metric}: {chart['points']} points, expected one per completed batch (at least 5)")
        check(len(chart["dots"]) == chart["points"], f"{metric}: {len(chart['dots'])} dots for {chart['points']} points")
        check(chart["line"].count("L") + 1 == chart["points"], f"{metric}: the line's path has not one vertex per point")
        for dot in chart["dots"]:
            check(0 <= dot["x"] <= chart["width"] and 0 <= dot["y"] <= chart["height"], f"{metric}: a point outside its chart: {dot}")
            batch = completed.get(dot["id"])
            check(batch is not None, f"{metric}: the chart shows batch {dot['id']}, which the API does not list as completed")
            check(math.isclose(dot["value"], batch[metric], rel_tol=1e-9, abs_tol=1e-9),
                  f"{metric}: batch {dot['id']} drawn at {dot['value']}, the API says {batch[metric]}")
        xs = [dot["x"] for dot in chart["dots"]]
        check(xs == sorted(xs), f"{metric}: the timeline's points are not in time order")
        histogram = charts.get(metric + "-histogram")
        check(histogram and histogram["bars"] and max(histogram["bars"]) > 0, f"{metric}: the histogram has no bars")
    return charts


def check_table(driver, base, pipeline):
    """The completed batches table against the API read right after it: equal for every batch in both."""
    rows = driver.execute_script(READ_TABLE)
    batches = api(base, f"/batches/{pipeline}/streaming/batches?size=1000")["batches"]
    by_id = {b["id"]: b for b in batches}
    common = [row for row in rows if row["status"] == "completed" and by_id.get(row["id"], {}).get("status") == "completed"]
    check(len(common) >= 5, f"only {len(common)} completed batches both in the table and in the API; table {[r['id'] for r in rows]}")
    ids = [row["id"] for row in rows]
    check(ids == sorted(ids, reverse=True), f"the table is not newest first: {ids}")
    for row in common:
        batch = by_id[row["id"]]
        where = f"batch {row['id']}"
        row = row["cells"]
        check(int(row["time"]["value"]) == batch["time"], f"{where}: time {row['time']} vs the API's {batch['time']}")
        records, _ = number(row["records"]["text"])
        check(records == batch["records"], f"{where}: {row['records']['text']} records shown, the API says {batch['records']}")
        rate, tolerance = number(row["inputRate"]["text"])
        check(abs(rate - batch["inputRate"]) <= tolerance, f"{where}: input rate {row['inputRate']['text']} vs {batch['inputRate']}")
        errors = sum(e["count"] for e in batch.get("errors") or [])
        retries = sum((batch.get("sinkRetries") or {}).values())
        expected = "—" if not errors and not retries else f"{errors:,} · {retries:,}"
        check(row["incidents"]["text"] == expected, f"{where}: errors · retries shown {row['incidents']['text']!r}, the API's make {expected!r}")
        for field in METRICS[1:]:
            shown, tolerance = duration_ms(row[field]["text"])
            check(abs(shown - batch[field]) <= tolerance, f"{where}: {field} shown {row[field]['text']}, the API says {batch[field]}")
    return len(common), rows


def main():
    base, pipeline, dead, screenshot = sys.argv[1].rstrip("/"), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
    options = Options()
    options.binary_location = os.environ.get("CHROMIUM", "/usr/bin/chromium")
    # Root in a container: no sandbox; nothing of the browser's own calls home either.
    for argument in ["--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu", "--window-size=1440,2200",
                     "--no-first-run", "--disable-extensions", "--disable-background-networking", "--disable-component-update",
                     "--disable-sync", "--disable-default-apps", "--force-device-scale-factor=1"]:
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    # The driver named, so that Selenium never tries to fetch one.
    service = Service(executable_path=os.environ.get("CHROMEDRIVER", "/usr/bin/chromedriver"))
    driver = webdriver.Chrome(service=service, options=options)
    started = time.time()
    try:
        run(driver, base, pipeline, dead, screenshot)
    except Exception:
        failure = os.path.splitext(screenshot)[0] + "-failure.png"
        try:
            driver.save_screenshot(failure)
            print(f"streaming_tab.py: failed; the page at that moment: {failure}", file=sys.stderr)
            print(f"streaming_tab.py: browser console: {driver.get_log('browser')}", file=sys.stderr)
        except Exception:
            pass
        raise
    finally:
        driver.quit()
    print(f"streaming_tab.py: all checks passed in {time.time() - started:.1f} s")


def run(driver, base, pipeline, dead, screenshot):
    origin = re.match(r"^https?://[^/]+", base).group(0)

    # The list: the running pipeline, its state, a stop button.
    driver.get(base + "/")
    row = f'#pipelines tr[data-pipeline-id="{pipeline}"]'
    wait(driver, "the running pipeline in the list", 30, lambda d: d.execute_script(
        f"const r = document.querySelector('{row} td[data-field=state]'); return r && r.dataset.value === 'running';"))
    check(driver.find_elements(By.CSS_SELECTOR, f'{row} button[data-action="stop"]'), "no stop button for a running pipeline")
    records = driver.find_element(By.CSS_SELECTOR, f"{row} td[data-field=records]").text
    check(number(records)[0] > 0, f"the list shows {records!r} records for a pipeline that has run batches")
    print(f"list: pipeline {pipeline} running, {records} records")

    # Its page: the four charts, one point per completed batch.
    driver.find_element(By.CSS_SELECTOR, f"{row} td[data-field=name] a").click()
    wait(driver, "the pipeline's page", 10, lambda d: d.current_url.endswith(f"#/batches/{pipeline}"))
    wait(driver, "four charts with at least 5 points", 60, lambda d: d.execute_script(
        "return ['inputRate','schedulingDelayMilliseconds','processingMilliseconds','totalDelayMilliseconds'].every((k) => {"
        " const s = document.querySelector(`svg[data-chart=${k}]`); return s && Number(s.dataset.points) >= 5; });"))
    charts = check_charts(driver, base, pipeline)
    print("charts: " + ", ".join(f"{m} {charts[m]['points']} points" for m in METRICS) + ", each at the API's value")

    # The table against the API, a few times over while batches keep coming (each after the page's next poll).
    compared = 0
    newest = []
    for _ in range(3):
        previous = driver.execute_script("return document.getElementById('status').textContent")
        wait(driver, "the page's next poll", 10, lambda d: d.execute_script("return document.getElementById('status').textContent") != previous)
        count, rows = check_table(driver, base, pipeline)
        compared += count
        newest.append(rows[0]["id"])
    # Live: batches complete every 250 ms, so over three polls (a second apart) newer ones appear, without a reload.
    check(newest[-1] > newest[0], f"the table's newest batch did not move on over three polls: {newest}")
    print(f"table: {compared} completed batches compared with /batches/{pipeline}/streaming/batches, all equal; "
          f"newest batch {newest[0]} → {newest[-1]} while watching")

    # Source partitions and the log tail.
    partitions = api(base, f"/batches/{pipeline}/streaming/statistics")["partitions"]
    check(partitions, "the statistics API lists no partition")
    shown = driver.find_elements(By.CSS_SELECTOR, "#partitions tbody tr td[data-field=source]")
    check([s.text for s in shown] == [p["source"] for p in partitions], "the partitions table does not list the API's partitions")
    wait(driver, "log lines", 10, lambda d: len(d.find_elements(By.CSS_SELECTOR, "#log .ln")) > 0 and "batch" in d.find_element(By.ID, "log").text)

    # The screenshot: the running pipeline's page, charts and tables.
    driver.execute_script("window.scrollTo(0, 0)")
    os.makedirs(os.path.dirname(screenshot), exist_ok=True)
    check(driver.save_screenshot(screenshot), "the screenshot could not be saved")
    print(f"screenshot: {screenshot}")

    # A batch's page: its stages and source ranges, as the API has them.
    first = rows[-1]["id"]
    batch = next(b for b in api(base, f"/batches/{pipeline}/streaming/batches?size=1000")["batches"] if b["id"] == first)
    driver.find_element(By.CSS_SELECTOR, f'#completed tr[data-batch-id="{first}"] td[data-field=id] a').click()
    wait(driver, f"batch {first}'s stages", 10, lambda d: d.find_elements(By.CSS_SELECTOR, "#stages tbody tr[data-key]"))
    stages = driver.execute_script(
        "return Array.from(document.querySelectorAll('#stages tbody tr[data-key]')).map((tr) => ["
        "tr.querySelector('[data-field=stage]').innerText, tr.querySelector('[data-field=recordsIn]').innerText,"
        "tr.querySelector('[data-field=recordsOut]').innerText])")
    expected = [[s["stage"], f"{s['recordsIn']:,}", f"{s['recordsOut']:,}"] for s in batch["stages"]]
    check(stages == expected, f"batch {first}'s stages: the page shows {stages}, the API {expected}")
    ranges = driver.execute_script(
        "return Array.from(document.querySelectorAll('#ranges tbody tr[data-key]')).map((tr) => ["
        "tr.querySelector('[data-field=source]').innerText, tr.querySelector('[data-field=from]').dataset.value,"
        "tr.querySelector('[data-field=to]').dataset.value])")
    check(ranges == [[r["source"], str(r["from"]), str(r["to"])] for r in batch["ranges"]], f"batch {first}'s ranges: {ranges} vs {batch['ranges']}")
    print(f"batch page: batch {first}, {len(stages)} stages and {len(ranges)} source ranges as the API has them")
    driver.back()
    wait(driver, "the pipeline's page again", 10, lambda d: d.find_elements(By.CSS_SELECTOR, "svg[data-chart=inputRate] circle.pt"))

    # Nothing from elsewhere, and nothing the security policy had to block.
    resources = driver.execute_script("return performance.getEntriesByType('resource').map((e) => e.name)")
    foreign = [r for r in resources if not r.startswith(origin + "/")]
    check(not foreign, f"requests to other origins: {foreign}")
    problems = [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]
    check(not problems, f"errors in the browser's console: {problems}")
    print(f"origin: {len(resources)} requests, all to {origin}; no console error")

    # A pipeline that died before its first batch: its cause, and charts that say there is nothing yet.
    driver.get(f"{base}/#/batches/{dead}")
    wait(driver, "the dead pipeline's state", 15, lambda d: d.execute_script(
        "const s = document.getElementById('p-state'); return s && s.dataset.state === 'dead';"))
    cause = driver.find_element(By.ID, "p-cause")
    check(cause.is_displayed() and "exited with status" in cause.text, f"the dead pipeline's cause is not shown: {cause.text!r}")
    empty = driver.execute_script("return Array.from(document.querySelectorAll('svg[data-chart]')).filter((s) => s.querySelector('.nodata')).length")
    check(empty == 4, f"{empty} of the dead pipeline's 4 timelines say there are no batches")
    check(not driver.find_elements(By.CSS_SELECTOR, '#p-actions button[data-action="stop"]'), "a stop button for a dead pipeline")
    print(f"dead pipeline {dead}: cause shown, empty charts, no stop button")

    # Stop: two clicks (the second confirms), then the page shows killed, and the API agrees.
    driver.get(f"{base}/#/batches/{pipeline}")
    stop = wait(driver, "the stop button", 15, lambda d: d.find_elements(By.CSS_SELECTOR, '#p-actions button[data-action="stop"]'))
    stop[0].click()
    confirm = wait(driver, "the stop confirmation", 5, lambda d: [b for b in d.find_elements(By.CSS_SELECTOR, '#p-actions button.confirm')])
    confirm[0].click()
    wait(driver, "the page to show the pipeline killed", 60, lambda d: d.execute_script(
        "const s = document.getElementById('p-state'); return s && s.dataset.state === 'killed';"))
    state = api(base, f"/batches/{pipeline}/state")["state"]
    check(state == "killed", f"the page shows killed, the API says {state}")
    check(not driver.find_elements(By.CSS_SELECTOR, '#p-actions button[data-action="stop"]'), "a stop button for a killed pipeline")
    check_charts(driver, base, pipeline)
    print(f"stop: pipeline {pipeline} killed (page and API), its charts still drawn")


if __name__ == "__main__":
    try:
        main()
    except Failure as failure:
        print(f"streaming_tab.py: FAILED: {failure}", file=sys.stderr)
        sys.exit(1)
