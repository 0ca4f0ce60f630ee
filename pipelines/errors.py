"""Errors that reach the user as one readable line (the CLI prints them and exits 2)."""


class CliError(Exception):
    """A problem with the user's input: printed as one line, exit code 2."""
