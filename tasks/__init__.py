"""Prefect tasks of the awards flow, one module per stage; each module's pure functions are tested alone."""
