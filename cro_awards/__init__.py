"""cro-awards: survey exports in, CRO Leadership Awards out.

The package holds what flows and tasks share: the survey year's configuration model
(`cro_awards.reading.config`), runtime settings (`cro_awards.engine.settings`), the errors a user meets
(`cro_awards.engine.errors`) and the command line (`cli.main`, which nothing imports).

Its subpackages, from the bottom up (each imports only those before it; tests/test_layering.py):
engine (the graph runner and what every run stands on), reading (exports and the year's configuration),
method (judging and scoring), record (the typed record of a run), disclosure (the audit and the
differencing guard), publication (drafts, releases, diffs, history), report (the HTML report) and run
(a year's run and dry run: the graph's nodes registered and run).
"""

__version__ = "0.1.0"
