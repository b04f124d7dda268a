"""Turn user files (plain text, HTML, PDF, Word, tables, stdin) into ``Document`` rows.

Everything a user can get wrong ends in an ``IngestError`` (an unusable input: stop and say what to do) or a
``Rejected`` record (one bad document or file among good ones: report it and go on), never in a silent loss.
Nothing here touches the network or unpickles anything.
"""

from __future__ import annotations

import codecs
import contextlib
import csv
import datetime
import functools
import gzip
import io
import itertools
import json
import logging
import re
import sys
import tempfile
import zlib
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from nlp.errors import CdpdError, ConfigError
from nlp.fileio import owner_token, remove_stale
from nlp.limits import (
    MAX_BLANK_LINES,
    MAX_DECOMPRESSED_BYTES,
    MAX_DOCUMENT_CHARS,
    MAX_FILE_BYTES,
    MAX_HTML_DEPTH,
    MAX_HTML_TAGS,
    MAX_JSON_DEPTH,
    MAX_STDIN_BYTES,
)
from nlp.normalise import detect_language, normalise_for_dedup, text_key
from nlp.schema import ISSUER_TYPES, METADATA_FIELDS, Document

__all__ = [
    "IngestError",
    "Rejected",
    "SUPPORTED_SUFFIXES",
    "PLAIN_SUFFIXES",
    "TABLE_SUFFIXES",
    "MAX_FILE_BYTES",
    "read_text_file",
    "html_to_text",
    "pdf_to_text",
    "docx_to_text",
    "read_table",
    "read_document",
    "iter_documents",
    "normalise_for_dedup",
    "text_key",
    "detect_language",
    "dedupe",
]

PLAIN_SUFFIXES: tuple[str, ...] = (".txt", ".md", ".html", ".htm", ".pdf", ".docx")
TABLE_SUFFIXES: tuple[str, ...] = (".jsonl", ".json", ".csv", ".parquet", ".jsonl.gz", ".csv.gz")
SUPPORTED_SUFFIXES: tuple[str, ...] = PLAIN_SUFFIXES + TABLE_SUFFIXES


class IngestError(CdpdError, ValueError):
    """An input that cannot be used at all; the message is one line, ``PATH: reason``."""

    code = "ingest"

    def __init__(self, path: str | Path, reason: str):
        self.path = str(path)
        self.reason = " ".join(str(reason).split())  # one line, whatever the underlying error looked like
        super().__init__(f"{self.path}: {self.reason}")


@dataclass
class Rejected:
    """A bad document inside a usable input, or a bad file inside a folder: reported, then skipped."""

    id: str
    reason: str


# --------------------------------------------------------------------------------------------- helpers


def _suffix(path: str | Path) -> str:
    """The format suffix, lower-cased; ``.jsonl.gz``/``.csv.gz`` count as one."""
    name = Path(path).name.lower()
    for double in (".jsonl.gz", ".csv.gz"):
        if name.endswith(double):
            return double
    return Path(name).suffix


def _stem(path: str | Path) -> str:
    name = Path(path).name
    suffix = _suffix(path)
    return name[: len(name) - len(suffix)] if suffix and name.lower().endswith(suffix) else Path(name).stem


def _supported_list() -> str:
    return " ".join(SUPPORTED_SUFFIXES)


def _check_size(path: Path, max_bytes: int) -> int:
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise IngestError(path, f"cannot read file ({exc.strerror or exc})") from exc
    if size > max_bytes:
        raise IngestError(
            path,
            f"file is {size / 1_048_576:.1f} MiB, over the {max_bytes / 1_048_576:.1f} MiB limit for one document; "
            "split it into smaller files, or convert it to a .jsonl/.csv table with one document per row",
        )
    return size


def _read_bytes(path: Path, max_bytes: int) -> bytes:
    _check_size(path, max_bytes)
    try:
        with open(path, "rb") as fh:
            data = fh.read(max_bytes + 1)
    except OSError as exc:
        raise IngestError(path, f"cannot read file ({exc.strerror or exc})") from exc
    if len(data) > max_bytes:  # grew since stat, or a special file
        raise IngestError(path, f"more than {max_bytes} bytes; split it into smaller files")
    return data


# Magic numbers of formats people commonly save under a wrong name: a named format beats "binary junk".
_MAGIC = (
    (b"\x89PNG\r\n\x1a\n", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"GIF8", "a GIF image"),
    (b"%PDF-", "a PDF (rename it to .pdf)"),
    (b"PK\x03\x04", "a ZIP archive (a .docx/.xlsx/.zip?)"),
    (b"\x1f\x8b", "gzip-compressed data (decompress it, or name it .jsonl.gz/.csv.gz)"),
    (b"\xd0\xcf\x11\xe0", "an old Microsoft Office file (.doc/.xls); save it as .docx or plain text"),
    (b"{\\rtf", "an RTF file; save it as .docx or plain text"),
)

_BOMS = (  # longest first: the UTF-32-LE BOM starts with the UTF-16-LE one
    (codecs.BOM_UTF32_LE, "utf-32-le"),
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)

_META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([A-Za-z0-9_.:-]+)""", re.I)
# Characters no real text has: C0/C1 controls (tab, newlines and form feeds aside), surrogates, private use,
# the replacement character. A regex, not a per-character loop: files can be 50 MB.
_JUNK = re.compile("[\x00-\x08\x0e-\x1f\x7f-\x9f\ud800-\udfff\ue000-\uf8ff\ufffd]")


def _junk_share(text: str) -> float:
    return len(_JUNK.findall(text)) / len(text) if text else 0.0


def _utf16_without_bom(data: bytes) -> str | None:
    """UTF-32 or UTF-16 text without a byte-order mark, told from binary by where its NUL bytes fall, then a
    strict decode: UTF-32 has a NUL in every fourth byte (and a byte of at most 0x10 beside it); UTF-16 has NULs
    in one half of the bytes and (almost) none in the other, whether the text is mostly ASCII (a NUL in every
    other byte) or Cyrillic, Greek, Arabic... (NULs only after spaces and punctuation). Named for what it first
    did: mostly-ASCII UTF-16 only."""
    sample = data[: 1 << 16]
    if len(sample) < 4:
        return None
    candidates = []
    if len(data) % 4 == 0:
        quarters = [sample[i::4] for i in range(4)]
        if not any(quarters[3]) and max(quarters[2]) <= 0x10:
            candidates.append("utf-32-le")
        if not any(quarters[0]) and max(quarters[1]) <= 0x10:
            candidates.append("utf-32-be")
    if len(data) % 2 == 0:
        even, odd = sample[0::2], sample[1::2]
        for nul_half, other, encoding in ((odd, even, "utf-16-le"), (even, odd, "utf-16-be")):
            if nul_half.count(0) and other.count(0) <= 0.01 * len(other):
                candidates.append(encoding)
    for encoding in candidates:
        try:
            text = data.decode(encoding)
        except UnicodeDecodeError:
            continue
        if "\x00" not in text and _junk_share(text) <= 0.01:
            return text
    return None


def _guess_legacy(data: bytes, path: str | Path) -> str:
    """charset-normalizer's pick, except that Windows-1252 wins a tie: it is by far the most common legacy
    encoding for the English/French/Spanish/German documents this tool reads, and the detector often calls
    short Western text cp1250 (turning "São" into "Săo")."""
    from charset_normalizer import from_bytes

    matches = from_bytes(data)
    best = matches.best()
    if best is None:
        raise IngestError(path, "cannot detect the text encoding (binary file?); save it as UTF-8 text")
    for match in matches:
        if "cp1252" in (match.encoding, *match.could_be_from_charset) and match.chaos <= best.chaos + 0.02:
            try:
                return data.decode("cp1252")
            except UnicodeDecodeError:
                break
    return str(best)


def _decode(data: bytes, path: str | Path, *, html: bool = False) -> str:
    """Bytes -> str: BOM, then UTF-8, then a declared HTML charset, then charset-normalizer's best guess."""
    if not data:
        return ""
    text: str | None = None
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            try:
                text = data[len(bom) :].decode(encoding)
            except UnicodeDecodeError as exc:
                reason = f"starts with a {encoding} byte-order mark but is not valid {encoding}; re-save it as UTF-8"
                raise IngestError(path, reason) from exc
            break
    if text is None:
        for magic, what in _MAGIC:
            if data.startswith(magic):
                raise IngestError(path, f"not a text file: looks like {what}")
        if b"\x00" in data:
            text = _utf16_without_bom(data)
            if text is None:
                raise IngestError(path, "binary file (contains NUL bytes), not text; convert it to plain text first")
    if text is None:
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            text = None
    if text is None and html:
        declared = _META_CHARSET.search(data[:4096])
        if declared:
            try:
                text = data.decode(declared.group(1).decode("ascii"))
            except (LookupError, UnicodeDecodeError):
                text = None
    if text is None:
        text = _guess_legacy(data, path)
    if _junk_share(text) > 0.01:
        raise IngestError(path, "binary file (too many control characters), not text; convert it to plain text first")
    return text.replace("\r\n", "\n").replace("\r", "\n")


# --------------------------------------------------------------------------------------- format readers


def read_text_file(path: str | Path, *, max_bytes: int = MAX_FILE_BYTES) -> str:
    """Decode a text file whatever its encoding, refusing binaries that would feed junk to the models."""
    path = Path(path)
    return _decode(_read_bytes(path, max_bytes), path, html=_suffix(path) in (".html", ".htm"))


_DROP_TAGS = (
    "head", "script", "style", "noscript", "template", "nav", "header", "footer", "aside", "form", "iframe",
    "svg", "button", "select", "object", "embed", "canvas",
)  # fmt: skip
_DROP_ROLES = ("navigation", "banner", "contentinfo")
_XML_DECL = re.compile(r"^\s*<\?xml[^>]*\?>", re.I)


_TAG = re.compile(r"<[A-Za-z]")


def _parse_html(html: str, path: str | Path = "HTML") -> tuple[str, str]:
    """(title, body text) of an HTML page, with page chrome (menus, banners, footers, scripts) removed.

    Bounded: a page with more than MAX_HTML_TAGS tags is refused; one nested deeper than MAX_HTML_DEPTH (where
    libxml2 stops and the layout engine's work grows with the depth) is read by a plain linear pass instead."""
    import lxml.etree
    import lxml.html
    from inscriptis import Inscriptis
    from inscriptis.model.config import ParserConfig

    html = _XML_DECL.sub("", html, count=1)  # lxml refuses str input that declares an encoding
    if not html.strip():
        return "", ""
    tags = sum(1 for _ in _TAG.finditer(html))
    if tags > MAX_HTML_TAGS:
        raise IngestError(path, f"HTML page with {tags:,} tags, over the {MAX_HTML_TAGS:,} limit; save the page as "
                          "plain text (e.g. from the browser) or split it")
    try:
        # huge_tree: a text node over 10 MB or nesting past 256 levels is kept, not silently cut
        root = lxml.html.document_fromstring(html, parser=lxml.html.HTMLParser(huge_tree=True))
    except (lxml.etree.ParserError, ValueError):
        return _plain_html_text(html)
    if _html_depth(root) > MAX_HTML_DEPTH:
        return _plain_html_text(html)
    title_el = root.find(".//title")
    title = " ".join(title_el.text_content().split()) if title_el is not None else ""
    xpath = " | ".join(
        [f"//{tag}" for tag in _DROP_TAGS]
        + [f"//*[@role='{role}']" for role in _DROP_ROLES]
        + ["//comment()", "//processing-instruction()"]
    )
    for el in root.xpath(xpath):
        if el.getparent() is not None:
            el.drop_tree()  # keeps the element's tail text, which belongs to the parent
    text = Inscriptis(root, ParserConfig(display_links=False, display_images=False)).get_text()
    return title, _tidy(text)


def _html_depth(root: Any) -> int:
    """The deepest element nesting of a parsed page, in one linear walk (no recursion)."""
    import lxml.etree

    depth = deepest = 0
    for event, _ in lxml.etree.iterwalk(root, events=("start", "end")):
        depth += 1 if event == "start" else -1
        deepest = max(deepest, depth)
    return deepest


_BLOCK_TAGS = frozenset(
    "address article blockquote br dd div dl dt figcaption figure h1 h2 h3 h4 h5 h6 hr li main ol p pre "
    "section table td th tr ul".split()
)
_VOID_TAGS = frozenset("area base br col embed hr img input link meta param source track wbr".split())


def _plain_html_text(html: str) -> tuple[str, str]:
    """(title, text) of a page by one linear pass of the standard library's tokenizer: the text of every element
    that is not page chrome (:data:`_DROP_TAGS`), a line break at block elements. For pages nested too deeply
    for libxml2 and the layout engine; no depth limit, no recursion."""
    from html.parser import HTMLParser

    drop = frozenset(_DROP_TAGS) - {"head"}

    class Text(HTMLParser):
        def __init__(self) -> None:
            super().__init__(convert_charrefs=True)
            self.parts: list[str] = []
            self.title: list[str] = []
            self.skipping: list[str] = []  # open page-chrome elements
            self.in_title = False

        def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
            if tag == "title":
                self.in_title = True
            elif tag in drop and tag not in _VOID_TAGS:
                self.skipping.append(tag)
            if tag in _BLOCK_TAGS:
                self.parts.append("\n")

        def handle_endtag(self, tag: str) -> None:
            if tag == "title":
                self.in_title = False
            elif self.skipping and tag in self.skipping:
                while self.skipping and self.skipping.pop() != tag:
                    pass
            if tag in _BLOCK_TAGS:
                self.parts.append("\n")

        def handle_data(self, data: str) -> None:
            if self.in_title:
                self.title.append(data)
            elif not self.skipping:
                self.parts.append(data)

    parser = Text()
    parser.feed(html)
    parser.close()
    lines = (" ".join(line.split()) for line in "".join(parser.parts).split("\n"))
    return " ".join("".join(parser.title).split()), _tidy("\n\n".join(line for line in lines if line))


def _tidy(text: str) -> str:
    lines = [line.rstrip() for line in text.replace("\r\n", "\n").replace("\xa0", " ").split("\n")]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


def html_to_text(html: str) -> str:
    """Visible article text of an HTML page; navigation and scripts would pollute the classifiers."""
    return _parse_html(html)[1]


def pdf_to_text(path: str | Path) -> str:
    """Text layer of a PDF, pages joined by blank lines; a PDF without one needs OCR, not silence."""
    import pypdf
    from pypdf.errors import DependencyError, FileNotDecryptedError

    path = Path(path)
    try:
        reader = pypdf.PdfReader(str(path))
        if reader.is_encrypted:
            try:
                opened = reader.decrypt("")
            except DependencyError as exc:
                raise IngestError(
                    path, "encrypted PDF that needs the 'cryptography' package to open; remove the protection "
                    "first (e.g. qpdf --decrypt in.pdf out.pdf)"
                ) from exc
            if not opened:
                raise IngestError(
                    path, "encrypted PDF that needs a password; save an unprotected copy "
                    "(e.g. qpdf --password=... --decrypt in.pdf out.pdf)"
                )
        pages = list(reader.pages)
    except IngestError:
        raise
    except FileNotDecryptedError as exc:
        raise IngestError(path, "encrypted PDF that needs a password; save an unprotected copy") from exc
    except Exception as exc:  # noqa: BLE001 - pypdf raises PdfReadError, ValueError, KeyError... on broken files
        raise IngestError(path, f"not a readable PDF ({type(exc).__name__}: {exc}); re-export or repair it") from exc
    if not pages:
        raise IngestError(path, "PDF has no pages")
    texts = []
    for number, page in enumerate(pages, 1):
        try:
            texts.append(_tidy(page.extract_text() or ""))
        except Exception as exc:  # noqa: BLE001 - a broken page stream; name the page instead of a traceback
            raise IngestError(path, f"cannot extract text from page {number} ({type(exc).__name__}: {exc})") from exc
    text = "\n\n".join(t for t in texts if t)
    if not text.strip():
        raise IngestError(path, "no text layer (scanned PDF?); run OCR first, e.g. ocrmypdf in.pdf out.pdf")
    return text


def _check_unzipped(path: Path) -> None:
    """A .docx is a zip archive: its parts, once inflated, are bounded as a .gz table is (MAX_DECOMPRESSED_BYTES). A
    1.3 MB file can hold a 1.2 GB ``document.xml``, which python-docx parses whole in memory (2.4 GB of RSS). The
    sizes the archive declares are what zipfile lets come out of it, so they can be trusted here."""
    import zipfile

    try:
        with zipfile.ZipFile(path) as archive:
            total = sum(info.file_size for info in archive.infolist())
    except Exception:  # noqa: BLE001 - zipfile raises BadZipFile, NotImplementedError ("zip file version 17.8"),
        return  # RuntimeError (encrypted), OSError...: not a readable archive, which docx.Document then reports
    if total > MAX_DECOMPRESSED_BYTES:
        raise IngestError(path, f"decompressed, it is over the {MAX_DECOMPRESSED_BYTES / 1_048_576:,.0f} MiB limit; "
                          "split it into smaller files")


def _docx_title_and_text(path: Path) -> tuple[str, str]:
    import docx
    from docx.table import Table

    _check_unzipped(path)
    try:
        document = docx.Document(str(path))
    except Exception as exc:  # noqa: BLE001 - zipfile/KeyError/ValueError/PackageNotFoundError all mean "not a docx"
        raise IngestError(
            path, f"not a Word .docx file ({type(exc).__name__}); an old .doc or a renamed file? "
            "open it in Word/LibreOffice and save it as .docx"
        ) from exc
    blocks: list[str] = []
    for item in document.iter_inner_content():
        if isinstance(item, Table):
            blocks.extend(_table_cells(item))
        else:
            blocks.append(item.text.strip())
    title = (document.core_properties.title or "").strip()
    return title, _tidy("\n\n".join(b for b in blocks if b))


def _table_cells(table: Any) -> list[str]:
    seen: set[Any] = set()  # holds the XML elements themselves: lxml proxies (and their ids) are not stable
    cells = []
    for row in table.rows:
        for cell in row.cells:
            if cell._tc in seen:  # a merged cell shows up once per grid position it covers
                continue
            seen.add(cell._tc)
            cells.append(cell.text.strip())
    return cells


def docx_to_text(path: str | Path) -> str:
    """Paragraph and table text of a Word file, in document order."""
    return _docx_title_and_text(Path(path))[1]


# ----------------------------------------------------------------------------------------------- tables


class _BoundedReader(io.RawIOBase):
    """A binary stream that raises IngestError once more than ``limit`` bytes have come out of it: a 1.5 MB gzip
    file can hold gigabytes, and it is refused as it streams, before they are written anywhere."""

    def __init__(self, raw: Any, limit: int, path: str | Path, what: str):
        self.raw, self.limit, self.path, self.what, self.count = raw, limit, path, what, 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self.raw.read(len(buffer))
        self.count += len(data)
        if self.count > self.limit:
            raise IngestError(self.path, f"{self.what} is over the {self.limit / 1_048_576:,.0f} MiB limit; "
                              "split it into smaller files")
        buffer[: len(data)] = data
        return len(data)

    def close(self) -> None:
        self.raw.close()
        super().close()


def _gunzipped(path: Path) -> io.BufferedReader:
    what = "decompressed, it"
    return io.BufferedReader(_BoundedReader(gzip.open(path, "rb"), MAX_DECOMPRESSED_BYTES, path, what), 1 << 20)


def _check_decompressed(path: Path) -> None:
    """Stream a .gz table through once, refusing it past MAX_DECOMPRESSED_BYTES (``datasets`` reads CSV itself)."""
    try:
        with _gunzipped(path) as fh:
            while fh.read(1 << 20):
                pass
    except (OSError, EOFError, zlib.error) as exc:  # zlib.error: corrupt deflate data (not an OSError)
        raise IngestError(path, f"not a readable gzip file ({type(exc).__name__}: {exc})") from exc


def _open_text(path: Path) -> TextIO:
    if _suffix(path).endswith(".gz"):
        return io.TextIOWrapper(_gunzipped(path), encoding="utf-8-sig")
    return open(path, encoding="utf-8-sig")


def _table_lines(fh: TextIO, path: str | Path) -> Iterator[tuple[int, str | None]]:
    """(number, line) of a text stream, each line read with a bounded buffer: a line of more than MAX_FILE_BYTES
    characters (one document's bound) comes as (number, None) and is skipped to its end without being held in
    memory; more than MAX_BLANK_LINES blank lines in a row refuse the input."""
    number, blank = 0, 0
    while True:
        line = fh.readline(MAX_FILE_BYTES + 1)
        if not line:
            return
        number += 1
        if len(line) > MAX_FILE_BYTES and not line.endswith("\n"):
            while (rest := fh.readline(1 << 20)) and not rest.endswith("\n"):
                pass
            yield number, None
            continue
        if line.strip():
            blank = 0
            yield number, line
            continue
        blank += 1
        if blank > MAX_BLANK_LINES:
            raise IngestError(path, f"more than {MAX_BLANK_LINES:,} blank lines in a row at line {number:,}; "
                              "not a table of documents")


def _is_json_array(path: Path) -> bool:
    """A ``.json`` file may hold one JSON array of objects or JSON lines; peek to see which."""
    try:
        with _open_text(path) as fh:
            head = fh.read(4096).lstrip()
    except (UnicodeDecodeError, OSError, EOFError, zlib.error) as exc:
        raise IngestError(path, f"cannot read as UTF-8 JSON ({type(exc).__name__}: {exc}); save it as UTF-8") from exc
    return head.startswith("[")


def _json_records(path: Path) -> Iterator[tuple[str, Any]]:
    """(where, value) for every record, streaming for JSON lines. A line that does not parse is an
    :class:`_Unparsable` record (its row is rejected, the others are read), unless it is the first: a file whose
    first line is not JSON is not a table of JSON lines, and is refused whole."""
    try:
        if _suffix(path) == ".json" and _is_json_array(path):
            _check_size(path, MAX_DECOMPRESSED_BYTES)  # one JSON array is parsed in memory
            with _open_text(path) as fh:
                try:
                    items = json.load(fh)
                except json.JSONDecodeError as exc:
                    raise IngestError(path, f"line {exc.lineno}: malformed JSON ({exc.msg}); fix it") from exc
                except RecursionError:
                    raise IngestError(path, "JSON nested too deeply; fix it") from None
            if not isinstance(items, list):
                raise IngestError(path, "expected a JSON array of objects or JSON lines")
            for number, item in enumerate(items, 1):
                yield f"item {number}", item
            return
        with _open_text(path) as fh:
            first = True
            for number, line in _table_lines(fh, path):
                if line is None:
                    first = False
                    yield f"line {number}", _Unparsable(f"line over the {MAX_FILE_BYTES:,} character limit for one "
                                                        "document")
                    continue
                try:
                    value = json.loads(line)
                except RecursionError:
                    value = _Unparsable("JSON nested too deeply")
                except json.JSONDecodeError as exc:
                    if first and _suffix(path) == ".json":
                        yield "item 1", _one_json_object(path)  # a pretty-printed single document
                        return
                    if first:  # not a table of JSON lines at all: refuse the file, do not reject every line
                        reason = f"line {number}: malformed JSON ({exc.msg}); not JSON lines? fix the file"
                        raise IngestError(path, reason) from exc
                    # one bad line (a truncated last line, a stray edit) costs that line only, as on stdin
                    value = _Unparsable(f"malformed JSON ({exc.msg}); fix or remove the line")
                first = False
                yield f"line {number}", value
    except (UnicodeDecodeError, OSError, EOFError, zlib.error) as exc:
        raise IngestError(path, f"cannot read as UTF-8 JSON ({type(exc).__name__}: {exc}); save it as UTF-8") from exc


def _one_json_object(path: Path) -> dict[str, Any]:
    _check_size(path, MAX_FILE_BYTES)  # one pretty-printed document
    with _open_text(path) as fh:
        try:
            value = json.load(fh)
        except json.JSONDecodeError as exc:
            raise IngestError(path, f"line {exc.lineno}: malformed JSON ({exc.msg}); fix it") from exc
        except RecursionError:
            raise IngestError(path, "JSON nested too deeply; fix it") from None
    if not isinstance(value, dict):
        raise IngestError(path, "expected a JSON array of objects, one object, or JSON lines")
    return value


_STRING_FIELDS = ("id", "text", *METADATA_FIELDS)
_INT64 = (-(2**63), 2**63 - 1)


def _json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int" if _INT64[0] <= value <= _INT64[1] else "json"
    if isinstance(value, float):
        return "float"
    if isinstance(value, str):
        return "string"
    return "json"  # objects, arrays


def _scan_json(path: Path, text_column: str = "text") -> dict[str, str]:
    """Validate every record and pick one storage type per column.

    Explicit types matter: the ``datasets`` JSON reader (pyarrow) turns strings such as "2021-05-21" into
    timestamps, and the date then comes back as "2021-05-21 00:00:00". Strings must stay as written.
    A record that fails the checks a plain file gets (:func:`_record_problem`) is stored as its id and the reason
    only, in the column ``_REJECT``, and read back as a :class:`Rejected`.
    """
    seen: dict[str, set[str]] = {}
    rows = 0
    for where, record in _json_records(path):
        rows += 1
        if _record_problem(record, text_column):
            seen.setdefault(_REJECT, set()).add("string")
            seen.setdefault("id", set())
            continue
        for key, value in record.items():
            kinds = seen.setdefault(key, set())
            if value is not None:
                kinds.add(_json_type(value))
    if not rows:
        raise IngestError(path, "no rows (empty file)")
    modes = {}
    for key, kinds in seen.items():
        if key in _STRING_FIELDS:
            modes[key] = "string"
        elif key == "meta" or len(kinds) > 1 and kinds != {"int", "float"} or "json" in kinds:
            modes[key] = "json"
        elif kinds == {"int", "float"}:
            modes[key] = "float"
        else:
            modes[key] = next(iter(kinds), "string")
    return modes


def _json_rows(path: str, modes: dict[str, str], text_column: str = "text") -> Iterator[dict[str, Any]]:
    """Generator for ``Dataset.from_generator``: every row with every column, in its column's type."""
    for where, record in _json_records(Path(path)):
        problem = _record_problem(record, text_column)
        if problem:
            row = dict.fromkeys(modes)
            record_id = record.get("id") if isinstance(record, dict) else None
            if isinstance(record_id, str) and not _has_surrogate(record_id) or isinstance(record_id, int):
                row["id"] = str(record_id)
            row[_REJECT] = f"{where}: {problem}"
            yield row
            continue
        row = {}
        for key, mode in modes.items():
            value = record.get(key)
            if value is None or mode == "string" and isinstance(value, float) and value != value:
                row[key] = None  # NaN in a text column is missing, never the text "nan"
            elif mode == "string":
                row[key] = value if isinstance(value, str) else _as_string(value)
            elif mode == "json" and not _has_json_feature():
                row[key] = json.dumps(value, ensure_ascii=False)
            elif mode == "float":
                row[key] = float(value)
            else:
                row[key] = value
        yield row


#: The column that carries a rejected row's reason through ``datasets`` (no real column is named so).
_REJECT = "__cdpd_rejected__"
_SURROGATE = re.compile("[\ud800-\udfff]")


def _has_surrogate(text: str) -> bool:
    return _SURROGATE.search(text) is not None


def _kind(value: Any) -> str:
    return {bool: "boolean", int: "number", float: "number"}.get(type(value), type(value).__name__)


def _text_problem(text: str) -> str | None:
    """Why a document's text is refused, the checks a plain file gets: size, NUL bytes (a plain file with one is
    binary), a lone surrogate (no output can encode it). Not the share of control characters, by which a file's
    bytes are told from binary: a table's text was decoded already (one shipped NYC Council row has 1.3%)."""
    if len(text) > MAX_DOCUMENT_CHARS:
        return f"text is {len(text):,} characters, over the {MAX_DOCUMENT_CHARS:,} limit for one document; split it"
    if "\x00" in text:
        return "text contains NUL bytes (binary data?), not text"
    if _has_surrogate(text):
        return "text contains an invalid Unicode escape (a lone surrogate such as \\ud800); fix the text"
    return None


def _row_text(value: Any) -> tuple[str, str | None]:
    """The text of a table row or JSON line, checked as a plain file's: (text, None), or ("", why it is refused).
    None and NaN are missing text (reported as empty); bytes are decoded as UTF-8, strictly; a number or a
    boolean is refused, never turned into the text "12345" or "True"."""
    if value is None or isinstance(value, float) and value != value:
        return "", None
    if isinstance(value, (bytes, bytearray, memoryview)):
        try:
            value = bytes(value).decode("utf-8")
        except UnicodeDecodeError:
            return "", "text is binary data, not UTF-8 text"
    if not isinstance(value, str):
        return "", f"text is a {_kind(value)} ({str(value)[:40]}), not a string"
    return value, _text_problem(value)


def _nesting_problem(value: Any) -> str | None:
    """A lone surrogate in any string (no output can encode it), or nesting deeper than MAX_JSON_DEPTH."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, str):
            if _has_surrogate(item):
                return "invalid Unicode escape (a lone surrogate such as \\ud800); fix the value"
        elif isinstance(item, (dict, list)):
            if depth > MAX_JSON_DEPTH:
                return f"JSON nested more than {MAX_JSON_DEPTH} levels deep"
            values = item.values() if isinstance(item, dict) else item
            stack.extend((v, depth + 1) for v in values)
            if isinstance(item, dict):
                stack.extend((k, depth + 1) for k in item)
    return None


class _Unparsable(dict):
    """A JSON line that could not be parsed (malformed, nested past Python's recursion limit, over the size limit
    for one document): a record that carries its reason, rejected by :func:`_record_problem` as that row only."""

    def __init__(self, reason: str):
        super().__init__()
        self.reason = reason


def _record_problem(record: dict[str, Any], text_column: str) -> str | None:
    """Why one record of a JSON table or of stdin is refused; None when it is fine."""
    if isinstance(record, _Unparsable):
        return record.reason
    if not isinstance(record, dict):
        return f"expected a JSON object, got {_kind(record)}"
    if text_column in record:
        _, problem = _row_text(record[text_column])
        if problem:
            return problem
    return _nesting_problem(record)


def _as_string(value: Any) -> str:
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, datetime.datetime) and value.time() == datetime.time(0) and value.tzinfo is None:
        return value.date().isoformat()  # a parquet date column: "2021-05-21", not "2021-05-21 00:00:00"
    if isinstance(value, (datetime.date, datetime.datetime)):
        return value.isoformat()
    return str(value)


def _json_features(modes: dict[str, str]) -> Any:
    import datasets

    arrow = {"string": "string", "bool": "bool", "int": "int64", "float": "float64"}
    json_feature = datasets.Json() if _has_json_feature() else datasets.Value("string")
    return datasets.Features(
        {key: json_feature if mode == "json" else datasets.Value(arrow[mode]) for key, mode in modes.items()}
    )


@functools.lru_cache(maxsize=1)
def _has_json_feature() -> bool:
    """datasets >= 4 stores objects and mixed-type columns as ``Json``; older ones get JSON-encoded strings."""
    import datasets

    return hasattr(datasets, "Json")


def _csv_header(path: Path) -> list[str]:
    try:
        with _open_text(path) as fh:
            header = next(csv.reader(fh), [])
    except (UnicodeDecodeError, OSError, EOFError, zlib.error, csv.Error) as exc:
        raise IngestError(path, f"cannot read as csv ({_explain(exc)})") from exc
    if not header:
        raise IngestError(path, "no rows (empty file)")
    if len(set(header)) != len(header):
        dupes = sorted({name for name in header if header.count(name) > 1})
        raise IngestError(path, f"duplicate column name(s) {', '.join(dupes)}; give every column its own name")
    _check_csv_rows(path, len(header))
    return header


def _check_csv_rows(path: Path, n_columns: int) -> None:
    """Every row has the header's number of fields. The CSV reader under ``datasets`` (pandas) takes a first row
    with extra fields as an index and shifts every column of every row (ids become texts), and truncates
    silently with other settings: a table whose rows do not line up is refused, naming the first bad line."""
    try:
        with _open_text(path) as fh:
            reader = csv.reader(fh)
            next(reader, None)
            for row in reader:
                if row and len(row) != n_columns:
                    raise IngestError(path, f"line {reader.line_num}: {len(row)} field(s) where the header has "
                                            f"{n_columns}; quote values that hold commas or line breaks")
    except (UnicodeDecodeError, OSError, EOFError, zlib.error, csv.Error) as exc:
        raise IngestError(path, f"cannot read as csv ({_explain(exc)})") from exc


def _require_column(path: Path, columns: Iterable[str], text_column: str) -> None:
    columns = list(columns)
    if text_column not in columns:
        raise IngestError(
            path, f"no '{text_column}' column (found: {', '.join(columns) or 'none'}); "
            f"rename the column that holds the text to '{text_column}'"
        )


def _load_dataset(path: Path, suffix: str, text_column: str, cache_dir: str) -> Any:
    import datasets

    kwargs = {"cache_dir": cache_dir}
    if suffix in (".jsonl", ".jsonl.gz", ".json"):
        # Our own JSON pass names bad lines and keeps strings as strings; datasets stores the rows as
        # memory-mapped Arrow in the private cache, so big files do not have to fit in memory.
        modes = _scan_json(path, text_column)
        _require_column(path, modes, text_column)
        return datasets.Dataset.from_generator(
            _json_rows, features=_json_features(modes),
            gen_kwargs={"path": str(path), "modes": modes, "text_column": text_column}, **kwargs
        )
    if suffix in (".csv", ".csv.gz"):
        # Every column as a string: ids like "007" must not become 7; only empty cells count as missing,
        # so a country code "NA" (Namibia) survives.
        header = _csv_header(path)
        _require_column(path, header, text_column)
        features = datasets.Features({name: datasets.Value("string") for name in header})
        return datasets.Dataset.from_csv(
            str(path), features=features, keep_default_na=False, na_values=[""], **kwargs
        )
    if suffix == ".parquet":
        ds = datasets.Dataset.from_parquet(str(path), **kwargs)
        _require_column(path, ds.column_names, text_column)
        return ds
    raise IngestError(path, f"not a table format ({suffix}); use one of {' '.join(TABLE_SUFFIXES)}")


def _explain(exc: BaseException) -> str:
    """The innermost cause of a library error, short: ``datasets`` wraps the parser's message twice."""
    seen = {id(exc)}
    while (inner := exc.__cause__ or exc.__context__) is not None and id(inner) not in seen:
        seen.add(id(inner))
        exc = inner
    if isinstance(exc, UnicodeDecodeError):
        return "not UTF-8 text; save the file as UTF-8"
    return f"{type(exc).__name__}: {str(exc)[:300]}"


@contextlib.contextmanager
def _quiet_datasets() -> Iterator[None]:
    """No progress bars, and no logged copy of an error we are about to raise in one clear line."""
    import datasets

    bars_were_off = datasets.are_progress_bars_disabled()
    logger = logging.getLogger("datasets")
    level = logger.level
    datasets.disable_progress_bars()
    logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        logger.setLevel(level)
        if not bars_were_off:
            datasets.enable_progress_bars()


@functools.lru_cache(maxsize=1)
def _remove_stale_caches() -> None:
    """Once per process: the ``cdpd-ingest-*`` caches in the temporary folder left by killed runs of ours."""
    remove_stale(Path(tempfile.gettempdir()), "cdpd-ingest-*")


def _decoded_rows(ds: Any, path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """(number, row) of a dataset; a row that cannot be decoded (a corrupt Parquet file's string column holding
    bytes that are not UTF-8: arrow checks them only as the row is converted) refuses the file with one reason,
    instead of a UnicodeDecodeError that stopped the whole batch."""
    rows = iter(ds)
    number = 0
    while True:
        try:
            row = next(rows)
        except StopIteration:
            return
        except Exception as exc:  # noqa: BLE001 - arrow, datasets and codec errors of a corrupt file
            raise IngestError(path, f"row {number + 1}: cannot be read ({_explain(exc)}); the file is damaged") from exc
        number += 1
        yield number, row


def read_table(path: str | Path, *, text_column: str = "text") -> Iterator[Document | Rejected]:
    """Rows of a JSON-lines/JSON/CSV/Parquet table as Documents, read through ``datasets`` (memory-mapped). A row
    whose text fails the checks a plain file gets (not a string, NUL bytes, binary junk, over the size limit, a
    lone surrogate) is a :class:`Rejected` with its reason; missing text (None, NaN) comes back empty."""
    import datasets

    path = Path(path)
    suffix = _suffix(path)
    if not path.is_file():
        raise IngestError(path, "no such file")
    stem = _stem(path)
    if suffix.endswith(".gz"):
        _check_decompressed(path)
    # A private cache keeps ~/.cache clean; the arrow files live until the rows have been read. Its name carries
    # this process's id: a cache left by a killed run (its process gone) is removed by the next one.
    _remove_stale_caches()
    with tempfile.TemporaryDirectory(prefix=f"cdpd-ingest-.{owner_token()}.") as cache_dir:
        try:
            with _quiet_datasets():
                ds = _load_dataset(path, suffix, text_column, cache_dir)
        except IngestError:
            raise
        except Exception as exc:  # noqa: BLE001 - datasets wraps parser errors in many types
            raise IngestError(path, f"cannot read as {suffix.lstrip('.')} ({_explain(exc)})") from exc
        if ds.num_rows == 0:
            raise IngestError(path, "no rows")
        for number, row in _decoded_rows(ds, path):
            rejected = row.pop(_REJECT, None)
            raw_text, problem = _row_text(row.get(text_column))
            if rejected or problem:
                row_id = row.get("id") if isinstance(row.get("id"), str) and row.get("id") else f"{stem}:{number}"
                yield Rejected(row_id, rejected or f"row {number}: {problem}")
                continue
            row[text_column] = raw_text
            record = {k: v if isinstance(v, str) or v is None or k not in _STRING_FIELDS else _as_string(v)
                      for k, v in row.items()}
            if isinstance(record.get("meta"), dict):  # rows of a struct column carry None for others' keys
                record["meta"] = {k: v for k, v in record["meta"].items() if v is not None}
            elif record.get("meta") is not None:  # Document.from_record only merges a dict; keep the value
                record["meta"] = {"meta": record["meta"]}
            if text_column != "text":
                if "text" in record:
                    record["original_text_column"] = record.pop("text")
                record["text"] = record.pop(text_column)
            yield Document.from_record(record, default_id=f"{stem}:{number}")


# -------------------------------------------------------------------------------------------- documents


def _check_metadata(metadata: dict[str, Any]) -> dict[str, str]:
    unknown = sorted(set(metadata) - set(METADATA_FIELDS))
    if unknown:
        raise TypeError(f"unknown metadata field(s) {', '.join(unknown)}; allowed: {', '.join(METADATA_FIELDS)}")
    values = {k: ("" if v is None else str(v)) for k, v in metadata.items()}
    if values.get("issuer_type") and values["issuer_type"] not in ISSUER_TYPES:
        raise ConfigError(f"issuer_type must be one of {', '.join(ISSUER_TYPES)}, not {values['issuer_type']!r}")
    return values


def _fill(doc: Document, metadata: dict[str, str]) -> Document:
    for key, value in metadata.items():
        if value and not getattr(doc, key):
            setattr(doc, key, value)
    return doc


def _read_plain(path: Path, doc_id: str, metadata: dict[str, str], max_bytes: int) -> Document:
    suffix = _suffix(path)
    if suffix in TABLE_SUFFIXES:
        raise IngestError(path, "a table of documents, not one document; read it with read_table() or iter_documents()")
    if suffix not in PLAIN_SUFFIXES:
        raise IngestError(path, f"unsupported file type '{suffix or path.name}'; supported: {_supported_list()}")
    if not path.is_file():
        raise IngestError(path, "no such file" if not path.exists() else "not a regular file")
    _check_size(path, max_bytes)
    title = ""
    if suffix in (".html", ".htm"):
        title, text = _parse_html(read_text_file(path, max_bytes=max_bytes), path)
    elif suffix == ".pdf":
        text = pdf_to_text(path)
    elif suffix == ".docx":
        title, text = _docx_title_and_text(path)
    else:
        text = read_text_file(path, max_bytes=max_bytes).strip()
    if not text.strip():
        raise IngestError(path, "empty document (no text after conversion)")
    doc = Document(id=doc_id, text=text, title=title, meta={"format": suffix.lstrip(".")})
    _fill(doc, metadata)
    if not doc.title:
        doc.title = _stem(path)
    return doc


def read_document(path: str | Path, *, max_bytes: int = MAX_FILE_BYTES, **metadata: Any) -> Document:
    """One plain file as a Document; metadata kwargs fill the fields the file does not set itself."""
    return _read_plain(Path(path), str(path), _check_metadata(metadata), max_bytes)


def _visible_files(folder: Path, follow_links: bool = False, _root: Path | None = None,
                   _seen: set[Path] | None = None) -> Iterator[Path | Rejected]:
    """The files of a folder and its subfolders, sorted, hidden ones left out. A symbolic link that points outside
    the folder is a Rejected (not followed) unless ``follow_links``; a link to a folder is descended into only with
    ``follow_links`` (once per real folder: no cycles); a link within the folder to a file is read."""
    root = _root if _root is not None else folder
    real_root = root.resolve()
    seen = _seen if _seen is not None else {folder.resolve()}
    for path in sorted(folder.rglob("*")):
        rel = path.relative_to(folder)
        if any(part.startswith(".") for part in rel.parts):
            continue  # .git, .DS_Store, editor swap files: never documents
        if path.is_symlink():
            real = path.resolve()
            if not follow_links and real != real_root and real_root not in real.parents:
                yield Rejected(str(path), f"a symbolic link to {real}, outside the folder; not followed "
                               "(--follow-links reads it)")
                continue
            if path.is_dir():
                if follow_links and real not in seen:
                    seen.add(real)
                    yield from _visible_files(path, follow_links, root, seen)
                continue  # without --follow-links, a linked folder inside this one is read under its own name
        if path.is_file():
            yield path
        elif not path.is_dir() and _suffix(path) in SUPPORTED_SUFFIXES:
            # a FIFO, socket or device named like a document (or a broken link): reported as on the command line,
            # never opened (a FIFO would block)
            yield Rejected(str(path), "not a regular file" if path.exists() else "a broken link (no such file)")


def _rows(rows: Iterable[Document | Rejected], metadata: dict[str, str],
          source: str | None = None) -> Iterator[Document | Rejected]:
    """A table's rows as documents; a bad row's reason names the table (``source``), so that with several tables
    in one command the user can tell which file the row came from."""
    where = f" (in {source})" if source else ""
    for doc in rows:
        if isinstance(doc, Rejected):
            yield Rejected(doc.id, doc.reason + where) if doc.id != source else doc
        elif not doc.text.strip():
            yield Rejected(doc.id, "empty text" + where)
        elif (value := _cell_value(doc.text)) is not None:
            yield Rejected(doc.id, f"text is {value}, not a document{where}")
        else:
            yield _fill(doc, metadata)


#: Whole cell values that spreadsheets and exports write for "no value" or a flag, never a document's text.
_CELL_LITERALS = frozenset({"true", "false", "nan", "null", "none", "n/a", "na", "#n/a", "undefined"})


def _cell_value(text: str) -> str | None:
    """Why a table cell's text is a value rather than a document (a number, a flag, a "no value" marker, as a CSV
    export holds them: JSON lines and Parquet refuse these by type), or None."""
    stripped = text.strip()
    if len(stripped) <= 12 and stripped.lower() in _CELL_LITERALS:
        return f"the value {stripped!r}"
    if len(stripped) <= 64 and not any(ch.isalpha() for ch in stripped):
        return f"a number or code with no words ({stripped!r})"
    return None


def _read_stdin(stream: TextIO, metadata: dict[str, str]) -> Iterator[Document | Rejected]:
    """JSON lines if the first non-blank line is a JSON object, else one plain-text document.

    Read as bytes where the stream has them (``sys.stdin``), within MAX_STDIN_BYTES in all: a JSON line is
    decoded as UTF-8 on its own (a bad one is that line's Rejected), plain text like a text file (any encoding,
    binary refused) within the one-document bound."""
    raw = getattr(stream, "buffer", None)
    source: Any = stream
    if raw is not None:
        source = io.BufferedReader(_BoundedReader(raw, MAX_STDIN_BYTES, "stdin", "stdin"), 1 << 20)
    head: list[Any] = []
    first = None
    while True:
        line = source.readline(MAX_FILE_BYTES + 1)
        if not line:
            break
        if not head and isinstance(line, bytes) and line.startswith(codecs.BOM_UTF8):
            line = line[len(codecs.BOM_UTF8) :]
        head.append(line)
        if len(line) > MAX_FILE_BYTES or line.strip():
            first = line
            break
        if len(head) > MAX_BLANK_LINES:
            raise IngestError("stdin", f"more than {MAX_BLANK_LINES:,} blank lines before any text")
    if first is None:
        raise IngestError("stdin", "empty input; pipe in text or JSON lines with 'id' and 'text'")
    first_text = first.decode("utf-8", "replace") if isinstance(first, bytes) else first
    try:
        is_jsonl = len(first) <= MAX_FILE_BYTES and isinstance(json.loads(first_text), dict)
    except json.JSONDecodeError:
        is_jsonl = False
    except RecursionError:  # a JSON line nested too deeply: rejected as such below
        is_jsonl = first_text.lstrip().startswith("{")
    if not is_jsonl:
        yield _fill(Document(id="stdin", text=_stdin_text(head, source), meta={"format": "txt"}), metadata)
        return
    numbered = itertools.chain([(len(head), first)], _stdin_lines(source, len(head) + 1))
    yield from _stdin_jsonl(numbered, metadata)


def _stdin_text(head: list[Any], source: Any) -> str:
    """The rest of stdin as one plain-text document, refused past the one-document bound."""
    size = sum(len(line) for line in head)
    rest = source.read(max(0, MAX_FILE_BYTES + 1 - size))
    data = (b"" if isinstance(rest, bytes) else "").join(head) + rest
    if len(data) > MAX_FILE_BYTES:
        raise IngestError("stdin", f"more than {MAX_FILE_BYTES / 1_048_576:.0f} MiB of plain text, the limit for one "
                          "document; save it as files, or pipe JSON lines with one document per line")
    if isinstance(data, bytes):
        text = _decode(data, "stdin")
    else:
        text = data
        problem = _text_problem(text) or (_junk_share(text) > 0.01 and
                                          "binary data (too many control characters), not text")
        if problem:
            raise IngestError("stdin", problem)
    text = _tidy(text)
    if not text:
        raise IngestError("stdin", "empty document")
    return text


def _stdin_lines(source: Any, start: int) -> Iterator[tuple[int, Any]]:
    """(number, line) of the rest of stdin, each read within the one-document bound (a longer one comes as
    (number, None), skipped to its end); more than MAX_BLANK_LINES blank lines in a row stop the input."""
    number, blank = start - 1, 0
    while True:
        line = source.readline(MAX_FILE_BYTES + 1)
        if not line:
            return
        number += 1
        if len(line) > MAX_FILE_BYTES:
            newline = b"\n" if isinstance(line, bytes) else "\n"
            while not line.endswith(newline) and (line := source.readline(1 << 20)):
                pass
            yield number, None
            continue
        if line.strip():
            blank = 0
        else:
            blank += 1
            if blank > MAX_BLANK_LINES:
                raise IngestError("stdin", f"more than {MAX_BLANK_LINES:,} blank lines in a row at line {number:,}")
        yield number, line


def _stdin_jsonl(numbered_lines: Iterable[tuple[int, Any]], metadata: dict[str, str]) -> Iterator[Document | Rejected]:
    for number, line in numbered_lines:
        if line is None:
            yield Rejected(f"stdin:{number}", f"line {number}: over the {MAX_FILE_BYTES:,} character limit for one "
                           "document")
            continue
        if isinstance(line, bytes):
            try:
                line = line.decode("utf-8")
            except UnicodeDecodeError:
                yield Rejected(f"stdin:{number}", f"line {number}: not UTF-8 text; send JSON lines as UTF-8")
                continue
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            yield Rejected(f"stdin:{number}", f"line {number}: malformed JSON ({exc.msg})")
            continue
        except RecursionError:
            yield Rejected(f"stdin:{number}", f"line {number}: JSON nested too deeply")
            continue
        if not isinstance(record, dict):
            yield Rejected(f"stdin:{number}", f"line {number}: not a JSON object")
            continue
        problem = _record_problem(record, "text")
        if problem:
            yield Rejected(f"stdin:{number}", f"line {number}: {problem}")
            continue
        doc = Document.from_record(record, default_id=f"stdin:{number}")
        if "text" not in record:
            yield Rejected(doc.id, f"line {number}: no 'text' field")
        elif not doc.text.strip():
            yield Rejected(doc.id, "empty text")
        else:
            yield _fill(doc, metadata)


def iter_documents(
    inputs: Sequence[str | Path],
    *,
    stdin: TextIO | None = None,
    max_bytes: int = MAX_FILE_BYTES,
    text_column: str = "text",
    skip_bad_inputs: bool = False,
    follow_links: bool = False,
    **metadata: Any,
) -> Iterator[Document | Rejected]:
    """Documents from files, folders and ``-`` (stdin); one bad file in a folder does not stop the folder.

    A missing path or an unsupported file type among ``inputs`` stops everything before any work (a typo). A named
    file (or stdin) that cannot be read stops everything too, unless ``skip_bad_inputs``: then it is a
    :class:`Rejected` with its reason, like a bad file in a folder, and the other inputs are read. A symbolic link
    in a folder that points outside it is a Rejected unless ``follow_links``."""
    meta = _check_metadata(metadata)
    inputs = list(inputs)
    # Check every top-level input before yielding anything, so a typo in the last path costs no work.
    if sum(1 for item in inputs if str(item) == "-") > 1:
        raise IngestError("-", "stdin given more than once")
    for item in inputs:
        if str(item) == "-":
            continue
        path = Path(item)
        if not path.exists():
            raise IngestError(item, "no such file or directory")
        if path.is_file() and _suffix(path) not in SUPPORTED_SUFFIXES:
            suffix = _suffix(path) or path.name
            raise IngestError(item, f"unsupported file type '{suffix}'; supported: {_supported_list()}")
    for item in inputs:
        try:
            yield from _one_input(item, stdin, meta, max_bytes, text_column, follow_links)
        except IngestError as exc:
            if not skip_bad_inputs:
                raise
            yield Rejected(exc.path, exc.reason)


def _one_input(item: str | Path, stdin: TextIO | None, meta: dict[str, str], max_bytes: int,
               text_column: str, follow_links: bool = False) -> Iterator[Document | Rejected]:
    if str(item) == "-":
        yield from _read_stdin(stdin if stdin is not None else sys.stdin, meta)
        return
    path = Path(item)
    if path.is_dir():
        for file in _visible_files(path, follow_links):
            if isinstance(file, Rejected):
                yield file
                continue
            suffix = _suffix(file)
            if suffix not in SUPPORTED_SUFFIXES:
                yield Rejected(str(file), f"unsupported file type '{suffix or file.name}'")
                continue
            if not _utf8_name(file):
                yield Rejected(str(file), "the file name is not valid UTF-8; rename the file")
                continue
            try:
                if suffix in TABLE_SUFFIXES:
                    yield from _rows(read_table(file, text_column=text_column), meta, str(file))
                else:
                    yield _read_plain(file, file.relative_to(path).as_posix(), meta, max_bytes)
            except IngestError as exc:
                yield Rejected(str(file), exc.reason)
        return
    if not _utf8_name(path):
        raise IngestError(item, "the file name is not valid UTF-8; rename the file")
    if _suffix(path) in TABLE_SUFFIXES:
        yield from _rows(read_table(path, text_column=text_column), meta, str(item))
    else:
        yield _read_plain(path, str(item), meta, max_bytes)


def _utf8_name(path: Path) -> bool:
    """False for a name with bytes that are not UTF-8 (Python keeps them as lone surrogates, which no output,
    JSON line or SQLite row can hold)."""
    try:
        str(path).encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


# --------------------------------------------------------------------------------------- dedup, language


def dedupe(docs: Iterable[Document | Rejected]) -> Iterator[Document | Rejected]:
    """Keep the first of each text; later copies are reported, not silently dropped. Rejected pass through."""
    first_ids: dict[str, str] = {}
    for doc in docs:
        if isinstance(doc, Rejected):
            yield doc
            continue
        key = text_key(doc.text)
        if key in first_ids:
            yield Rejected(doc.id, f"duplicate of {first_ids[key]}")
        else:
            first_ids[key] = doc.id
            yield doc
