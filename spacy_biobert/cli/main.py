"""The ``python -m spacy_biobert`` command line."""

from __future__ import annotations

import argparse
import sys
from typing import List, Optional

from . import convert, huggingface, tag


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m spacy_biobert",
        description="Tools for spacy-biobert pipelines.",
    )
    subparsers = parser.add_subparsers(dest="command", required=True)
    convert.add_parser(subparsers)
    tag.add_parser(subparsers)
    huggingface.add_parsers(subparsers)
    args = parser.parse_args(argv)
    try:
        args.run(args)
    except (ValueError, OSError, ImportError) as error:
        print(f"Error: {error}", file=sys.stderr)
        return 1
    return 0
