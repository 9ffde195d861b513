"""The web console in a real browser (Debian's headless `chromium`, driven by Playwright): an order's mail
appears live, leads to the order's row as its tenant sees it; a hostile mail runs nothing and loads nothing.

Screenshots of each page go to `artifacts/console/` (a CI artifact; docs/console.png is one of them).
Skipped, with the reason, where chromium or Playwright is missing (.ci/run installs chromium with apt).
"""

from __future__ import annotations

import shutil
import threading
import time
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from app_stack_clients import TenantUnderTest, add_catalog_item

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[3]
ARTIFACTS = ROOT / "artifacts" / "console"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
LIVE_TIMEOUT_MS = 30_000


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if CHROMIUM is None:
        pytest.skip("no `chromium` on PATH (Debian: apt-get install -y chromium; .ci/run installs it)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError as exc:
        pytest.skip(f"playwright is not installed ({exc}); pip install -e .[dev]")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, headless=True)
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1280, "height": 860})
    opened = context.new_page()
    opened.set_default_timeout(LIVE_TIMEOUT_MS)
    opened.set_default_navigation_timeout(90_000)  # a page load on a CI machine busy with other tests
    try:
        yield opened
    finally:
        context.close()


@pytest.fixture(scope="module")
def console_url(stack: Any) -> str:
    return str(stack.runner.components()["console"].endpoint)


def shot(page: Any, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def test_order_mail_appears_live_and_leads_to_the_row(
    page: Any, console_url: str, tenant: TenantUnderTest
) -> None:
    page.goto(f"{console_url}/mail?tenant={tenant.slug}")
    page.locator("#live", has_text="live").wait_for()  # the event stream is open

    add_catalog_item(tenant, "MUG", 1400)
    response = tenant.api("member").post("/api/v1/orders", json={"items": [{"sku": "MUG", "qty": 3}]})
    assert response.status_code == 201, response.text
    order_id = response.json()["id"]

    live_row = page.locator("#mail-list tbody tr.new", has_text=order_id)
    live_row.wait_for()  # no reload: it came over the event stream
    shot(page, "mail")
    live_row.get_by_role("link").click()
    page.wait_for_url(f"{console_url}/mail/*")
    assert order_id in page.locator("#text").inner_text()
    assert tenant.member.email in page.locator("#headers").inner_text()
    shot(page, "message")

    page.locator("#row-links a", has_text=order_id).click()
    page.wait_for_url(f"{console_url}/data/orders?*")
    target = page.locator("#rows tr.target")
    assert order_id in target.inner_text()
    assert "app_user" in page.locator("h1").inner_text()
    shot(page, "data")

    for path, name in (
        ("/", "overview"),
        (f"/objects?tenant={tenant.slug}", "objects"),
        ("/redis", "redis"),
        ("/identity", "identity"),
        ("/tasks", "tasks"),
        ("/scenarios", "scenarios"),
    ):
        page.goto(console_url + path)
        assert page.locator("h1").count() == 1, f"{path} rendered no page: {page.content()[:800]}"
        shot(page, name)


class _Recorder(BaseHTTPRequestHandler):
    hits: list[str] = []

    def _record(self) -> None:
        type(self).hits.append(f"{self.command} {self.path}")
        self.send_response(200)
        self.send_header("Content-Type", "image/gif")
        self.end_headers()

    do_GET = do_POST = do_HEAD = _record

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def tripwire() -> Iterator[tuple[str, list[str]]]:
    """A local HTTP server that records every request it gets: nothing in a mail may reach it."""
    hits: list[str] = []
    handler = type("Recorder", (_Recorder,), {"hits": hits})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", hits
    finally:
        server.shutdown()
        server.server_close()


def hostile_html(trap: str) -> str:
    beacon = f"fetch('{trap}/script-ran');document.body.setAttribute('data-pwned','1')"
    return f"""<html><head>
<meta http-equiv="Content-Security-Policy" content="default-src *; script-src * 'unsafe-inline'">
<meta http-equiv="refresh" content="0;url={trap}/refresh">
<link rel="stylesheet" href="{trap}/style.css"><style>@import url({trap}/import.css);</style>
<script src="{trap}/remote.js"></script><script>{beacon}</script>
</head><body onload="{beacon}">
<p>Your order is ready.</p>
<img src="{trap}/tracking.gif" onerror="{beacon}">
<img src="data:," onerror="{beacon}"><svg onload="{beacon}"></svg>
<div style="background:url({trap}/background.png)">styled</div>
<form id="f" action="{trap}/form" method="post"><input name="card" value="4111"><button id="go">Pay</button></form>
<script>document.getElementById('f').submit()</script>
<iframe src="{trap}/frame"></iframe><object data="{trap}/object"></object><embed src="{trap}/embed">
<video poster="{trap}/poster.png" src="{trap}/video.mp4"></video><audio src="{trap}/audio.mp3" autoplay></audio>
<a id="link" href="{trap}/link">a link (shown, not followed)</a>
</body></html>"""


def test_a_hostile_mail_runs_nothing_and_loads_nothing(
    page: Any, stack: Any, console_url: str, tripwire: tuple[str, list[str]]
) -> None:
    trap, hits = tripwire
    env = stack.env("backend")
    to = f"hostile-{uuid.uuid4().hex[:8]}@scenarios.test"
    stack.client("ses").send_email(
        Source=env["SES_SENDER"],
        Destination={"ToAddresses": [to]},
        Message={
            "Subject": {"Data": "Hostile HTML"},
            "Body": {"Html": {"Data": hostile_html(trap)}, "Text": {"Data": "see the HTML part"}},
        },
    )
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    page.goto(f"{console_url}/mail?to={to}")
    page.locator("#mail-list a", has_text="Hostile HTML").click()
    page.wait_for_load_state("networkidle")
    frame = page.frame_locator("iframe#html")
    try:
        frame.locator("#go").click(timeout=3_000)  # its form cannot be submitted
    except Exception:
        pass  # the click may be refused outright: either way nothing may be sent
    time.sleep(2.0)  # give anything that slipped through time to arrive
    shot(page, "hostile-mail")

    assert hits == [], f"the hostile mail reached the network: {hits}"
    frame.locator("text=Your order is ready.").wait_for(timeout=5_000)  # and it is shown
    assert frame.locator("body").get_attribute("data-pwned") is None, "a script in the mail ran"
    assert dialogs == []
    assert page.url.startswith(f"{console_url}/mail/")  # nothing navigated the console away
    assert page.locator("iframe#html").get_attribute("sandbox") == ""
    links = page.locator("#links a")
    assert f"{trap}/link" in [links.nth(i).get_attribute("href") for i in range(links.count())]
    assert "<script>" in page.locator("#raw").inner_text()  # the raw source shows it, as text
