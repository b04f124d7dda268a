"""Bounds on what one input may cost, in one place (README, "The command line"). Past a bound the input is refused
(or, inside a usable input, the one document is skipped) with a one-line reason naming it: never a machine that
runs out of memory, disk or patience."""

from __future__ import annotations

MIB = 1024 * 1024

#: One plain file (.txt, .md, .html, .pdf, .docx), one document read from stdin, one line of a JSON-lines table.
MAX_FILE_BYTES = 50 * MIB
#: The text of one document, in characters, whatever it came from (a table cell, a JSON line, a converted file).
MAX_DOCUMENT_CHARS = MAX_FILE_BYTES
#: A compressed table (.jsonl.gz, .csv.gz) once decompressed, counted as it streams, and the parts of a .docx once
#: inflated (their declared sizes): 10x the plain-file limit.
MAX_DECOMPRESSED_BYTES = 10 * MAX_FILE_BYTES
#: Everything read from stdin (``-``), JSON lines or plain text.
MAX_STDIN_BYTES = 10 * MAX_FILE_BYTES
#: Blank lines in a row in a JSON-lines table or on stdin: more is not a table of documents.
MAX_BLANK_LINES = 10_000
#: Nesting of one JSON value (a line of a table or of stdin): deeper is refused, not a RecursionError.
MAX_JSON_DEPTH = 100
#: Tags in one HTML page: a page with more is refused (the parse would take minutes).
MAX_HTML_TAGS = 200_000
#: Element nesting of an HTML page beyond which its text is taken by a plain, linear pass (no layout).
MAX_HTML_DEPTH = 200
#: One file of a model's state (weights, vocabulary, meta.json) in the model registry.
MAX_MODEL_FILE_BYTES = 2 * 1024 * MIB
#: Documents one full-text search may return (``cdpd search --limit``, ``Workspace.search``).
MAX_SEARCH_LIMIT = 10_000
