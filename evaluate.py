"""``python -m comfyui_avits.evaluate CONFIG``: the evaluation command (see evaluation/cli.py)."""

import sys

from .evaluation.cli import main

if __name__ == "__main__":
    sys.exit(main())
