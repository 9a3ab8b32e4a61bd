"""The web console in a real headless Chromium against the local stack: sign in, run, watch, cancel, page.

One browser and one stack for the module; each test gets a fresh browser context (its own sessionStorage).
Set CONSOLE_SCREENSHOTS to a folder (``make screenshots`` gives docs/console) to keep the screenshots.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from PIL import Image

from tests.conftest import sampler_workflow
from tests.e2e.conftest import Stack, start_stack, stop_stack, submit, wait_for

pytest.importorskip("playwright")
from playwright.sync_api import Browser, BrowserContext, Page, Playwright, sync_playwright

pytestmark = pytest.mark.browser

KEY = "key-alice"
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 860}


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """One runner; sampler steps of 100 ms, so a run lasts long enough to watch it and to cancel it.

    The runner hears a cancel on its heartbeat, a third of the visibility timeout: 1 s here.
    """
    running = start_stack(
        tmp_path_factory.mktemp("console-stack"),
        RUNNERS="1",
        SIM_STEP_DELAY="0.1",
        VISIBILITY_TIMEOUT_SECONDS="3",
    )
    yield running
    stop_stack(running)


@pytest.fixture(scope="module")
def playwright_instance() -> Iterator[Playwright]:
    with sync_playwright() as playwright:
        yield playwright


@pytest.fixture(scope="module")
def browser(playwright_instance: Playwright, chromium_executable: str) -> Iterator[Browser]:
    launched = playwright_instance.chromium.launch(executable_path=chromium_executable, args=["--no-sandbox"])
    yield launched
    launched.close()


@pytest.fixture(scope="module")
def screenshots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    kept = os.environ.get("CONSOLE_SCREENSHOTS")
    folder = Path(kept) if kept else tmp_path_factory.mktemp("screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


class Console:
    """A browser context on the console; ``problems`` collects script errors and CSP violations."""

    def __init__(self, browser: Browser, stack: Stack, **options: Any) -> None:
        self.stack = stack
        self.context: BrowserContext = browser.new_context(**{"viewport": DESKTOP, **options})
        self.context.set_default_timeout(15_000)
        self.page: Page = self.context.new_page()
        self.problems: list[str] = []
        self.page.on("pageerror", lambda error: self.problems.append(f"page error: {error}"))
        self.page.on(
            "console",
            lambda message: (
                self.problems.append(message.text)
                if message.type == "error" and "Content Security Policy" in message.text
                else None
            ),
        )

    @property
    def url(self) -> str:
        return f"{self.stack.rest_url}/console/"

    def sign_in(self, key: str = KEY) -> Console:
        self.page.goto(self.url)
        self.page.fill("#api-key", key)
        self.page.click("#sign-in-form button[type=submit]")
        self.page.wait_for_selector("#nav a[aria-current=page]")
        return self

    def open(self, hash_route: str) -> None:
        self.page.goto(f"{self.url}{hash_route}")

    def close(self) -> None:
        self.context.close()


@pytest.fixture
def console(browser: Browser, stack: Stack) -> Iterator[Console]:
    opened = Console(browser, stack)
    yield opened
    assert opened.problems == []
    opened.close()


def job_ids(stack: Stack) -> list[str]:
    listing = stack.client().get(f"{stack.rest_url}/v1/jobs", params={"limit": 100}, timeout=10).json()
    return [job["job_id"] for job in listing["items"]]


def test_the_page_loads_without_a_key_under_a_strict_policy(stack: Stack) -> None:
    page = requests.get(f"{stack.rest_url}/console/", timeout=10)
    assert page.status_code == 200
    assert page.headers["Content-Type"].startswith("text/html")
    policy = page.headers["Content-Security-Policy"]
    assert "script-src 'self'" in policy
    assert "'unsafe-inline'" not in policy
    websocket_origin = stack.endpoints["websocket_url"].rsplit("/", 1)[0]
    assert websocket_origin in policy
    assert stack.endpoints["aws_endpoint"] in policy
    module = requests.get(f"{stack.rest_url}/console/js/app.js", timeout=10)
    assert module.headers["Content-Type"].startswith("text/javascript")
    # Only the console's own files: nothing above its folder, and the API itself still wants a key.
    assert requests.get(f"{stack.rest_url}/console/../README.md", timeout=10).status_code in {403, 404}
    assert requests.get(f"{stack.rest_url}/console/%2e%2e/README.md", timeout=10).status_code == 404
    assert requests.get(f"{stack.rest_url}/v1/jobs", timeout=10).status_code == 403


def test_a_wrong_key_is_refused_and_the_right_one_stays_in_the_tab_only(console: Console) -> None:
    page = console.page
    page.goto(console.url)
    page.fill("#api-key", "not-a-key")
    page.click("#sign-in-form button[type=submit]")
    page.wait_for_selector("#sign-in-error:not([hidden])")
    assert "not accepted" in page.locator("#sign-in-error").inner_text()
    assert page.locator("#nav").is_hidden()

    # By keyboard alone: the key and Enter, then Tab from the skip link through the sections, and Enter.
    page.fill("#api-key", KEY)
    page.press("#api-key", "Enter")
    page.wait_for_selector("#nav a[aria-current=page]")
    page.focus("a.skip")
    page.keyboard.press("Tab")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "Jobs"
    page.keyboard.press("Enter")
    page.wait_for_function("() => document.activeElement.tagName === 'H1'")
    assert page.evaluate("document.activeElement.textContent") == "Jobs"

    assert page.evaluate("sessionStorage.getItem('comfy-console.api-key')") == KEY
    assert page.evaluate("localStorage.length") == 0
    assert KEY not in page.url
    page.click("#sign-out")
    assert page.evaluate("sessionStorage.length") == 0
    assert page.locator("#sign-in").is_visible()


def test_a_422_is_explained_beside_each_field(console: Console) -> None:
    page = console.sign_in().page
    page.wait_for_selector("[data-param=prompt]")
    page.fill("#param-prompt", "")
    page.fill("#param-steps", "999")
    page.fill("#param-width", "100")
    page.click("#run-submit")
    page.wait_for_selector("[data-param=steps].invalid")
    assert page.locator("[data-param=steps] .field-error").inner_text() == "must be at most 150"
    assert page.locator("[data-param=prompt] .field-error").inner_text() == "is required"
    assert "multiple of 8" in page.locator("[data-param=width] .field-error").inner_text()
    assert page.locator("#param-steps").get_attribute("aria-invalid") == "true"
    summary = page.locator("#run-problem").inner_text()
    assert "The request is not valid (422)" in summary
    assert "do not fit template 'txt2img'" in summary

    # A pasted workflow: each error with its pointer and node, as the problem document gives them.
    page.check("#mode-workflow")
    page.fill("#workflow", '{"1": {"inputs": {}}}')
    page.click("#run-submit")
    page.wait_for_selector("#run-problem .problem-errors")
    error = page.locator("#run-problem .problem-errors li").first.inner_text()
    assert "/workflow/1/class_type" in error
    assert "node 1" in error
    assert "class_type" in error


def test_a_run_shows_the_bar_advance_and_the_image_one_job_per_double_click(
    console: Console, browser: Browser, stack: Stack, screenshots: Path
) -> None:
    # A job ahead of ours holds the one runner, so ours starts only once its page is watching live.
    client = stack.client()
    ahead = submit(client, stack.rest_url, sampler_workflow(150)).json()["job_id"]
    wait_for(client, f"{stack.rest_url}/v1/jobs/{ahead}", until={"running"})
    page = console.sign_in().page
    page.wait_for_selector("[data-param=prompt]")
    page.fill("#param-prompt", "a lighthouse at dawn")
    page.fill("#param-steps", "30")
    keys: list[str | None] = []
    page.on(
        "request",
        lambda request: (
            keys.append(request.headers.get("idempotency-key"))
            if request.method == "POST" and request.url.endswith("/v1/jobs")
            else None
        ),
    )
    before = set(job_ids(stack))
    page.dblclick("#run-submit")
    page.wait_for_selector("#job-live")
    assert page.locator("#job-status").inner_text().lower() == "queued"
    assert client.delete(f"{stack.rest_url}/v1/jobs/{ahead}", timeout=10).status_code == 202

    seen: list[float] = []
    previewed = False
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not page.locator(".output img").count():
        seen.append(float(page.eval_on_selector("#job-progress", "bar => bar.value")))
        # The sampler's live preview, sent inline over the WebSocket and shown from a blob: URL.
        previewed = previewed or page.eval_on_selector(
            "#job-preview", "img => !img.hidden && img.src.startsWith('blob:') && img.naturalWidth > 0"
        )
        time.sleep(0.03)
    image = page.locator(".output img")
    image.wait_for()
    page.wait_for_function("() => document.querySelector('.output img').naturalWidth > 0")
    assert any(0 < value < 100 for value in seen), seen
    assert seen == sorted(seen), "the bar never goes back"
    assert previewed, "a live preview was shown while the sampler ran"
    assert page.locator("#job-preview").is_hidden(), "and put away once the job ended"
    assert page.eval_on_selector("#job-progress", "bar => bar.value") == 100
    assert page.locator("#job-status").inner_text().lower() == "succeeded"
    assert "Download txt2img" in page.locator(".output a[download]").inner_text()

    # However many requests the double click made, they carried one key and made one job.
    assert keys and None not in keys and len(set(keys)) == 1
    new = set(job_ids(stack)) - before - {ahead}
    assert len(new) == 1
    (job_id,) = new
    assert job_id in page.url

    page.screenshot(path=screenshots / "desktop-light.png", full_page=True)
    for name, options in {
        "desktop-dark.png": {"color_scheme": "dark"},
        "phone.png": {"viewport": PHONE, "is_mobile": True, "has_touch": True},
    }.items():
        other = Console(browser, stack, **options)
        other.sign_in()
        other.open(f"#/jobs/{job_id}")
        other.page.wait_for_function("() => document.querySelector('.output img')?.naturalWidth > 0")
        other.page.screenshot(path=screenshots / name, full_page=True)
        looks = other.page.evaluate(
            """() => ({background: getComputedStyle(document.body).backgroundColor,
                       width: document.documentElement.scrollWidth})"""
        )
        if name == "desktop-dark.png":
            assert looks["background"] == "rgb(14, 17, 22)"  # prefers-color-scheme: dark
        else:
            assert looks["width"] <= PHONE["width"], "nothing wider than the phone's screen"
        assert other.problems == []
        other.close()
    assert all((screenshots / name).stat().st_size > 10_000 for name in ("desktop-light.png", "phone.png"))


def test_an_uploaded_picture_runs_img2img(console: Console, tmp_path: Path) -> None:
    picture = tmp_path / "input.png"
    Image.new("RGB", (64, 48), (200, 40, 40)).save(picture)
    page = console.sign_in().page
    console.open("#/run?template=img2img")
    page.wait_for_selector("#param-image")
    page.set_input_files("#param-image", str(picture))
    page.wait_for_selector("text=uploaded as upload://")
    page.fill("#param-prompt", "the same, in blue")
    page.fill("#param-steps", "2")
    page.click("#run-submit")
    page.wait_for_function("() => document.querySelector('.output img')?.naturalWidth > 0")
    assert page.locator("#job-status").inner_text().lower() == "succeeded"


def test_a_running_job_is_canceled_from_its_page(console: Console, stack: Stack) -> None:
    page = console.sign_in().page
    page.wait_for_selector("[data-param=prompt]")
    page.fill("#param-prompt", "a long one")
    page.fill("#param-steps", "150")
    page.click("#run-submit")
    page.wait_for_function("() => document.querySelector('#job-progress')?.value > 0")
    page.click("#job-cancel")
    page.wait_for_selector("#job-status [data-status=canceled]")
    assert page.locator("#job-cancel").is_hidden()
    job_id = page.url.rsplit("/", 1)[1]
    job = stack.client().get(f"{stack.rest_url}/v1/jobs/{job_id}", timeout=10).json()
    assert job["status"] == "canceled"
    assert job["progress"] < 100


def test_the_job_list_pages_with_the_cursor_and_filters_by_status(console: Console, stack: Stack) -> None:
    client = stack.client()
    unknown = {"1": {"class_type": "NoSuchNode", "inputs": {}}}
    made = [submit(client, stack.rest_url, unknown).json()["job_id"] for _ in range(11)]
    for job_id in made:
        wait_for(client, f"{stack.rest_url}/v1/jobs/{job_id}")
    newest_first = job_ids(stack)

    page = console.sign_in().page
    console.open("#/jobs?limit=10")
    page.wait_for_selector("#jobs-table tbody tr")
    first_page = page.locator("#jobs-table tbody tr").evaluate_all("rows => rows.map(r => r.dataset.jobId)")
    assert first_page == newest_first[:10]
    page.click("#page-next")
    page.wait_for_selector("#page-number:has-text('Page 2')")
    second_page = page.locator("#jobs-table tbody tr").evaluate_all("rows => rows.map(r => r.dataset.jobId)")
    assert second_page == newest_first[10:20]
    page.click("#page-previous")
    page.wait_for_selector("#page-number:has-text('Page 1')")
    assert page.locator("#jobs-table tbody tr").first.get_attribute("data-job-id") == newest_first[0]

    page.select_option("#status-filter", "failed")
    page.wait_for_function(
        """() => {
            const badges = [...document.querySelectorAll('#jobs-table tbody [data-status]')];
            return badges.length > 0 && badges.every(badge => badge.dataset.status === 'failed');
        }"""
    )
    statuses = page.locator("#jobs-table tbody [data-status]").evaluate_all(
        "badges => badges.map(b => b.dataset.status)"
    )
    assert set(statuses) == {"failed"}
    assert len(statuses) == 10

    # A failed job's page names the node and the error as the API recorded them.
    page.click(f"#jobs-table a[href='#/jobs/{made[-1]}']")
    page.wait_for_selector("#job-error .job-error")
    error = page.locator("#job-error").inner_text()
    assert "validation_error" in error
    assert "NoSuchNode" in error
    assert page.locator("#job-cancel").is_hidden()
