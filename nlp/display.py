"""Text as a reader should see it: hard-wrapped lines joined into paragraphs, page furniture dropped.

UN General Debate records come from PDF: every printed line ends in a line break (often followed by a blank line,
so blank lines no longer mark paragraphs), and the page's running heads survive as lines of their own ("16",
"A/63/PV.13", "25 08-53122", "02/10/2015 A/70/PV.26", "---"). Shown as stored, a passage reads as a column of
half-lines interrupted by numbers. :func:`display_text` rebuilds the paragraphs for reading.

It is for display only: the annotated text saved to the workspace, the text the models score and the offsets of
passages all stay the stored text, untouched.
"""

from __future__ import annotations

import re
from statistics import median

#: Lines that are page furniture, not speech: a bare page or paragraph number, a UN document symbol with or
#: without its date ("A/63/PV.13", "A/70/PV.22 01/10/2015", "02/10/2015 A/70/PV.26"), a job number with or without
#: the page ("08-53122", "25 08-53122", "2/29 15-29822"), and rules of dashes, underscores or asterisks.
_SYMBOL = r"[AS]/(?:RES/)?\d+/(?:PV\.)?\d+(?:/(?:Add|Rev|Corr)\.\d+)*"
_DATE = r"\d{1,2}/\d{1,2}/\d{4}"
_JOB = r"(?:\d{1,4}(?:/\d{1,4})?\s+)?\d{2}-\d{5}(?:\s+\d{1,4}(?:/\d{1,4})?)?"
_RULE = r"[-_*=~\u2013\u2014.\s]{3,}|\*"
_PAGE = r"\d{1,4}(?:/\d{1,4})?"
FURNITURE = re.compile(rf"^(?:{_PAGE}|{_SYMBOL}(?:\s+{_DATE})?|{_DATE}\s+{_SYMBOL}|{_JOB}|{_RULE})$")
#: A line that ends a sentence: final punctuation, then any closing quotes or brackets.
_SENTENCE_END = re.compile(r"[.!?:;][\"'\u2019\u201d)\]]*$")
#: A citation closing a sentence: `... peace." (A/55/PV.3)` ends it as the full stop before it does.
_TRAILING_CITATION = re.compile(r"\s*\([^()]*\)$")
#: Stage directions of the verbatim records, e.g. "(spoke in French)": a paragraph of their own.
_STANDALONE = re.compile(r"^\(.*\)$")


def is_furniture(line: str) -> bool:
    """Whether a line is page furniture (see :data:`FURNITURE`)."""
    return bool(FURNITURE.match(line.strip()))


def ends_sentence(line: str) -> bool:
    """Whether a line ends on a sentence end (a full stop, question or exclamation mark, colon or semicolon, maybe
    inside quotes or brackets, maybe followed by a citation in brackets)."""
    line = line.rstrip()
    if _SENTENCE_END.search(line):
        if not line.endswith(")") or not _TRAILING_CITATION.search(line):
            return True
    stripped = _TRAILING_CITATION.sub("", line)
    return stripped != line and bool(_SENTENCE_END.search(stripped))


#: A word broken at the line's end ("Secretary-"): no paragraph ends so.
_HYPHEN_BREAK = re.compile(r"\w-$")


def _join(left: str, right: str) -> str:
    """Two pieces of one paragraph: a word broken by a hyphen at the line end joins without a space."""
    if _HYPHEN_BREAK.search(left) and right[:1].isalpha():
        return left + right
    return f"{left} {right}"


def display_text(text: str, title: str = "") -> str:
    """The text for reading: paragraphs separated by one blank line, each on one line, without page furniture.

    Rules, line by line (lines stripped of surrounding spaces):

    * a furniture line (:func:`is_furniture`) is dropped, and so is the gap it stood in when the line before it
      does not end a sentence (a page break in mid-sentence);
    * a line ending in a word broken by a hyphen joins the next whatever the gap ("Secretary-" "General");
    * in hard-wrapped text (most lines fill a column of 30-120 characters), a line break with no blank line after
      it joins the lines with a space, unless the line before ends a sentence (then the break is kept); in text
      with a line per paragraph or clause (a resolution's "Whereas, ...; and" lines, a table) breaks are kept;
    * a blank line is a paragraph break, except in double-spaced text (hard-wrapped, a blank line after nearly
      every line, and a quarter or more of them in mid-sentence, the next line going on in lower case: the UN
      records), where a blank line joins like a wrap and a paragraph ends only after a line that ends a sentence
      and is short (under 80% of the usual line's length: a paragraph's last line rarely fills the measure);
    * a leading ``title`` line (the document's title, which passages start with) and bracketed stage directions
      ("(spoke in French)") stay paragraphs of their own.

    For display only: annotations store the passage text as the model saw it, never this.
    """
    lines = [line.strip() for line in re.split(r"\r\n?|\n", text)]
    # (line, blank lines before it, furniture dropped before it)
    kept: list[tuple[str, int, bool]] = []
    blanks, dropped = 0, False
    for line in lines:
        if not line:
            blanks += 1
        elif is_furniture(line):
            dropped = True
        else:
            kept.append((line, blanks, dropped))
            blanks, dropped = 0, False
    if not kept:
        return ""
    gaps = [(prev, blank) for (prev, _, _), (_, blank, _) in zip(kept, kept[1:])]
    blank_gaps = [prev for prev, blank in gaps if blank]
    lengths = sorted(len(line) for line, _, _ in kept)
    measure = lengths[int(0.75 * (len(lengths) - 1))]
    typical = median(lengths)
    # hard-wrapped: most lines fill a printed measure (a column of 30-120 characters), unlike paragraphs (longer)
    # or lists and schedules (lines of any length)
    wrapped = 30 <= measure <= 120 and sum(n >= 0.6 * measure for n in lengths) >= 0.6 * len(lengths)
    # double-spaced: a blank line after nearly every line, and many of them in mid-sentence (the next line goes
    # on in lower case), unlike headings over paragraphs (a memo, a schedule) whose next line starts a sentence
    continued = sum(blank and not ends_sentence(prev) and nxt[:1].islower()
                    for (prev, blank), (nxt, _, _) in zip(gaps, kept[1:]))
    double = wrapped and len(blank_gaps) >= 3 and len(blank_gaps) >= 0.8 * len(gaps) and \
        continued >= 0.25 * len(blank_gaps)

    paragraphs: list[str] = [kept[0][0]]
    title = title.strip()
    for i in range(1, len(kept)):
        prev = kept[i - 1][0]
        line, blank, furniture = kept[i]
        if (i == 1 and title and prev == title) or _STANDALONE.match(prev) or _STANDALONE.match(line):
            brk = "para"
        elif (furniture and not ends_sentence(prev)) or _HYPHEN_BREAK.search(prev) and line[:1].isalpha():
            brk = "join"
        elif double:
            brk = "para" if ends_sentence(prev) and len(prev) < 0.8 * max(measure, typical) else "join"
        elif blank:
            brk = "para"
        else:  # a plain line break: a wrap in hard-wrapped text, else (a line per paragraph or clause) kept
            brk = "join" if wrapped and not ends_sentence(prev) else "line"
        if brk == "join":
            paragraphs[-1] = _join(paragraphs[-1], line)
        elif brk == "line":
            paragraphs[-1] += "\n" + line
        else:
            paragraphs.append(line)
    return "\n\n".join(paragraphs)
