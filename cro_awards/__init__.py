"""cro-awards: survey exports in, CRO Leadership Awards out.

The package holds what flows and tasks share: the survey year's configuration model
(`cro_awards.config`), runtime settings (`cro_awards.settings`), the errors a user meets
(`cro_awards.errors`) and the command line (`cli.main`, which nothing imports).
"""

__version__ = "0.1.0"
