"""The widget's weight and what it asks for when a page loads it.

    .venv/bin/python bench/bench_widget.py

Prints widget.js's size (raw, gzip -9 of the file, and what the engine sends to a browser
accepting gzip), then loads a host page of another origin embedding the widget in headless
Chromium (Debian's chromium driven by Playwright, as tests/widget do) and prints every request
made on load, and after the visitor opens the dialog, with origin, status and bytes. Exit 1 if
the script is over 15 KB gzipped or any request goes to an origin other than the page's or the
engine's."""

from __future__ import annotations

import asyncio
import gzip
import sys
import tempfile
from pathlib import Path
from urllib.parse import urlsplit

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.widget.conftest import STATIC, chromium_path, make_site  # noqa: E402

BUDGET = 15 * 1024


def origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


async def describe(r) -> tuple[str, str, object, int]:
    response = await r.response()
    sizes = await r.sizes()
    return r.method, r.url, response.status if response else "-", sizes["responseBodySize"]


async def main() -> int:
    from playwright.async_api import async_playwright
    raw = (STATIC / "widget.js").read_bytes()
    gz = len(gzip.compress(raw, 9))
    with tempfile.TemporaryDirectory() as tmp:
        site, cleanup = await make_site(Path(tmp))
        try:
            async with async_playwright() as p:
                browser = await p.chromium.launch(executable_path=chromium_path(),
                                                  args=["--no-sandbox"])
                page = await browser.new_page()
                seen: list = []
                page.on("requestfinished", lambda r: seen.append(r))
                served = await page.request.get(f"{site.engine}/widget.js",
                                                headers={"Accept-Encoding": "gzip"})
                wire = served.headers.get("content-length", "?")
                encoding = served.headers.get("content-encoding", "identity")
                await page.goto(site.url("en"))
                await page.locator("callengine-widget button.l").wait_for()
                await page.wait_for_load_state("networkidle")
                on_load = list(seen)
                await page.locator("callengine-widget button.l").click()
                await page.locator("callengine-widget [role=dialog]").wait_for()
                await page.wait_for_load_state("networkidle")
                on_open = seen[len(on_load):]
                on_load = [await describe(r) for r in on_load]
                on_open = [await describe(r) for r in on_open]
                await browser.close()
        finally:
            await cleanup()
    print(f"widget.js: {len(raw)} bytes raw, {gz} bytes gzip -9 (budget {BUDGET}),"
          f" served {wire} bytes ({encoding})")
    allowed = {site.page: "page", site.engine: "engine"}
    stray = []
    for title, requests in (("on load", on_load), ("on opening the dialog", on_open)):
        print(f"requests {title}: {len(requests)}")
        for method, url, status, size in requests:
            who = allowed.get(origin(url))
            if who is None:
                stray.append(url)
            print(f"  {method:<5} {status:<4} {size:>6} B  {who or 'OTHER'}  {urlsplit(url).path}")
    print(f"origins other than the page and the engine: {len(stray)}")
    return 0 if gz <= BUDGET and not stray else 1


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main()))
