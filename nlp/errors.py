"""One root for every error a user can cause and fix, as spaCy and scikit-learn give their own.

Each error says, in one line, what is wrong (naming the file, line, option or value) and what to do about it; its
``code`` names the family, stable for scripts and tests (``err.code == "ingest"``). The command line prints
:class:`CdpdError` as one line with exit status 2 and the app shows its message; anything else that escapes is a
bug and keeps its traceback. The concrete errors live beside the code that raises them (``IngestError`` in
:mod:`nlp.ingest`, ``ModelError`` in :mod:`nlp.models`, ...); each also derives from the built-in exception it
used to be (``ValueError`` or ``RuntimeError``), so code written against those keeps working.
"""

from __future__ import annotations

__all__ = ["CdpdError", "ConfigError", "DataError", "ModelError", "UsageError"]


class CdpdError(Exception):
    """The root: a problem with the user's input, files, settings or environment, explained in one line."""

    code = "cdpd"


class ConfigError(CdpdError, ValueError):
    """A parameter or setting out of range, or of the wrong kind (a tagger's ``--params``, an analysis option)."""

    code = "config"


class UsageError(CdpdError, ValueError):
    """A command used in a way it cannot work (a missing argument, a file where a folder is needed, nothing
    usable in the inputs)."""

    code = "usage"


class DataError(CdpdError, ValueError):
    """Training or evaluation data a model cannot learn from or be scored on (too few units, no text)."""

    code = "data"


class ModelError(CdpdError, ValueError):
    """A model cannot be found, read, or used with the given codebook (defined here, not in :mod:`nlp.models`,
    so that every tagger's loader can raise it)."""

    code = "model"
