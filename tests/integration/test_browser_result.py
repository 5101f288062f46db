"""A search's result on the canvas, in the real frontend of the real server: after a ToyAV
Best-of-N queued from the page, the search node shows the winning frames as a strip, an audio
player that plays the winner's sound and a summary naming the winner; the mp4 is a saved output
in the queue history; with keep_candidates every candidate's mp4 exists, and the last live
preview was the winner's frame (closest of all candidates' frames), not the newest candidate's."""

from __future__ import annotations

import base64
import io
import json
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image

from browser import open_frontend
from comfyctl import REPO

from conftest import ARTIFACTS

pytestmark = [pytest.mark.integration, pytest.mark.browser]

RUN = """async (graph) => {
  const api = window.app.api;
  const previews = [];
  api.addEventListener("b_preview_with_metadata", async (e) => {
    const bytes = new Uint8Array(await e.detail.blob.arrayBuffer());
    previews.push(btoa(String.fromCharCode(...bytes)));
  });
  const done = new Promise((resolve, reject) => {
    api.addEventListener("execution_success", resolve);
    api.addEventListener("execution_error", (e) => reject(JSON.stringify(e.detail)));
  });
  await window.app.loadApiJson(graph, "search result");
  await window.app.queuePrompt(0, 1);
  await done;
  for (let i = 0; i < 10; i++) await new Promise((r) => requestAnimationFrame(r));
  const node = window.app.graph.getNodeById(6);
  const box = node.widgets?.find((w) => w.name === "avits_result")?.element;
  const audio = box?.querySelector("audio.avits-audio");
  const sound = audio ? await fetch(audio.src) : null;
  return {
    summary: box?.querySelector(".avits-summary")?.textContent ?? null,
    audio: audio ? {status: sound.status, type: sound.headers.get("content-type"),
                    bytes: (await sound.arrayBuffer()).byteLength} : null,
    rows: box ? box.querySelectorAll("table.avits-candidates tr").length : 0,
    strip: [...(box?.querySelectorAll("img.avits-strip") ?? [])].map((img) => [img.naturalWidth, img.naturalHeight]),
    previews,
  };
}"""


def middle_frame(path: Path) -> np.ndarray:
    with av.open(str(path)) as f:
        frames = [fr.to_ndarray(format="rgb24") for fr in f.decode(video=0)]
    return frames[len(frames) // 2].astype(np.float64)


def test_the_result_is_on_the_canvas_and_the_last_preview_is_the_winner(comfy):
    graph = json.loads((REPO / "workflows" / "api" / "toyav_best_of_n.json").read_text())
    graph["5"]["inputs"].update(name="browser-result", reset=True)
    graph["6"]["inputs"].update(n=4, keep_candidates=True, chunk_size=2)
    with open_frontend(comfy) as page:
        shown = page.evaluate(RUN, graph)
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "search-result.png"))
    history = comfy.get("/history")
    entry = next(e for e in history.values() if e["prompt"][2].get("5", {}).get("inputs", {})
                 .get("name") == "browser-result")
    out = entry["outputs"]["6"]
    report = json.loads(out["avits_report"][0])
    assert shown["summary"].startswith(f"winner #{report['best']} of 4")
    assert shown["audio"]["status"] == 200 and shown["audio"]["bytes"] > 1000
    assert shown["audio"]["type"].startswith("audio/")
    assert shown["rows"] == 1 + 4  # header + every candidate
    frames = graph["1"]["inputs"]
    assert len(shown["strip"]) == 1 and shown["strip"][0][1] == frames["height"]  # one strip
    assert shown["strip"][0][0] > 5 * frames["width"]  # six frames side by side
    video = out["video"][0]  # in the queue history: the Assets panel lists it from there
    assert video["type"] == "output" and (comfy.base / "output" / video["subfolder"] / video["filename"]).exists()
    files = {c["id"]: Path(c["file"]) for c in report["candidates"]}
    assert len(files) == 4 and all(f.exists() for f in files.values())
    assert shown["previews"], "no live preview reached the page"
    size = (frames["width"], frames["height"])  # the preview is drawn at up to 512 pixels
    last = np.asarray(Image.open(io.BytesIO(base64.b64decode(shown["previews"][-1]))).convert("RGB")
                      .resize(size, Image.Resampling.BOX), dtype=np.float64)
    distance = {i: np.abs(middle_frame(f) - last).mean() for i, f in files.items()}
    assert min(distance, key=distance.get) == report["best"], distance
