"""Browser test: headless Chromium (Debian ``chromium``) via Playwright loads the Explorer, changes psi, checks
that the image changes, and saves a screenshot of every tab under the test's temp dir."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from tests.test_app_e2e import start_app
from tests.test_app_handlers import make_tiny_model

CHROMIUM = Path("/usr/bin/chromium")
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def app_url(tmp_path_factory):
    if not CHROMIUM.exists():
        pytest.skip("/usr/bin/chromium is absent: install it with `apt-get install -y chromium` (README)")
    pytest.importorskip("playwright.sync_api")
    tmp = tmp_path_factory.mktemp("browser")
    models_dir = tmp / "models"
    models_dir.mkdir()
    model = make_tiny_model(models_dir / "tiny32-stylegan2.safetensors")
    make_tiny_model(models_dir / "tiny32-stylegan1.safetensors", version=1)
    proc, url = start_app(model, tmp)
    yield url, tmp
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()


def image_src(page, elem_id: str, timeout: float = 60_000) -> str:
    loc = page.locator(f"#{elem_id} img").first
    loc.wait_for(state="visible", timeout=timeout)
    return loc.get_attribute("src")


def test_explorer_in_chromium(app_url):
    from playwright.sync_api import sync_playwright

    url, tmp = app_url
    shots = tmp / "screenshots"
    shots.mkdir()
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(url, wait_until="load")
        first = image_src(page, "explore-image")  # rendered on page load
        assert first
        page.locator("#psi input[type=number]").fill("-0.8")
        page.locator("#psi input[type=number]").press("Enter")
        page.locator("#generate").click()
        page.wait_for_function(
            "(old) => { const i = document.querySelector('#explore-image img'); return i && i.src !== old; }",
            arg=first,
            timeout=60_000,
        )
        assert image_src(page, "explore-image") != first
        assert "ms" in page.locator("#render-info").inner_text()
        page.wait_for_selector(".progress-text, .eta-bar", state="detached", timeout=60_000)
        page.screenshot(path=str(shots / "explore.png"), full_page=True)
        actions = {
            "Style mixing": "#mix-go",
            "Noise": "#noise-go",
            "Layers": "#layers-go",
            "Recipe": None,
            "Directions": None,
            "Invert": None,
            "Translate": None,
            "Train": None,
            "About / Help": None,
        }
        for tab, button in actions.items():
            page.get_by_role("tab", name=tab).click()
            if button:
                page.locator(button).click()
                page.wait_for_timeout(300)
                page.wait_for_selector(".progress-text, .eta-bar", state="detached", timeout=60_000)
                page.wait_for_timeout(500)
            if tab == "Recipe":
                page.get_by_role("button", name="Use the last image's recipe").click()
                page.wait_for_timeout(500)
                page.locator("#render-recipe").click()
                page.wait_for_timeout(1500)
            name = tab.split()[0].lower()
            page.screenshot(path=str(shots / f"{name}.png"), full_page=True)
        assert page.locator("#mix-image img").count() == 1
        assert page.locator("#noise-image img").count() == 1
        browser.close()
    assert not errors, errors
    keep = Path("/tmp/stylescope-screens")  # a copy for people reviewing the run; the originals stay in tmp
    shutil.rmtree(keep, ignore_errors=True)
    shutil.copytree(shots, keep)
