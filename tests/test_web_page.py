"""The web page in a real browser: Debian's headless Chromium driven by Playwright.

Signs in with an API token, types a query, sees the expected thumbnail, plays the hit and
checks the player is at the segment's start; highlights and "why this result" too. Without
Chromium the test skips, except under CI where a skip is a failure (tests/conftest.py;
`.ci/run` installs the `chromium` package). `MMSEARCH_SCREENSHOT=PATH` saves the page.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator

import pytest

from tests.apiserver import CAT_SHOT_S, ApiServer

CHROMIUM = "/usr/bin/chromium"


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    if not shutil.which(CHROMIUM):
        pytest.skip(f"{CHROMIUM} is missing: apt-get install -y chromium")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--autoplay-policy=no-user-gesture-required", "--mute-audio"],
        )
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser: object, api_server: ApiServer) -> Iterator[object]:
    context = browser.new_context(viewport={"width": 1280, "height": 860})  # a laptop screen
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(api_server.url + "/")
    page.get_by_label("API token").fill(api_server.eng_token)
    page.get_by_label("API token").press("Enter")  # the keyboard is enough
    page.get_by_text("as group:eng").wait_for()
    yield page
    context.close()
    assert errors == [], errors


def search(page: object, text: str) -> None:
    box = page.get_by_role("searchbox", name="Search")
    box.fill(text)
    box.press("Enter")
    page.locator("#message", has_text="result").wait_for()


def test_search_shows_the_thumbnail_and_plays_from_the_hit(
    page: object, api_server: ApiServer
) -> None:
    search(page, "a cat")
    shot = api_server.segment_id("clip.mp4", "shot", CAT_SHOT_S[0])
    card = page.locator(f'.card[data-segment-id="{shot}"]')
    thumbnail = card.locator("img")
    assert thumbnail.get_attribute("src") == f"/api/segments/{shot}/thumbnail"
    page.wait_for_function(
        "(img) => img.complete && img.naturalWidth > 0", arg=thumbnail.element_handle()
    )
    assert card.locator(".meta").inner_text().count("6.0–9.0 s") == 1

    card.get_by_role("button", name="Play from 6.0 s").click()
    video = card.locator("video")
    page.wait_for_function(
        "(v) => v.readyState >= 2 && !v.seeking && v.currentTime > 0", arg=video.element_handle()
    )
    at = video.evaluate("(v) => { v.pause(); return v.currentTime }")
    assert CAT_SHOT_S[0] <= at < CAT_SHOT_S[1], at

    card.get_by_role("button", name="Why this result").click()
    legs = card.locator(".ranks tbody tr td:first-child").all_inner_texts()
    assert "image" in legs
    if path := os.environ.get("MMSEARCH_SCREENSHOT"):
        page.screenshot(path=path)


def test_matched_words_are_highlighted_and_board_stays_hidden(
    page: object, api_server: ApiServer
) -> None:
    search(page, "grease fire merger")
    marks = page.locator(".card mark").all_inner_texts()
    assert {m.lower() for m in marks} >= {"grease", "fire"}
    titles = page.locator(".card .title").all_inner_texts()
    assert "fire" in titles and "minutes" not in titles


def test_more_like_this(page: object, api_server: ApiServer) -> None:
    search(page, "a cat")
    image = api_server.segment_id("IMG_0001.jpg", "image")
    page.locator(f'.card[data-segment-id="{image}"]').get_by_role(
        "button", name="More like this"
    ).click()
    page.locator("#message", has_text="more like").wait_for()
    shot = api_server.segment_id("clip.mp4", "shot", CAT_SHOT_S[0])
    assert page.locator(".card").first.get_attribute("data-segment-id") == str(shot)


def test_search_by_example_file(page: object, api_server: ApiServer) -> None:
    page.get_by_label("Search by example: drop a file here or choose one").set_input_files(
        str(api_server.corpus / "eng" / "IMG_0001.jpg")
    )
    page.locator("#message", has_text="the example IMG_0001.jpg").wait_for()
    assert page.locator(".card .title").first.inner_text() == "IMG_0001"


def test_the_api_docs_render_offline(browser: object, api_server: ApiServer) -> None:
    context = browser.new_context()
    page = context.new_page()
    outside: list[str] = []
    local = (api_server.url, "data:", "blob:")
    page.on("request", lambda r: r.url.startswith(local) or outside.append(r.url))
    page.goto(api_server.url + "/docs")
    page.get_by_text("/api/search").first.wait_for()
    context.close()
    assert outside == []
