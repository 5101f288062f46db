"""The evaluation's gallery page in the real browser: every clip plays (its metadata loads),
the scores are on the page, and the screenshot is not blank."""

from __future__ import annotations

import functools
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest
from PIL import Image

from browser import open_page
from comfyctl import REPO

pytestmark = pytest.mark.integration

CONFIG = """
output = "out"
seeds = [0]
aggregators = ["arw_shared"]
gallery = 2
bootstrap = 100
[prompts]
set = "toyav"
count = 2
[generator]
kind = "toyav"
steps = 10
[selection]
verifiers = ["toy_text_match", "av_align"]
[[methods]]
kind = "naive"
[[methods]]
kind = "best_of_n"
n = [4]
"""


FRAMES = """[...document.querySelectorAll('video')].map((v) => {
  const c = document.createElement('canvas');
  c.width = v.videoWidth; c.height = v.videoHeight;
  const g = c.getContext('2d');
  g.drawImage(v, 0, 0);
  const px = g.getImageData(0, 0, c.width, c.height).data;
  let brightest = 0;
  for (let i = 0; i < px.length; i += 4) brightest = Math.max(brightest, px[i], px[i + 1], px[i + 2]);
  return {duration: v.duration, width: v.videoWidth, brightest};
})"""


def test_the_gallery_opens_with_its_videos_and_scores(tmp_path):
    from comfyui_avits.evaluation.cli import main

    (tmp_path / "c.toml").write_text(CONFIG)
    assert main([str(tmp_path / "c.toml"), "--no-progress"]) == 0
    page_path = tmp_path / "out" / "gallery.html"
    # served over HTTP (as a user would share it), so the test may read the decoded frames
    handler = functools.partial(SimpleHTTPRequestHandler, directory=str(page_path.parent))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        shown = _show(f"http://127.0.0.1:{server.server_port}/gallery.html")
    finally:
        server.shutdown()
    videos, text, shot = shown
    assert len(videos) == 2 * 2  # naive and Best-of-4 for each of the 2 prompts
    # 2 s clips of ToyAV's 64 x 64 frames, their first frame decoded (the object is on it)
    assert all(v["duration"] > 1.5 and v["width"] == 64 and v["brightest"] > 100 for v in videos), videos
    assert "text_match" in text and "sync_error_s" in text
    assert np.asarray(Image.open(shot).convert("L"), dtype=float).std() > 10, "the page rendered blank"


def _show(url: str):
    """The gallery's videos (duration, width, brightest pixel of the shown frame), its text and
    a full-page screenshot."""
    artifacts = REPO / "test-artifacts"
    artifacts.mkdir(exist_ok=True)
    shot = artifacts / "evaluation-gallery.png"
    with open_page(url) as page:
        page.wait_for_function("[...document.querySelectorAll('video')].every((v) => v.readyState >= 2)",
                               timeout=30_000)
        videos = page.evaluate(FRAMES)
        text = page.inner_text("body")
        page.screenshot(path=str(shot), full_page=True)
    return videos, text, shot
