"""The evaluation reporting layer on a small fixed results list: Improvement % against a hand
computation, paired bootstrap intervals, selection marks, undefined improvements, and the
plots and gallery written from the same rows."""

from __future__ import annotations

import csv
import math
import re

import numpy as np
import pytest

from comfyui_avits.evaluation.gallery import write_gallery
from comfyui_avits.evaluation.plots import arw_scales_plot, scaling_plot
from comfyui_avits.evaluation.tables import (MetricInfo, arm_means, bootstrap_indices,
                                             collect_arms, fmt, summarize, write_tables)

METRICS = {"text_match": MetricInfo("text_match", "text", True),
           "sync_error_s": MetricInfo("sync_error_s", "av", False)}
PROMPTS = ["a dog barks", 'a <b>"loud"</b> drum & bass', "rain on a roof"]

# (method, kind, n, aggregator, nfe, candidates): per prompt a list of seeds' (text_match, sync)
ARMS = {
    ("naive", "naive", None, "-", 30, 1): [[(0.4, 0.2)], [(0.4, 0.2), (0.6, 0.4)], [(0.6, 0.1)]],
    ("best_of_n[n=4]", "best_of_n", 4, "arw_shared", 120, 4):
        [[(0.6, 0.15)], [(0.7, 0.2)], [(0.8, 0.1)]],
    ("best_of_n[n=2]", "best_of_n", 2, "arw_shared", 60, 2):
        [[(0.5, 0.2)], [(0.6, 0.2)], [(0.7, 0.1)]],
    ("evosearch[0,10|2,2]", "evosearch", None, "arw_shared", 121, 4):
        [[(0.7, 0.1)], [(0.8, 0.1)], [(0.6, 0.1)]],
}
CLIPS = {(0, "naive"): "clips/p0 naive.mp4", (0, "best_of_n[n=4]"): "clips/p0_bon4.mp4",
         (0, "best_of_n[n=2]"): "clips/p0_bon2.mp4", (1, "naive"): "clips/p1_naive.mp4",
         (1, "evosearch[0,10|2,2]"): "clips/p1_evo.mp4"}


def make_rows(arms=ARMS, selection=("text_match",)) -> list[dict]:
    rows = []
    for (method, kind, n, agg, nfe, cands), prompts in arms.items():
        for p, seeds in enumerate(prompts):
            for s, (tm, sync) in enumerate(seeds):
                searched = kind != "naive"
                rows.append({
                    "key": f"{method}|{agg}|{p}|{s}", "prompt_index": p, "prompt": PROMPTS[p],
                    "seed": s, "method": method, "method_kind": kind, "n": n, "aggregator": agg,
                    "selection": list(selection) if searched else [],
                    "metrics": {"text_match": tm, "sync_error_s": sync},
                    "nfe": nfe, "wall_s": 0.5 * nfe, "candidates": cands,
                    "arw_scales": {"text_match": 1.0 + p, "av_sync": 2.0 / (1 + p)}
                    if agg == "arw_shared" else None,
                    "history_size": p + 1 if agg == "arw_shared" else None,
                    "clips": {"chosen": CLIPS.get((p, method)),
                              "naive": CLIPS.get((p, "naive")) if searched else None}
                    if p < 2 else {"chosen": None, "naive": None}})
    return rows


@pytest.fixture(scope="module")
def summary():
    return summarize(make_rows(), METRICS, bootstrap=400)


def arm(summary, method):
    return next(a for a in summary["arms"] if a["method"] == method)


# ---- the numbers -------------------------------------------------------------------------------

def test_improvement_matches_a_hand_computation(summary):
    # prompt means (a prompt's seeds averaged first), then the mean over the three prompts
    naive_tm = (0.4 + (0.4 + 0.6) / 2 + 0.6) / 3            # 0.5 (not 0.5 by chance: seeds
    naive_sync = (0.2 + (0.2 + 0.4) / 2 + 0.1) / 3          # 0.2   weighted per prompt)
    bon_tm, bon_sync = (0.6 + 0.7 + 0.8) / 3, (0.15 + 0.2 + 0.1) / 3
    evo_tm, evo_sync = (0.7 + 0.8 + 0.6) / 3, 0.1
    imp = {"best_of_n[n=4]": ((bon_tm - naive_tm) / naive_tm * 100,        # +40
                              -(bon_sync - naive_sync) / naive_sync * 100),  # +25, flipped
           "evosearch[0,10|2,2]": ((evo_tm - naive_tm) / naive_tm * 100,    # +40
                                   -(evo_sync - naive_sync) / naive_sync * 100)}  # +50
    assert arm(summary, "naive")["means"]["text_match"]["value"] == pytest.approx(naive_tm)
    assert arm(summary, "naive")["means"]["sync_error_s"]["value"] == pytest.approx(naive_sync)
    for method, (tm, sync) in imp.items():
        a = arm(summary, method)
        assert a["improvement"]["text_match"]["value"] == pytest.approx(tm)
        assert a["improvement"]["sync_error_s"]["value"] == pytest.approx(sync)
        assert a["groups"]["text"]["value"] == pytest.approx(tm)
        assert a["groups"]["av"]["value"] == pytest.approx(sync)
        assert a["groups"]["overall"]["value"] == pytest.approx((tm + sync) / 2)
    assert arm(summary, "best_of_n[n=4]")["groups"]["overall"]["value"] == pytest.approx(32.5)
    assert "improvement" not in arm(summary, "naive")


def test_cost_is_per_prompt_seed_run(summary):
    naive = arm(summary, "naive")
    assert (naive["prompts"], naive["runs"], naive["nfe"], naive["wall_s"]) == (3, 4, 30, 15)
    assert arm(summary, "evosearch[0,10|2,2]")["candidates"] == 4


def test_only_arms_at_equal_nfe_and_aggregator_are_compared_evosearch_first(summary):
    # evosearch (NFE 121) and best_of_n[n=4] (120) are within 1 %; best_of_n[n=2] (60) is not
    [c] = summary["comparisons"]
    assert (c["a"]["method"], c["b"]["method"]) == ("evosearch[0,10|2,2]", "best_of_n[n=4]")
    assert c["metrics"]["text_match"]["value"] == pytest.approx(0.0)
    assert c["metrics"]["sync_error_s"]["value"] == pytest.approx(25.0)
    assert c["groups"]["overall"]["value"] == pytest.approx(45.0 - 32.5)


def test_intervals_contain_the_estimate_and_are_reproducible(summary):
    cells = [c for a in summary["arms"] for part in ("means", "improvement", "groups")
             for c in a.get(part, {}).values()]
    cells += [c for cmp in summary["comparisons"] for c in cmp["metrics"].values()]
    for c in cells:
        assert c["lo"] <= c["value"] + 1e-9 and c["value"] <= c["hi"] + 1e-9
    assert any(c["hi"] - c["lo"] > 1 for c in cells)  # not degenerate
    assert summarize(make_rows(), METRICS, bootstrap=400) == summary
    other = summarize(make_rows(), METRICS, bootstrap=400, seed=1)
    assert arm(other, "best_of_n[n=4]")["groups"] != arm(summary, "best_of_n[n=4]")["groups"]


def test_mean_interval_is_the_percentile_of_resampled_prompt_means():
    [naive, *_] = collect_arms(make_rows(), METRICS)
    per_prompt = [0.4, 0.5, 0.6]
    idx = bootstrap_indices(3, 300, seed=7)
    reps = [sum(per_prompt[i] for i in draw) / 3 for draw in idx]
    got = arm_means(naive, METRICS, bootstrap=300, seed=7)["text_match"]
    assert got["lo"] == pytest.approx(np.percentile(reps, 2.5))
    assert got["hi"] == pytest.approx(np.percentile(reps, 97.5))


def test_improvement_interval_is_paired_over_prompts():
    # an arm that is naive x 1.1 on every prompt gains exactly 10 % in every replicate when the
    # same prompts are resampled for both; an unpaired bootstrap would give a wide interval
    naive = ARMS[("naive", "naive", None, "-", 30, 1)]
    scaled = [[(1.1 * tm, sync) for tm, sync in seeds] for seeds in naive]
    s = summarize(make_rows({**{k: v for k, v in ARMS.items() if k[1] == "naive"},
                             ("bon", "best_of_n", 2, "rank", 60, 2): scaled}), METRICS,
                  bootstrap=500)
    cell = arm(s, "bon")["improvement"]["text_match"]
    assert cell["lo"] == pytest.approx(10.0) and cell["hi"] == pytest.approx(10.0)
    assert arm(s, "bon")["improvement"]["sync_error_s"]["hi"] == pytest.approx(0.0)


# ---- the files ---------------------------------------------------------------------------------

def read_csv(path):
    with open(path, newline="") as f:
        return list(csv.reader(f))


def test_tables_are_written_with_selection_metrics_marked(tmp_path):
    paths = write_tables(make_rows(), METRICS, tmp_path, bootstrap=200)
    assert set(paths) == {"tables", "means", "improvement", "improvement_spread", "cost", "comparisons"}
    md = paths["tables"].read_text()
    headers = [line for line in md.splitlines() if line.startswith(("| method", "| A "))]
    assert len(headers) == 5
    for h in headers[:3] + headers[4:]:  # every table with metric columns
        assert "text_match*" in h and "sync_error_s ↓" in h and "sync_error_s ↓*" not in h
    assert md.count("* also used for selection: reward hacking possible") == 4
    assert "+40.0 [" in md and "+32.5 [" in md
    for name in ("means", "improvement", "comparisons"):
        head = read_csv(paths[name])[0]
        assert any(h.endswith("text_match*") for h in head), head
        assert any(h.endswith("sync_error_s ↓") for h in head), head
    imp = read_csv(paths["improvement"])
    row = dict(zip(imp[0], next(r for r in imp if r[0] == "best_of_n[n=4]")))
    assert float(row["Overall*"]) == pytest.approx(32.5)
    assert float(row["sync_error_s ↓"]) == pytest.approx(25.0)
    assert float(row["text_match* lo"]) <= 40 <= float(row["text_match* hi"])


def test_no_selection_means_no_marks(tmp_path):
    paths = write_tables(make_rows(selection=()), METRICS, tmp_path, bootstrap=50)
    md = paths["tables"].read_text()
    assert "*" not in md.replace("\\*", "") and "reward hacking" not in md


def test_a_zero_naive_mean_gives_na_and_empty_csv_cells(tmp_path):
    zero = {k: [[(tm, 0.0 if k[1] == "naive" else sync) for tm, sync in seeds] for seeds in v]
            for k, v in ARMS.items()}
    rows = make_rows(zero)
    s = summarize(rows, METRICS, bootstrap=100)
    bon = arm(s, "best_of_n[n=4]")
    assert bon["improvement"]["sync_error_s"] == {"value": None, "lo": None, "hi": None}
    assert bon["groups"]["av"]["value"] is None
    assert bon["groups"]["overall"]["value"] == pytest.approx(40.0)  # the defined metric only
    paths = write_tables(rows, METRICS, tmp_path, bootstrap=100)
    md = paths["tables"].read_text()
    assert "n/a" in md and "naive mean is 0" in md
    for name in ("means", "improvement", "cost", "comparisons"):
        text = paths[name].read_text().lower()
        assert not re.search(r"\b(nan|inf|infinity)\b", text), name
    imp = read_csv(paths["improvement"])
    row = dict(zip(imp[0], imp[1]))
    assert row["sync_error_s ↓"] == row["sync_error_s ↓ lo"] == row["AV"] == ""


def test_bad_rows_are_refused():
    rows = make_rows()
    del rows[5]["metrics"]["sync_error_s"]
    with pytest.raises(ValueError, match=re.escape(rows[5]["key"])):
        summarize(rows, METRICS)
    no_naive = [r for r in make_rows() if r["method_kind"] != "naive"]
    with pytest.raises(ValueError, match="0 naive arms"):
        summarize(no_naive, METRICS)


def test_number_format():
    assert [fmt(x) for x in (0.51234, 32.5, 1234.7, 0.000123456, 0.0, None, math.inf)] == \
        ["0.512", "32.5", "1235", "0.000123", "0", "n/a", "n/a"]
    assert fmt(40.0, signed=True) == "+40.0" and fmt(-0.0001, signed=True) == "-0.000100"


# ---- plots and gallery -------------------------------------------------------------------------

def test_plots_are_written(tmp_path):
    rows = make_rows()
    for path in (scaling_plot(rows, METRICS, tmp_path / "scaling.png", bootstrap=100),
                 arw_scales_plot(rows, tmp_path / "arw.png")):
        assert path is not None and path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert path.stat().st_size > 10_000


def test_plots_skip_when_there_is_nothing_to_plot(tmp_path):
    naive_only = [r for r in make_rows() if r["method_kind"] == "naive"]
    assert scaling_plot(naive_only, METRICS, tmp_path / "s.png") is None
    no_shared = [r for r in make_rows() if r["aggregator"] != "arw_shared"]
    assert arw_scales_plot(no_shared, tmp_path / "a.png") is None
    assert not list(tmp_path.iterdir())


def test_gallery(tmp_path):
    path = write_gallery(make_rows(), METRICS, tmp_path)
    html = path.read_text()
    assert path == tmp_path / "gallery.html" and len(html) > 1000
    srcs = re.findall(r'<video controls[^>]*src="([^"]+)"', html)
    # prompt 0: naive, both Best-of-N; prompt 1: naive, EvoSearch; prompt 2: none
    assert srcs == ["clips/p0%20naive.mp4", "clips/p0_bon4.mp4", "clips/p0_bon2.mp4",
                    "clips/p1_naive.mp4", "clips/p1_evo.mp4"]
    assert html.count("<video") == len(srcs)
    assert html.count("no clip") == 4 * 3 - len(srcs)
    assert "&lt;b&gt;&quot;loud&quot;&lt;/b&gt; drum &amp; bass" in html
    assert "<b>" not in html
    assert html.count("<h2>") == 3 and "selected on: text_match" in html
    first = write_gallery(make_rows(), METRICS, tmp_path / "one", first=1).read_text()
    assert first.count("<h2>") == 1 and first.count("<video") == 3


def test_the_improvement_in_naive_spreads_matches_a_hand_computation(summary):
    """(m - m_naive) / s_naive * 100 with s_naive the population std of the naive per-prompt
    means (0.4, 0.5, 0.6 and 0.2, 0.3, 0.1): finite where the relative one would swing."""
    naive_tm, naive_sync = np.array([0.4, 0.5, 0.6]), np.array([0.2, 0.3, 0.1])
    s_tm, s_sync = naive_tm.std(), naive_sync.std()
    bon = arm(summary, "best_of_n[n=4]")
    want_tm = ((0.6 + 0.7 + 0.8) / 3 - naive_tm.mean()) / s_tm * 100
    want_sync = -((0.15 + 0.2 + 0.1) / 3 - naive_sync.mean()) / s_sync * 100
    assert bon["improvement_spread"]["text_match"]["value"] == pytest.approx(want_tm)
    assert bon["improvement_spread"]["sync_error_s"]["value"] == pytest.approx(want_sync)
    assert bon["groups_spread"]["overall"]["value"] == pytest.approx((want_tm + want_sync) / 2)
    lo, hi = bon["improvement_spread"]["text_match"]["lo"], bon["improvement_spread"]["text_match"]["hi"]
    assert lo <= want_tm <= hi


def test_both_improvement_tables_are_written(tmp_path):
    paths = write_tables(make_rows(), METRICS, tmp_path, bootstrap=100)
    text = paths["tables"].read_text()
    assert "## Improvement over naive (%)" in text and "## Improvement over naive in naive spreads (%)" in text
    rows = list(csv.reader(open(paths["improvement_spread"])))
    assert rows[0][:4] == ["method", "aggregator", "method_kind", "n"] and len(rows) == 4


def test_gain_capture_is_the_share_of_the_reference_gain_paired_over_prompts(tmp_path):
    """A search with half of Best-of-10's gain on every prompt keeps 50 % of it, in every
    resample; its NFE and wall-clock are given as fractions of the reference's."""
    from comfyui_avits.evaluation.capture import gain_capture, write

    naive = [(0.4, 0.2), (0.5, 0.3), (0.6, 0.1)]
    arms = {("naive", "naive", None, "-", 30, 1): [[p] for p in naive],
            ("best_of_n[n=10]", "best_of_n", 10, "arw_shared", 300, 10):
                [[(t + 0.2, s - 0.1)] for t, s in naive],
            ("draft_then_commit[n=10|commit=2]", "draft_then_commit", None, "arw_shared", 120, 2):
                [[(t + 0.1, s - 0.05)] for t, s in naive]}
    capture = gain_capture(make_rows(arms), METRICS, bootstrap=300)
    cheap = next(r for r in capture["arms"] if r["kind"] == "draft_then_commit")
    assert cheap["capture"] == pytest.approx({"value": 50.0, "lo": 50.0, "hi": 50.0})
    assert cheap["nfe_ratio"] == pytest.approx(0.4) and cheap["wall_ratio"] == pytest.approx(0.4)
    assert capture["meaningful"] and capture["reference"] == "best_of_n[n=10] · arw_shared"
    paths = write(make_rows(arms), METRICS, tmp_path, bootstrap=300)
    assert "50.0 [50.0, 50.0] %" in paths["capture.md"].read_text()
    assert paths["capture.png"].stat().st_size > 1000
    worse = dict(arms)
    worse[("best_of_n[n=10]", "best_of_n", 10, "arw_shared", 300, 10)] = [[p] for p in naive]
    assert not gain_capture(make_rows(worse), METRICS, bootstrap=300)["meaningful"]
