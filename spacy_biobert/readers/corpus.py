"""The corpus reader for training configs: IOB ``.tsv`` files or spaCy ``.spacy`` files."""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Iterator, Optional

from spacy.language import Language
from spacy.training import Corpus, Example

from .iob import CorpusFormatError, read_iob_docs

IOB_SUFFIXES = (".tsv", ".iob", ".iob2", ".conll", ".txt")


def create_corpus_reader(
    path: Optional[Path], entity_type: Optional[str] = None, limit: int = 0
) -> Callable[[Language], Iterator[Example]]:
    """Read training or evaluation examples from an IOB file or a ``.spacy`` file.

    Args:
        path: the corpus file; the suffix picks the format.
        entity_type: the label for untyped ``B``/``I`` tags in IOB files.
        limit: read at most this many sentences; 0 reads all.
    """
    if path is None:
        raise ValueError(
            "No corpus path given. Set it on the command line, e.g. "
            "--paths.train corpus/train.tsv --paths.dev corpus/dev.tsv."
        )
    path = Path(path)
    if path.suffix == ".spacy" or path.is_dir():
        return Corpus(path, limit=limit)
    if path.suffix.lower() not in IOB_SUFFIXES:
        raise CorpusFormatError(
            f"{path}: unknown corpus format {path.suffix!r}. Expected an IOB file "
            f"({', '.join(IOB_SUFFIXES)}) or a .spacy file."
        )
    return IobCorpus(path, entity_type=entity_type, limit=limit)


class IobCorpus:
    """Examples from an IOB file: the pipeline's tokenizer makes the predicted Doc."""

    def __init__(self, path: Path, *, entity_type: Optional[str], limit: int):
        if not path.is_file():
            raise FileNotFoundError(f"Corpus file not found: {path}")
        self.path = path
        self.entity_type = entity_type
        self.limit = limit

    def __call__(self, nlp: Language) -> Iterator[Example]:
        docs = read_iob_docs(self.path, nlp.vocab, self.entity_type)
        for i, reference in enumerate(docs):
            if self.limit and i >= self.limit:
                break
            yield Example(nlp.make_doc(reference.text), reference)
