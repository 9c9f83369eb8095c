"""The web viewer in a real browser: Debian's Chromium driven by Playwright (``executable_path`` set to
it; never ``playwright install``, which downloads a browser of its own). `.ci/run` installs both.

Each test runs a real viewer on 127.0.0.1 (tests/viewer_harness.py) and looks at what a person
would: the picture moving, a style button changing the picture and /api/state, the strength
slider, a snapshot download, pause, a phone-sized screen, and a refusal without the token.
"""

from __future__ import annotations

import json
import os
import shutil

import cv2
import numpy as np
import pytest
from viewer_harness import STYLES, running_viewer, tiny_models, wait_for

pytestmark = pytest.mark.browser

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def _missing() -> str:
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "playwright is not installed (pip install playwright; it is in the dev extra)"
    if CHROMIUM is None:
        return "no system Chromium on PATH (apt-get install chromium)"
    return ""


@pytest.fixture(scope="module")
def browser():
    why = _missing()
    if why:
        if os.environ.get("CI"):  # .ci/run installs both: a skip there would hide a broken install
            pytest.fail(f"browser tests cannot run in CI: {why}")
        pytest.skip(why)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, headless=True,
                               args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"])
        try:
            yield b
        finally:
            b.close()


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    return tiny_models(tmp_path_factory.mktemp("browser_models"))


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1100, "height": 760}, accept_downloads=True)
    p = context.new_page()
    p.set_default_timeout(20_000)
    yield p
    context.close()


def picture(page) -> np.ndarray:
    """What the <img> shows now, as the browser rendered it (BGR)."""
    png = page.locator("#stream").screenshot()
    return cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_COLOR)


def page_state(page) -> dict:
    """GET /api/state from inside the page, with the page's own credentials."""
    return page.evaluate("""async () => {
        const r = await fetch('/api/state' + location.search, {cache: 'no-store'}); return await r.json(); }""")


def open_viewer(page, url: str) -> None:
    page.goto(url)
    page.wait_for_function("() => document.getElementById('frames').textContent !== '–'")  # state arrived
    page.wait_for_function("() => document.getElementById('stream').naturalWidth > 0")  # a frame arrived


def test_page_shows_moving_frames_stats_and_predictions(page, models):
    with running_viewer(models) as v:
        open_viewer(page, v.url)
        first = picture(page)
        wait_for(lambda: np.abs(picture(page).astype(int) - first).mean() > 1.0, 20, "the picture to change")
        page.wait_for_function("() => parseFloat(document.getElementById('fps').textContent) > 0")
        assert page.locator("#lat-p50").inner_text().endswith("ms")
        assert page.locator("#dropped").inner_text().isdigit()
        assert page.locator("#clients").inner_text().startswith("1 /")  # this page's stream
        assert page.locator("#predictions .head").count() == 2  # the classifier's heads, top-k each
        assert page.locator("#predictions .pred").count() == 5
        assert page.locator("#styles button").all_inner_texts() == list(STYLES)
        assert page.locator("#model").inner_text() == "tiny_style + tiny_clf"


def test_style_button_changes_state_and_picture(page, models):
    with running_viewer(models) as v:
        open_viewer(page, v.url)
        assert "active" in page.locator("#styles button[data-style=warm]").get_attribute("class")
        warm = picture(page).mean()
        page.locator("#styles button[data-style=cool]").click()
        wait_for(lambda: page_state(page)["style_weights"] == [0.0, 0.0, 1.0], 10, "the style in /api/state")
        wait_for(lambda: page_state(page)["style"] == "cool", 20, "a frame in the new style")
        wait_for(lambda: picture(page).mean() - warm > 30, 20, "the picture in the new style")
        page.wait_for_function("() => document.querySelector('#styles button[data-style=cool]').classList.contains('active')")
        assert "active" not in (page.locator("#styles button[data-style=warm]").get_attribute("class") or "")


def test_blend_sliders_mix_styles(page, models):
    with running_viewer(models) as v:
        open_viewer(page, v.url)
        page.locator("#blend-panel summary").click()
        page.locator("#blend input[data-style=cool]").fill("0.5")
        wait_for(lambda: page_state(page)["style_weights"] == [1.0, 0.0, 0.5], 10, "the blend in /api/state")
        assert page.locator("#styles button.active").count() == 0  # a mix is no single style


def test_strength_slider(page, models):
    with running_viewer(models) as v:
        open_viewer(page, v.url)
        page.locator("#styles button[data-style=cool]").click()
        wait_for(lambda: page_state(page)["style"] == "cool", 20, "the cool style")
        full = wait_for(lambda: (m := picture(page).mean()) > 120 and m, 20, "the bright cool picture")
        page.locator("#strength").fill("0")
        assert page.locator("#strength-value").inner_text() == "0%"
        wait_for(lambda: page_state(page)["strength"] == 0.0, 10, "strength 0 in /api/state")
        wait_for(lambda: full - picture(page).mean() > 20, 20, "the unstyled picture")
        page.locator("#strength").fill("0.65")
        wait_for(lambda: page_state(page)["strength"] == 0.65, 10, "strength 0.65 in /api/state")


def test_snapshot_button_downloads_the_frame(page, models):
    with running_viewer(models) as v:
        open_viewer(page, v.url)
        with page.expect_download() as d:
            page.locator("#snapshot").click()
        download = d.value
        assert download.suggested_filename.startswith("artcam_") and download.suggested_filename.endswith(".jpg")
        img = cv2.imread(download.path())
        assert img is not None and img.shape == (120, 160, 3)


def test_pause_button(page, models):
    with running_viewer(models) as v:
        open_viewer(page, v.url)
        page.locator("#pause").click()
        wait_for(lambda: page_state(page)["paused"] is True, 10, "paused in /api/state")
        page.wait_for_function("() => document.getElementById('pause').textContent === 'Resume'")
        page.locator("#pause").click()
        wait_for(lambda: page_state(page)["paused"] is False, 10, "resumed in /api/state")
        v.frames_after(2)


def test_phone_screen(browser, models):
    context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True,
                                  device_scale_factor=2)
    try:
        page = context.new_page()
        page.set_default_timeout(20_000)
        with running_viewer(models) as v:
            open_viewer(page, v.url)
            assert page.evaluate("document.documentElement.scrollWidth") <= 390  # no sideways scrolling
            box = page.locator("#stream").bounding_box()
            assert box["width"] > 300
            page.locator("#styles button[data-style=mid]").tap()
            wait_for(lambda: page_state(page)["style_weights"] == [0.0, 1.0, 0.0], 10, "the tapped style")
    finally:
        context.close()


def test_refused_without_the_token(page, models):
    """A token-protected viewer (on loopback here; any other address requires one) shows nothing without it."""
    with running_viewer(models, token="browser-token") as v:
        response = page.goto(v.url)
        assert response.status == 401
        assert page.locator("#stream").count() == 0  # not even the page
        assert "token" in json.loads(page.locator("body").inner_text())["error"]
        response = page.goto(v.url + "stream.mjpg")
        assert response.status == 401
        response = page.goto(v.url + "snapshot.jpg?token=wrong")
        assert response.status == 401

        open_viewer(page, v.url + "?token=browser-token")  # the address the device prints
        page.locator("#styles button[data-style=cool]").click()  # the page's API calls carry the token
        wait_for(lambda: page_state(page)["style_weights"] == [0.0, 0.0, 1.0], 10, "the style with the token")
        assert page.locator("#msg").inner_text() == ""
