"""A static gallery page: for the first prompts, the naive clip beside each arm's chosen clip,
with the metrics under each, so a reader can check the numbers against what they show. Plain
HTML with inline CSS, relative clip paths: the folder can be copied or served as it is."""

from __future__ import annotations

from html import escape
from pathlib import Path
from urllib.parse import quote

from .tables import MetricInfo, arm_keys, fmt

STYLE = """body{font-family:sans-serif;margin:1.5em;color:#222}
section{margin-bottom:2.5em}.row{display:flex;flex-wrap:wrap;gap:1em}
figure{margin:0;width:320px}video{width:320px;background:#000}
.none{width:320px;height:180px;display:flex;align-items:center;justify-content:center;
background:#eee;color:#777}figcaption{font-weight:bold;margin:.3em 0}
table{border-collapse:collapse;font-size:.85em}td{padding:0 .6em 0 0}.sel{color:#a40}
.note{color:#555;font-size:.85em}"""


def _clip(path: str | None) -> str:
    if not path:
        return '<div class="none">no clip</div>'
    return f'<video controls preload="auto" src="{escape(quote(path), quote=True)}"></video>'


def _metrics_table(row: dict | None, metrics: dict[str, MetricInfo]) -> str:
    """The row's metrics, selection rewards starred and listed."""
    if row is None:
        return '<p class="note">no result</p>'
    selection = list(row.get("selection") or ())
    cells = []
    for name, info in metrics.items():
        value = (row.get("metrics") or {}).get(name)
        star = '<span class="sel">*</span>' if name in selection else ""
        arrow = "" if info.higher_is_better else " ↓"
        cells.append(f"<tr><td>{escape(info.name)}{arrow}{star}</td>"
                     f"<td>{fmt(None if value is None else float(value))}</td></tr>")
    note = (f'<p class="note">* selected on: {escape(", ".join(selection))}</p>'
            if selection else "")
    return f"<table>{''.join(cells)}</table>{note}"


def _figure(title: str, clip: str | None, row: dict | None, metrics: dict[str, MetricInfo]) -> str:
    return (f"<figure>{_clip(clip)}<figcaption>{escape(title)}</figcaption>"
            f"{_metrics_table(row, metrics)}</figure>")


def _seed_shown(rows: list[dict]) -> int:
    """The lowest seed of the prompt that has a clip (else its lowest seed): one line a prompt."""
    with_clip = [r["seed"] for r in rows if any((r.get("clips") or {}).values())]
    return min(with_clip or [r["seed"] for r in rows])


def _section(prompt_rows: list[dict], keys: list[tuple[str, str]],
             metrics: dict[str, MetricInfo]) -> str:
    seed = _seed_shown(prompt_rows)
    at_seed = {(r["method"], r["aggregator"]): r for r in prompt_rows if r["seed"] == seed}
    naive_keys = [k for k in keys if at_seed.get(k, {}).get("method_kind") == "naive"]
    naive_row = at_seed.get(naive_keys[0]) if naive_keys else None
    naive_clip = ((naive_row or {}).get("clips") or {}).get("chosen") or next(
        (c for r in at_seed.values() if (c := (r.get("clips") or {}).get("naive"))), None)
    figures = [_figure("naive", naive_clip, naive_row, metrics)]
    for key in keys:
        if key in naive_keys:
            continue
        row = at_seed.get(key)
        title = key[0] if key[1] in ("", "-") else f"{key[0]} · {key[1]}"
        figures.append(_figure(title, ((row or {}).get("clips") or {}).get("chosen"), row, metrics))
    first = prompt_rows[0]
    return (f"<section><h2>{escape(first['prompt'])}</h2>"
            f'<p class="note">prompt {first["prompt_index"]}, seed {seed}</p>'
            f'<div class="row">{"".join(figures)}</div></section>')


def write_gallery(rows: list[dict], metrics: dict[str, MetricInfo], out_dir: str | Path,
                  first: int = 4) -> Path:
    """gallery.html in ``out_dir`` for the first ``first`` prompts (by prompt index); clip paths
    are the rows' own, relative to ``out_dir``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    keys = arm_keys(rows)
    prompts = sorted({r["prompt_index"] for r in rows})[:first]
    sections = [_section([r for r in rows if r["prompt_index"] == p], keys, metrics)
                for p in prompts]
    body = "".join(sections) or "<p>No results.</p>"
    page = ('<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
            f"<title>AVITS evaluation gallery</title><style>{STYLE}</style></head><body>"
            "<h1>Evaluation gallery</h1><p class=\"note\">Naive sampling beside each arm's chosen "
            "sample; * marks a metric the search also selected on (reward hacking possible), ↓ "
            f"lower is better.</p>{body}</body></html>\n")
    path = out / "gallery.html"
    path.write_text(page, encoding="utf-8")
    return path
