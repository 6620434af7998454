"""The dashboard at /ui in a real headless Chromium (Debian's chromium + chromium-driver, driven by Selenium).

The gateway runs under uvicorn with three backends on the test upstream; requests at every tier (one falls back,
one streams, one gets feedback) go through the real openai SDK, then the browser reads what the page shows.
`LLMRANK_UI_SCREENSHOTS=docs/ui make screenshots` saves the views' screenshots where the README shows them.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException, TimeoutException
from selenium.webdriver.common.by import By
from selenium.webdriver.support.select import Select
from selenium.webdriver.support.wait import WebDriverWait

from tests.conftest import backend_entry, standard_backends

WebDriver = webdriver.Chrome
CHROMIUM = shutil.which("chromium")
CHROMEDRIVER = shutil.which("chromedriver")
MARKER = "zebra-quartz-4471"  # in one prompt: must show up nowhere unless prompts are stored
GATEWAY_KEY = "gw-dashboard-key-9f3a"
UPSTREAM_KEY = "sk-upstream-never-shown-77c1"
WINDOW = (1440, 1200)  # the browser's size for every test but the one that narrows it
DECISIONS_REFRESH_S = 2  # how often the live decisions view asks for new rows (dashboard.js)


@pytest.fixture(scope="module")
def browser() -> Iterator[WebDriver]:
    if not (CHROMIUM and CHROMEDRIVER):
        if os.environ.get("CI"):
            pytest.fail("CI must install Debian's chromium and chromium-driver (.ci/run does)")
        pytest.skip("no Chromium here: apt-get install chromium chromium-driver")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", f"--window-size={WINDOW[0]},{WINDOW[1]}"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=webdriver.ChromeService(executable_path=CHROMEDRIVER))
    yield driver
    driver.quit()


def wait_for(driver: WebDriver, condition: Any, timeout: float = 15) -> Any:
    try:
        return WebDriverWait(driver, timeout, poll_frequency=0.1).until(lambda d: condition(d))
    except TimeoutException:
        raise AssertionError(f"timed out; the page's console said: {driver.get_log('browser')}") from None


def table_rows(driver: WebDriver, selector: str) -> list[list[str]]:
    """The table's cell texts, read in one script call: the page re-renders its tables while live, so rows found
    one call and read the next can be gone (a stale element)."""
    script = (
        "return [...document.querySelectorAll(arguments[0] + ' tbody tr')]"
        ".map(r => [...r.querySelectorAll('td')].map(c => c.innerText.trim()));"
    )
    return list(driver.execute_script(script, selector))


def texts(driver: WebDriver, selector: str, attribute: str | None = None) -> list[str]:
    """The texts (or `attribute`'s values) of every element `selector` matches, read in one script call (see
    `table_rows`)."""
    script = (
        "return [...document.querySelectorAll(arguments[0])]"
        ".map(e => arguments[1] ? e.getAttribute(arguments[1]) ?? '' : e.innerText.trim());"
    )
    return list(driver.execute_script(script, selector, attribute))


def decisions_shown(driver: WebDriver) -> dict[str, tuple[str, str]]:
    """request id → (backend, tier) as the decisions table shows them, read in one script call."""
    rows = driver.execute_script(
        "return [...document.querySelectorAll('#decisions tbody tr')].map(r => [r.dataset.requestId,"
        " r.querySelector('td.backend').innerText.trim(), r.querySelector('td.tier').innerText.trim()]);"
    )
    return {str(rid): (backend, tier.split(" · ")[0]) for rid, backend, tier in rows}


def still_attached(element: Any) -> bool:
    try:
        element.is_enabled()
    except StaleElementReferenceException:
        return False
    return True


def severe_console_messages(driver: WebDriver) -> list[dict[str, Any]]:
    return [entry for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]


def screenshot(driver: WebDriver, name: str, tmp_path: Path) -> None:
    folder = Path(os.environ.get("LLMRANK_UI_SCREENSHOTS") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    driver.save_screenshot(str(folder / f"{name}.png"))


def send_traffic(url: str, control: Any) -> dict[str, tuple[str, str]]:
    """Routed requests at every tier through the openai SDK; request id → (backend that answered, tier)."""
    client = openai.OpenAI(base_url=f"{url}/v1", api_key=GATEWAY_KEY, max_retries=0)
    sent: dict[str, tuple[str, str]] = {}

    def ask(prompt: str, tier: str, stream: bool = False) -> str:
        messages: Any = [{"role": "user", "content": prompt}]
        if stream:
            with client.chat.completions.with_streaming_response.create(
                model="auto", messages=messages, stream=True, extra_headers={"X-Budget-Tier": tier}
            ) as streamed:
                "".join(streamed.iter_lines())
                headers = streamed.headers
        else:
            answered = client.chat.completions.with_raw_response.create(
                model="auto", messages=messages, extra_headers={"X-Budget-Tier": tier}
            )
            headers = answered.headers
        sent[headers["x-request-id"]] = (headers["x-llmrank-model"], tier)
        return headers["x-request-id"]

    for tier in ("perf", "balanced", "cost"):
        ask("Prove that the square root of 2 is irrational.", tier)
        ask(f"Translate into French: the {MARKER} is asleep.", tier)
    ask("Write a haiku about routers.", "balanced", stream=True)
    control.behaviour["strong"] = "error500"  # the perf tier's first choice fails once: the next one answers
    ask("Prove that there are infinitely many primes.", "perf")
    control.behaviour.pop("strong")
    return sent


@pytest.fixture()
def pool(upstream: tuple[str, Any]) -> list[dict[str, Any]]:
    base, _ = upstream
    strong, mid, cheap = standard_backends(base)
    return [strong | {"quality_offset": 0.3, "api_key_env": "UPSTREAM_KEY"}, mid, cheap]


def test_the_dashboard_shows_each_decision_its_reasons_spend_quality_and_pool(
    browser, gateway_factory, upstream, pool, redis_db, tmp_path
):
    base, control = upstream
    url = gateway_factory(pool, environ={"UPSTREAM_KEY": UPSTREAM_KEY})
    sent = send_traffic(url, control)
    fallback_id = next(rid for rid, (backend, tier) in sent.items() if tier == "perf" and backend != "strong")
    scored_id = next(iter(sent))

    browser.get(f"{url}/ui")
    wait_for(browser, lambda d: len(decisions_shown(d)) == len(sent))
    assert decisions_shown(browser) == sent

    # while nothing changes the table is left as it is (a row a reader is on survives the refresh); a change shows
    row = browser.find_element(By.CSS_SELECTOR, "#decisions tbody tr")
    time.sleep(2 * DECISIONS_REFRESH_S + 0.5)
    assert still_attached(row), "the decisions table was rebuilt though nothing had changed"
    assert httpx.post(f"{url}/v1/feedback", json={"request_id": scored_id, "score": 0.25}).status_code == 200
    wait_for(browser, lambda d: ["0.25"] in [r[-1:] for r in table_rows(d, "#decisions")])
    assert browser.find_element(By.ID, "open-banner").is_displayed()  # no keys: the page says it is open
    assert "Redis stream" in browser.find_element(By.ID, "source").text

    # a decision opens with its candidates, calls and features
    browser.find_element(By.CSS_SELECTOR, f'#decisions tr[data-request-id="{fallback_id}"]').click()
    wait_for(browser, lambda d: len(table_rows(d, "#detail-features")) > 0)
    candidates = table_rows(browser, "#detail-candidates")
    assert [row[0] for row in candidates][:1] == ["strong"] and len(candidates) == 3
    attempts = browser.find_element(By.ID, "detail-attempts").text
    assert "strong: 502 upstream_error" in attempts and f"{sent[fallback_id][0]}: 200" in attempts
    assert all(row[0] for row in table_rows(browser, "#detail-features"))
    screenshot(browser, "decisions", tmp_path)

    # a filter narrows the table to one backend's rows
    Select(browser.find_element(By.ID, "filter-backend")).select_by_value("cheap")
    expected_cheap = {rid: v for rid, v in sent.items() if v[0] == "cheap"}
    assert expected_cheap and len(expected_cheap) < len(sent)
    wait_for(browser, lambda d: decisions_shown(d) == expected_cheap)
    Select(browser.find_element(By.ID, "filter-backend")).select_by_value("")

    # spend: one series (and its estimate) per backend used, ending at what /metrics counted
    browser.find_element(By.CSS_SELECTOR, '.tab[data-view="spend"]').click()
    wait_for(browser, lambda d: d.execute_script("return !!window.dashboard.charts.spend"))
    used = sorted({backend for backend, _ in sent.values()})
    labels = texts(browser, "#spend-chart .u-legend .u-series .u-label")
    assert [label for label in labels if label and "estimate" not in label] == used
    series_ends = browser.execute_script(
        "const c = window.dashboard.charts.spend;"
        "return c.series.slice(1).map((s, i) => [s.label, c.data[i + 1][c.data[i + 1].length - 1]]);"
    )
    metrics = httpx.get(f"{url}/metrics").text
    for label, end in series_ends:
        name = label.removesuffix(" (estimate)")
        counter = "llmrank_estimated_spend_dollars" if label.endswith("(estimate)") else "llmrank_spend_dollars"
        assert end == pytest.approx(metric_value(metrics, counter, name), rel=1e-9)
    screenshot(browser, "spend", tmp_path)

    # quality: the scored backend's row counts its feedback
    browser.find_element(By.CSS_SELECTOR, '.tab[data-view="quality"]').click()
    scored_backend = sent[scored_id][0]
    wait_for(browser, lambda d: [scored_backend, "1"] in [[r[0], r[3]] for r in table_rows(d, "#quality-table")])
    screenshot(browser, "quality", tmp_path)

    browser.find_element(By.CSS_SELECTOR, '.tab[data-view="pool"]').click()
    wait_for(browser, lambda d: [row[0] for row in table_rows(d, "#pool-table")] == ["strong", "mid", "cheap"])
    screenshot(browser, "pool", tmp_path)

    assert severe_console_messages(browser) == []
    # nothing leaks: the marked prompt's words are in no view, no JSON, no Redis value; the upstream key nowhere
    pages = [browser.page_source] + [httpx.get(f"{url}/ui/api/{path}").text for path in api_paths(url)]
    for text in pages:
        assert MARKER not in text and UPSTREAM_KEY not in text
    secrets = (MARKER.encode(), UPSTREAM_KEY.encode())
    leaked = [key for key, value in redis_values(redis_db) if any(s in value for s in secrets)]
    assert leaked == []


def api_paths(url: str) -> list[str]:
    items = httpx.get(f"{url}/ui/api/decisions?limit=1000").json()["items"]
    return ["session", "decisions?limit=1000", "summary?window=15m", "quality", "pool"] + [
        f"decisions/{item['id']}" for item in items
    ]


def redis_values(client: Any) -> Iterator[tuple[bytes, bytes]]:
    """Every value in the tests' Redis database, streams' entries included."""
    for key in client.scan_iter():
        kind = client.type(key)
        if kind == b"string":
            yield key, client.get(key)
        elif kind == b"stream":
            for _, fields in client.xrange(key):
                yield key, json.dumps({k.decode(): v.decode("latin-1") for k, v in fields.items()}).encode()
        else:
            raise AssertionError(f"unexpected Redis type {kind!r} at {key!r}")


def metric_value(text: str, name: str, backend: str) -> float:
    for line in text.splitlines():
        if line.startswith(f'{name}_total{{backend="{backend}"}}'):
            return float(line.split()[-1])
    raise AssertionError(f"{name} has no sample for {backend}")


def test_with_keys_the_dashboard_shows_no_data_until_a_key_is_given(
    browser, gateway_factory, upstream, pool, redis_db, tmp_path
):
    base, control = upstream
    url = gateway_factory(pool, environ={"UPSTREAM_KEY": UPSTREAM_KEY}, api_keys=[GATEWAY_KEY])
    sent = send_traffic(url, control)
    assert httpx.get(f"{url}/ui/api/decisions").status_code == 401
    browser.execute_script("sessionStorage.clear()")  # a new visitor
    browser.get(f"{url}/ui")
    wait_for(browser, lambda d: d.find_element(By.ID, "login").is_displayed())
    assert not browser.find_element(By.ID, "content").is_displayed()
    assert decisions_shown(browser) == {} and not browser.find_element(By.ID, "open-banner").is_displayed()

    browser.find_element(By.ID, "key").send_keys("not-the-key")
    browser.find_element(By.CSS_SELECTOR, "#login button").click()
    wait_for(browser, lambda d: d.find_element(By.ID, "login-error").is_displayed())
    assert decisions_shown(browser) == {}

    browser.find_element(By.ID, "key").send_keys(GATEWAY_KEY)
    browser.find_element(By.CSS_SELECTOR, "#login button").click()
    wait_for(browser, lambda d: len(decisions_shown(d)) == len(sent))
    assert decisions_shown(browser) == sent
    assert not browser.find_element(By.ID, "open-banner").is_displayed()
    for tab in ("spend", "quality", "pool", "decisions"):
        browser.find_element(By.CSS_SELECTOR, f'.tab[data-view="{tab}"]').click()
        wait_for(browser, lambda d, tab=tab: d.find_element(By.ID, f"view-{tab}").is_displayed())
        assert GATEWAY_KEY not in browser.page_source and UPSTREAM_KEY not in browser.page_source
    assert severe_console_messages(browser) == [] or all(
        "401" in m["message"] for m in severe_console_messages(browser)
    )  # the refused key's 401 is the only error the console may show


def test_stored_prompts_are_shown_only_when_the_setting_says_so(gateway_factory, upstream, pool, redis_db):
    """The positive control for the leak search above: with LLMRANK_STORE_PROMPTS the marker is found."""
    base, control = upstream
    url = gateway_factory(pool, environ={"UPSTREAM_KEY": UPSTREAM_KEY}, store_prompts=True)
    send_traffic(url, control)
    items = wait_items(url, 10)
    assert sum(MARKER in (item.get("prompt") or "") for item in items) == 3
    assert any(MARKER.encode() in value for _, value in redis_values(redis_db))


def wait_items(url: str, count: int) -> list[dict[str, Any]]:
    """The decisions log's items once `count` are in (records are written just after each answer)."""
    deadline = time.monotonic() + 10
    while True:
        items = httpx.get(f"{url}/ui/api/decisions?limit=1000").json()["items"]
        if len(items) >= count or time.monotonic() > deadline:
            return items
        time.sleep(0.05)


def test_a_pool_entry_never_shows_a_secret_in_its_server_url(gateway_factory, upstream, redis_db):
    base, _ = upstream
    secret_base = base.replace("http://", "http://user:hunter2@") + "/b/cheap/v1?token=abc123"
    url = gateway_factory([backend_entry("cheap", "mistralai/mistral-7b-chat", secret_base, 2e-7)])
    pool_json = httpx.get(f"{url}/ui/api/pool").text
    assert "hunter2" not in pool_json and "abc123" not in pool_json and base in pool_json


def test_long_backend_names_keep_the_decisions_table_within_a_laptop_screen(
    browser, gateway_factory, upstream, redis_db
):
    """models.yaml names backends by the corpus's model names (`deepseek-ai/DeepSeek-Coder-V2-Instruct`); at 1,280
    px the table still fits its pane, and a shortened name keeps the whole one in its tooltip."""
    base, control = upstream
    names = [
        "deepseek-ai/DeepSeek-Coder-V2-Instruct",
        "meta-llama/Meta-Llama-3.1-70B-Instruct",
        "Qwen/Qwen2.5-7B-Instruct",
    ]
    strong, mid, cheap = standard_backends(base)
    pool = [entry | {"name": name} for entry, name in zip((strong, mid, cheap), names, strict=True)]
    url = gateway_factory(pool)
    sent = send_traffic(url, control)  # the perf request that falls back names a long backend in `fallbacks` too
    browser.set_window_size(1280, 900)
    try:
        browser.get(f"{url}/ui")
        wait_for(browser, lambda d: len(decisions_shown(d)) == len(sent))
        assert decisions_shown(browser) == sent  # the cells' text is the whole name
        table, pane, columns = browser.execute_script(
            "const pane = document.querySelector('#view-decisions .scroll');"
            "const columns = [...document.querySelectorAll('#decisions th')]"
            ".map(h => `${h.innerText} ${h.offsetWidth}`);"
            "return [document.querySelector('#decisions').scrollWidth, pane.clientWidth, columns.join(', ')];"
        )
        assert table <= pane, f"the table is {table} px wide in a {pane} px pane; columns: {columns}"
        tips = texts(browser, "#decisions td.backend, #decisions td.fallbacks", "title")
        assert names[0] in tips and set(tips) <= set(names) | {"", "–"}
    finally:
        browser.set_window_size(*WINDOW)
