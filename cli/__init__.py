"""The command line: `cro-awards` (cli.main). The top layer: nothing imports it."""
