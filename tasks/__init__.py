"""The Prefect tasks of the flows: thin wrappers over the pure core (`cro_awards`), one per stage.

`tasks.awards` wraps each stage of `cro_awards.run.pipeline` (extract, stage, validate, transform, check),
the quarantine's and the publication's writes, the report's rendering and the run's artifacts. What
decides a number lives in `cro_awards` and runs without Prefect.
"""
