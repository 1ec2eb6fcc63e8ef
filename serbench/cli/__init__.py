"""The ``serbench`` command, one module per command group; :mod:`serbench.cli.main` builds the
parser and dispatches. Nothing outside this package imports it."""
