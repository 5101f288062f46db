"""JavisDiT's clip sizes: the (height, width) of each resolution and aspect ratio, from the
reference's ``datasets/aspect.py`` tables (its ratios are height : width, so "9:16" at 240p is
240 x 426)."""

from __future__ import annotations

SIZES: dict[str, dict[str, tuple[int, int]]] = {
    "144p": {"9:16": (144, 256), "16:9": (256, 144), "1:1": (192, 192), "3:4": (166, 221),
             "4:3": (221, 165), "2:3": (156, 234), "3:2": (235, 156)},
    "240p": {"9:16": (240, 426), "16:9": (426, 240), "1:1": (320, 320), "3:4": (276, 368),
             "4:3": (370, 278), "2:3": (262, 393), "3:2": (392, 262)},
    "360p": {"9:16": (360, 640), "16:9": (640, 360), "1:1": (480, 480), "3:4": (416, 554),
             "4:3": (554, 416), "2:3": (392, 588), "3:2": (588, 392)},
    "480p": {"9:16": (480, 854), "16:9": (854, 480), "1:1": (640, 640), "3:4": (554, 738),
             "4:3": (740, 555), "2:3": (522, 784), "3:2": (784, 522)},
}

def choices() -> list[str]:
    """'240p 9:16 (240x426)': the combo labels, height x width."""
    return [f"{res} {ratio} ({h}x{w})" for res, table in SIZES.items() for ratio, (h, w) in table.items()]


def parse(choice: str) -> tuple[int, int]:
    """(height, width) of a ``choices()`` label."""
    res, ratio = choice.split(" ")[:2]
    return SIZES[res][ratio]
