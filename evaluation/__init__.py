"""The evaluation command: configs, runs, tables."""
