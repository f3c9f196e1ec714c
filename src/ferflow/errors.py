"""The error type every stage raises for bad input; the CLI prints it as one line and exits non-zero."""


class FerflowError(Exception):
    """A user-facing error: its message is one line that names the offending file or key."""
