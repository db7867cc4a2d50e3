"""Exceptions raised by opm-nlp.

Every user-facing failure is one of these; the CLI prints ``str(error)`` as one line and exits 1.
"""


class OpmNlpError(Exception):
    """Base class for errors caused by the user's input, files or set-up."""


class CodebookError(OpmNlpError):
    """The codebook file is missing, malformed or inconsistent."""


class DataError(OpmNlpError):
    """A survey or coded-data file cannot be read or does not match what was asked for."""


class ModelError(OpmNlpError):
    """A model folder is missing, incomplete, tampered with, or does not match the codebook."""


class SpecError(OpmNlpError):
    """A pre/post spec file is missing, malformed, or names columns the answers table lacks."""


class ReviewError(OpmNlpError):
    """A review project or review file is missing, inconsistent, or does not match the codebook."""


class ServerError(OpmNlpError):
    """A review server cannot be reached, or refused the request (wrong URL or API key)."""
