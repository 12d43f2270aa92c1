"""Decoding the lines of UTF-8 corpus and dictionary files, with errors that name the line."""

from __future__ import annotations

import codecs
from pathlib import Path
from typing import Type, Union


def decode_line(
    path: Union[str, Path], line_number: int, raw: bytes, error: Type[ValueError]
) -> str:
    """Decode one line read in binary mode, its line break kept.

    A UTF-8 byte-order mark at the start of line 1 is dropped.  Invalid UTF-8
    raises ``error`` naming the file, the line and the byte (counted from 1).
    """
    if line_number == 1 and raw.startswith(codecs.BOM_UTF8):
        raw = raw[len(codecs.BOM_UTF8) :]
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as decode_error:
        raise error(
            f"{path}, line {line_number}: invalid UTF-8 at byte {decode_error.start + 1} "
            "of the line. Save the file as UTF-8."
        ) from None
