"""Judged query sets and helpers for measuring search quality on real, independently made data."""
