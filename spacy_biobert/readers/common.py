"""Helpers shared by the corpus readers and writers: defect reports, mention repair, atomic writes."""

from __future__ import annotations

import logging
import os
import tempfile
from collections import Counter
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Iterator, List, Optional, Tuple

from .iob import CorpusFormatError
from .mentions import Defect, Mention

TEXT_MISMATCH_POLICIES = ("keep", "search", "skip", "error")
DUPLICATE_ID_POLICIES = ("keep", "skip")
# Defects of one kind beyond this many per file are counted, not logged one by one.
MAX_LOGGED_PER_KIND = 10


class DefectReport:
    """Collects the defects of one file and logs them, at most MAX_LOGGED_PER_KIND of each kind."""

    def __init__(self, path: Path, defects: Optional[List[Defect]], logger: logging.Logger):
        self.path = path
        self.defects = defects
        self.logger = logger
        self.counts: Counter = Counter()

    def add(self, location: str, kind: str, message: str) -> None:
        if self.defects is not None:
            self.defects.append(Defect(location, kind, message))
        self.counts[kind] += 1
        if self.counts[kind] <= MAX_LOGGED_PER_KIND:
            self.logger.warning("%s: %s", location, message)

    def log_summary(self) -> None:
        for kind, count in sorted(self.counts.items()):
            if count > MAX_LOGGED_PER_KIND:
                self.logger.warning(
                    "%s: %d defects of kind %r in all; the first %d are logged above.",
                    self.path,
                    count,
                    kind,
                    MAX_LOGGED_PER_KIND,
                )


def search_nearby(
    text: str, mention_text: str, start: int, window: int
) -> Optional[Tuple[int, int]]:
    """Return the offsets of the mention text nearest ``start``, at most ``window`` away."""
    for candidate in dict.fromkeys((mention_text, mention_text.strip())):
        if not candidate:
            continue
        positions = []
        position = text.find(candidate, max(0, start - window))
        while position != -1 and position <= start + window:
            positions.append(position)
            position = text.find(candidate, position + 1)
        if positions:
            best = min(positions, key=lambda p: (abs(p - start), p))
            return best, best + len(candidate)
    return None


def check_not_input(output_path: Path, input_path: Path) -> None:
    """Raise ValueError when the output would overwrite the input file."""
    if output_path.exists() and output_path.resolve() == input_path.resolve():
        raise ValueError(f"The output {output_path} is the input file; choose another name.")


def new_file_mode(path: Path) -> int:
    """Return the mode of the file being replaced, or else 0o666 less the umask."""
    if path.exists():
        return path.stat().st_mode & 0o777
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


@contextmanager
def atomic_output(path: Path, *, binary: bool = False) -> Iterator[IO]:
    """Open a temporary file beside ``path`` and rename it to ``path`` once the block succeeds.

    A failure inside the block leaves any earlier file at ``path`` untouched
    and removes the temporary file.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp_name = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    try:
        if binary:
            stream = os.fdopen(handle, "wb")
        else:
            stream = os.fdopen(handle, "w", encoding="utf-8", newline="\n")
        with stream:
            yield stream
        # mkstemp creates the file readable by its owner only.
        os.chmod(tmp_name, new_file_mode(path))
        os.replace(tmp_name, path)
    finally:
        if os.path.exists(tmp_name):
            os.remove(tmp_name)


def resolve_text_mismatch(
    mention: Mention,
    text: str,
    *,
    field: str,
    policy: str,
    search_window: int,
    report: DefectReport,
) -> Optional[Mention]:
    """Apply an ``on_text_mismatch`` policy to a mention whose text differs from the text at its offsets.

    Returns the mention as it is (``keep``), moved to the nearest match of its
    text (``search``), or None when it is left out (``skip``, or ``search``
    without a match).  Every case but ``error`` is reported as a
    ``text_mismatch`` defect.

    Args:
        field: the source field of the mention text, for messages, e.g. "field 4 (mention text)".

    Raises:
        CorpusFormatError: with policy ``error``.
    """
    actual = text[mention.start : mention.end]
    problem = (
        f"{field}: {mention.text!r} differs from the text at offsets "
        f"{mention.start}-{mention.end}, {actual!r}"
    )
    if policy == "error":
        raise CorpusFormatError(
            f"{mention.location}, {problem}. Correct the offsets or the text, or read "
            "with on_text_mismatch='keep', 'search' or 'skip'."
        )
    if policy == "keep":
        report.add(
            mention.location,
            "text_mismatch",
            f"{problem}; kept the offsets and the text as written "
            "(on_text_mismatch='keep'). Use on_text_mismatch='search' to look for "
            "the text nearby.",
        )
        return mention

    found = None
    if policy == "search":
        found = search_nearby(text, mention.text, mention.start, search_window)
    if found is None:
        outcome = "the mention is left out"
        if policy == "search":
            outcome = f"not found within {search_window} characters, so {outcome}"
        report.add(
            mention.location,
            "text_mismatch",
            f"{problem}; {outcome} (on_text_mismatch={policy!r}).",
        )
        return None

    start, end = found
    report.add(
        mention.location,
        "text_mismatch",
        f"{problem}; moved the mention to {start}-{end}, {text[start:end]!r} "
        "(on_text_mismatch='search').",
    )
    mention.start, mention.end, mention.text = start, end, text[start:end]
    return mention
