"""Search over candidates: aggregators (incl. ARW), Best-of-N, EvoSearch, reports."""
