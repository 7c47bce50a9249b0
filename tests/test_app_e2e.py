"""End to end: ``python launch.py`` on a free port, driven through the public API with gradio_client."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.test_app_handlers import make_tiny_model

REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_app(model: str, tmp: Path, timeout: float = 120.0):
    """Launch the Explorer in a subprocess; returns (process, url) once it answers."""
    import urllib.request

    port = free_port()
    env = dict(os.environ, GRADIO_ANALYTICS_ENABLED="False", GRADIO_TEMP_DIR=str(tmp / "gradio"))
    log = open(tmp / "server.log", "w")  # noqa: SIM115 - closed with the process
    proc = subprocess.Popen(
        [sys.executable, "launch.py", "--model", model, "--port", str(port), "--device", "cpu"],
        cwd=REPO,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}/"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"launch.py exited: {(tmp / 'server.log').read_text()[-2000:]}")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return proc, url
        except OSError:
            time.sleep(0.5)
    proc.terminate()
    raise RuntimeError("launch.py did not answer in time")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("e2e")
    model = make_tiny_model(tmp / "tiny32.safetensors")
    proc, url = start_app(model, tmp)
    yield url, model, tmp
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()


@pytest.fixture(scope="module")
def client(server):
    from gradio_client import Client

    return Client(server[0], verbose=False, download_files=str(server[2] / "downloads"))


def load(path) -> tuple[np.ndarray, dict]:
    with Image.open(path) as im:
        return np.asarray(im.convert("RGB")), dict(im.info)


def test_binds_localhost_only(server):
    assert server[0].startswith("http://127.0.0.1:")


def test_generate_then_render_recipe_bit_for_bit(client):
    path = client.predict("5", 0.7, None, "const", api_name="/generate")
    pix, info = load(path)
    assert pix.shape == (32, 32, 3)
    recipe = json.loads(info["stylescope-recipe"])
    assert recipe["seed"] == 5 and recipe["truncation_psi"] == 0.7
    again = client.predict(json.dumps(recipe), api_name="/render_recipe")
    assert np.array_equal(load(again)[0], pix)
    other = client.predict("5", -0.5, 4, "random", api_name="/generate")
    assert not np.array_equal(load(other)[0], pix)


def test_user_errors_are_one_line_and_server_keeps_serving(client):
    from gradio_client.exceptions import AppError

    for args in [("abc", 0.7, None, "const"), ("1", 3.0, None, "const")]:
        with pytest.raises(AppError) as e:
            client.predict(*args, api_name="/generate")
        assert "\n" not in str(e.value)
    with pytest.raises(AppError, match="JSON"):
        client.predict("{broken", api_name="/render_recipe")
    assert load(client.predict("1", 0.7, None, "const", api_name="/generate"))[0].shape == (32, 32, 3)


def test_mix_and_noise_endpoints(client):
    mix = client.predict("1,2", "3,4", [0, 1, 2, 3], 1.0, 0.7, "const", api_name="/mix")
    pix, info = load(mix)
    assert pix.shape == (3 * 32 + 4 * 2, 3 * 32 + 4 * 2, 3)
    assert json.loads(info["stylescope-mix"])["col_seeds"] == [3, 4]
    image, std = client.predict("4", 0.7, [0, 1, 2], 1.0, 3, 4, api_name="/noise")
    img_pix, img_info = load(image)
    assert img_pix.shape == (32, 32, 3) and load(std)[0].shape == (32, 32, 3)
    # the noise image's recipe renders to the same pixels
    again = client.predict(img_info["stylescope-recipe"], api_name="/render_recipe")
    assert np.array_equal(load(again)[0], img_pix)


def test_layers_and_train_status_endpoints(client):
    img, feats, img2, feats2, info = client.predict(
        "3", 0.7, "conv1", "mean", 0, "viridis", "(none)", api_name="/layers"
    )
    assert load(img)[0].shape == (32, 32, 3) and img2 is None and "conv1" in info
    table = client.predict("(none)", 8, "end", api_name="/ppl")
    assert "| W-end |" in table and "| Z-end |" in table and "distance **" in table
    from gradio_client.exceptions import AppError

    with pytest.raises(AppError, match="choose a run"):
        client.predict(None, api_name="/train_status")
