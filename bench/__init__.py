"""Benchmark of the cro-awards pipeline against a bare DuckDB baseline and an empty-flow floor.

Run: `.venv/bin/python -m bench.run [--sizes 1,10,100,1000] [--out bench/results/latest.json]`.
Modules: `data` (seeded synthetic exports, cached under bench/data/), `baseline` (the same rules and
scores in hand-written DuckDB SQL, no Prefect, no GX), `floor` (an empty Prefect flow importing the
pipeline's libraries), `run` (measurement, table, targets, JSON).
"""
