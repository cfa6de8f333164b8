"""The graph runner and what every run stands on: the DuckDB workspace and the graph (graph), the files of
sql/ (sql), the identity key shared by SQL and Python (identity), settings, errors, locks, checkpoints,
confined paths and the watchdog. Imports nothing else of the project.
"""
