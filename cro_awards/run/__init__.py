"""A survey year's run end to end: the graph's nodes registered and run (pipeline), and the dry run of
`cro-awards check` (dry_run). The top of the core: every other subpackage is below it.
"""
