"""What each evaluation metric means for the tables: its group (Text or AV, as the paper groups
its Improvement %) and its direction. Unknown names default to a text metric where higher is
better; a config's [metrics] groups override the group."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class MetricInfo:
    name: str
    group: str
    higher_is_better: bool


AV_WORDS = ("sync", "av_align", "javisscore", "avh", "av_ib")


def info(name: str, groups: dict[str, str] | None = None) -> MetricInfo:
    """``*_error`` / ``*_error_s`` metrics are lower-is-better; sync metrics are AV."""
    lower = name.endswith("_error") or name.endswith("_error_s")
    group = (groups or {}).get(name) or ("av" if any(w in name for w in AV_WORDS) else "text")
    return MetricInfo(name, group, not lower)


def infos(names, groups: dict[str, str] | None = None) -> dict[str, MetricInfo]:
    return {n: info(n, groups) for n in names}
