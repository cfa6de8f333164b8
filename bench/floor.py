"""The floor: an empty Prefect flow (one no-op task) that imports what the pipeline imports.

    python -m bench.floor

Run like `cro-awards run` (a fresh process, in Prefect's ephemeral mode or against PREFECT_API_URL),
it costs what any run of a Prefect flow with these libraries costs: interpreter start, imports,
Prefect's client and (ephemeral mode) its temporary server, creating a flow run and a task run.
The pipeline's time above the floor is its own work (GX context and suites, DuckDB SQL, Parquet...).

Unlike the pipeline, which imports great_expectations lazily during validation, this imports it up
front: its import cost is part of the floor either way.
"""

from __future__ import annotations

import os
import sys

# As `cro-awards run` does before importing the flow (cli/main.py, prepare_environment).
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "INFO")

import duckdb  # noqa: F401
import great_expectations  # noqa: F401
import openpyxl  # noqa: F401
import pandas  # noqa: F401
import pyarrow  # noqa: F401
import pydantic  # noqa: F401
import rich.console
import yaml  # noqa: F401
from prefect import flow, task
from prefect.cache_policies import NO_CACHE


@task(name="no-op", cache_policy=NO_CACHE, persist_result=False)
def no_op() -> None:
    return None


@flow(name="bench-floor", persist_result=False, log_prints=False)
def floor_flow() -> dict:
    no_op()
    return {}


def main() -> int:
    floor_flow()
    rich.console.Console().print("floor: empty flow done")
    return 0


if __name__ == "__main__":
    sys.exit(main())
