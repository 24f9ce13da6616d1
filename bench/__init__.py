"""Benchmarks and the built-in judged evaluation sets; run from a source checkout.

Nothing here is part of the installed package: `python -m bench.eval` scores the built-in
sets, `python -m bench.search` and `python -m bench.ingest` measure speed, and `bench.media` /
`bench.synthetic` build media and bulk data for them, the tests and the demo.
"""
