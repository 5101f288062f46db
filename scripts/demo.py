"""scripts/demo's body: start a real ComfyUI server, queue an API workflow over HTTP with a
progress bar in the terminal, then report where the results are and how the winner compares
with naive sampling (the first candidate: exactly what one sample from the base seed gives)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from comfyctl import REPO, ComfyServer  # noqa: E402


def progress_bar(data: dict) -> None:
    value, total = data["value"], max(data["max"], 1)
    filled = int(40 * value / total)
    print(f"\r  [{'#' * filled}{'.' * (40 - filled)}] {value}/{total}", end="", flush=True)


def table(report: dict) -> str:
    cands = {c["id"]: c for c in report["candidates"]}
    naive, best = cands[0], cands[report["best"]]
    names = list(naive["rewards"])
    rows = [("", "naive (seed %d)" % naive["seed"], f"chosen (#{best['id']})")]
    rows += [(f"reward {k}", f"{naive['rewards'][k]:.4f}", f"{best['rewards'][k]:.4f}") for k in names]
    rows.append(("score", f"{naive['score']:.4f}", f"{best['score']:.4f}"))
    if naive.get("oracle"):
        rows += [(f"oracle {k}", f"{naive['oracle'][k]:.4f}", f"{best['oracle'][k]:.4f}")
                 for k in naive["oracle"]]
    width = [max(len(r[i]) for r in rows) for i in range(3)]
    return "\n".join("  " + "  ".join(c.ljust(w) for c, w in zip(r, width)) for r in rows)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--workflow", default=str(REPO / "workflows/api/toyav_evosearch.json"))
    ap.add_argument("--prompt", help="override the generator's prompt")
    ap.add_argument("--seed", type=int, help="override the search's base seed")
    ap.add_argument("--base-dir", default=str(REPO / ".comfy"),
                    help="ComfyUI base directory (models, output, user: the ARW state lives here)")
    args = ap.parse_args()

    graph = json.loads(Path(args.workflow).read_text())
    search_id = next(k for k, n in graph.items() if n["class_type"] in
                     ("AVITS_EvoSearch", "AVITS_BestOfN", "AVITS_NaiveSample"))
    if args.prompt:
        next(n for n in graph.values() if "prompt" in n["inputs"])["inputs"]["prompt"] = args.prompt
    if args.seed is not None:
        graph[search_id]["inputs"]["seed"] = args.seed

    server = ComfyServer(Path(args.base_dir))
    print(f"starting ComfyUI (log: {server.log_path})", flush=True)
    server.start()
    try:
        print(f"queued {Path(args.workflow).name} on {server.url}")
        entry = server.run(graph, timeout=1800, on_progress=progress_bar)
        print()
    finally:
        server.stop()
    report = json.loads(entry["outputs"][search_id]["avits_report"][0])
    files = report["files"]
    print(f"\n{report['method']} for '{report['prompt']}': {len(report['candidates'])} candidates, "
          f"{report['nfe']} denoiser calls, {report['timings']['total']:.1f} s, "
          f"aggregator {report['aggregator']['name']}")
    print(table(report))
    print(f"\nvideo (mp4 with audio): {files['video']}")
    print(f"report:                 {files['report']}")
    print(f"plot:                   {files['plot']}")


if __name__ == "__main__":
    main()
