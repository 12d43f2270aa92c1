"""The name -> concept dictionary of the linker, its sources and its file format.

A :class:`ConceptDictionary` maps each name, as written, to the concepts it
names and how often each was seen with it in training data.  Names come from:

- a TSV file that the user gives (:meth:`ConceptDictionary.add_tsv`), one
  concept a line: ``concept ID<TAB>preferred name[<TAB>synonyms]``, the
  synonyms separated by ``|``.  Blank lines and lines starting with ``#`` are
  skipped.  These names get a count of 0, so they are known but carry no
  weight when a name is ambiguous;
- the mentions of a PubTator corpus (:meth:`ConceptDictionary.add_pubtator`),
  each adding 1 to the count of its text and concept ID.

Concept IDs from a corpus are handled so:

- a missing ID (an empty field, or ``-1`` as BC5CDR writes it) adds nothing;
- a composite ID (``D001943|D010051`` or ``D008545+D012345``) is kept whole,
  as one concept, because the mention names the combination: "breast and
  ovarian cancer" links to ``D001943|D010051``.  When the mention has an extra
  field with as many ``|``-separated parts as the ID (BC5CDR writes
  ``pleural effusion|pericardial effusion`` after ``D010996|D010490``), each part's
  text also adds a name for its part of the ID.  A part whose ID is ``-1``
  adds nothing;
- spaces around the ID are stripped, and prefixes such as ``OMIM:`` and
  ``MESH:`` are kept as written.

For a name with several concepts, :meth:`ConceptDictionary.rank` orders them
by the count of that name with the concept, then by the concept's count over
all names, then by the order in which the dictionary first saw the concepts.

Storage is compact: concept IDs are stored once, in a list, and each name
maps to a flat tuple ``(concept index, count, concept index, count, ...)``.
:meth:`ConceptDictionary.memory_bytes` estimates the size.  The file format is
JSON (``to_disk``) or msgpack (``to_bytes``), never pickle, so loading a file
runs no code.

:class:`KeyTable` maps a derived key (a normalized name, a word-order key) to
the merged counts of all the names with that key.  :class:`CharNgramIndex`
finds the key nearest to a string by the cosine of character 3-gram TF-IDF
vectors, with numpy only.

Known shortcomings: a synonym that a user TSV lists for two concepts is
ambiguous with counts of 0, and the tie goes to the concept with more corpus
mentions, or else to the one listed first.  The two orders of one composite
ID (``A|B``, ``B|A``) are two concepts with separate counts.
"""

from __future__ import annotations

import array
import logging
import math
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import (
    Any,
    Callable,
    Dict,
    Iterable,
    Iterator,
    List,
    Optional,
    Sequence,
    Tuple,
    Union,
)

import numpy
import srsly

from ..readers.lines import decode_line
from ..readers.mentions import AnnotatedDocument
from ..readers.pubtator import read_pubtator

logger = logging.getLogger(__name__)

FORMAT_NAME = "spacy_biobert.ConceptDictionary"
FORMAT_VERSION = 1
MISSING_CONCEPT_IDS = frozenset({"", "-1"})
COMPOSITE_SEPARATORS = ("|", "+")
SYNONYM_SEPARATOR = "|"
TSV_FORMAT = "concept ID<TAB>preferred name<TAB>synonyms separated by '|'"

# A name's concepts as a flat tuple: (concept index, count, concept index, count, ...).
Pairs = Tuple[int, ...]


class DictionaryFormatError(ValueError):
    """A dictionary file (TSV or saved dictionary) that cannot be read."""


@dataclass(frozen=True)
class Candidate:
    """A concept for a name: its ID, the count of the name with it, and its share of the name's count."""

    concept_id: str
    count: int
    share: float


def split_concept_id(concept_id: str) -> Tuple[str, ...]:
    """Split a composite concept ID at ``|`` and ``+`` into its stripped parts.

    ``"D001943|D010051"`` gives ``("D001943", "D010051")``; a plain ID gives a
    one-part tuple and an empty string an empty tuple.
    """
    parts = [concept_id]
    for separator in COMPOSITE_SEPARATORS:
        parts = [piece for part in parts for piece in part.split(separator)]
    return tuple(part.strip() for part in parts if part.strip())


def iter_mention_names(
    documents: Iterable[AnnotatedDocument],
    *,
    skipped: Optional[Counter] = None,
) -> Iterator[Tuple[str, str, str]]:
    """Yield ``(entity type, name, concept ID)`` for the mentions of annotated documents.

    The rules for missing and composite IDs are in the module docstring.
    When ``skipped`` is a Counter, the mentions left out for lack of an ID are
    counted under ``"missing_concept_id"``.
    """
    for document in documents:
        for mention in document.mentions:
            concept_id = mention.concept_id.strip()
            name = mention.text.strip()
            if concept_id in MISSING_CONCEPT_IDS or not name:
                if skipped is not None:
                    skipped["missing_concept_id"] += 1
                continue
            yield mention.label, name, concept_id
            yield from _composite_part_names(mention.label, concept_id, mention.extra)


def _composite_part_names(
    label: str, concept_id: str, extra: Sequence[str]
) -> Iterator[Tuple[str, str, str]]:
    if SYNONYM_SEPARATOR not in concept_id or not extra:
        return
    part_ids = concept_id.split(SYNONYM_SEPARATOR)
    part_names = extra[0].split(SYNONYM_SEPARATOR)
    if len(part_names) != len(part_ids):
        return
    for part_name, part_id in zip(part_names, part_ids):
        part_name, part_id = part_name.strip(), part_id.strip()
        if part_name and part_id not in MISSING_CONCEPT_IDS:
            yield label, part_name, part_id


def add_pairs(pairs: Pairs, concept: int, count: int) -> Pairs:
    """Return ``pairs`` with ``count`` added to ``concept``, appending the concept if it is new."""
    for position in range(0, len(pairs), 2):
        if pairs[position] == concept:
            return pairs[: position + 1] + (pairs[position + 1] + count,) + pairs[position + 2 :]
    return pairs + (concept, count)


class ConceptDictionary:
    """Names, as written, mapped to concept IDs with training counts.

    A name is stripped of surrounding whitespace and otherwise kept as it is;
    the linker derives normalized keys from the names with :class:`KeyTable`.
    """

    def __init__(self) -> None:
        self._concepts: List[str] = []
        self._concept_indices: Dict[str, int] = {}
        self._concept_counts: List[int] = []  # mentions of each concept over all names
        self._preferred: Dict[int, str] = {}  # concept index -> preferred name from a TSV
        self._names: Dict[str, Pairs] = {}
        # Increases with every change, so a KeyTable can tell that it is out of date.
        self.version = 0

    def __len__(self) -> int:
        """Return the number of names."""
        return len(self._names)

    def __contains__(self, name: str) -> bool:
        return name in self._names

    @property
    def n_concepts(self) -> int:
        """The number of concept IDs, composite ones counted once each."""
        return len(self._concepts)

    @property
    def names(self) -> Iterable[str]:
        """The names, in the order they were first added."""
        return self._names.keys()

    def concept_id(self, index: int) -> str:
        """Return the concept ID stored at ``index``."""
        return self._concepts[index]

    def preferred_name(self, concept_id: str) -> Optional[str]:
        """Return the preferred name from a user TSV, or None if the concept had none."""
        index = self._concept_indices.get(concept_id)
        return None if index is None else self._preferred.get(index)

    def add(self, name: str, concept_id: str, count: int = 1) -> bool:
        """Add ``count`` mentions of ``name`` with ``concept_id``; return False if either is empty.

        A count of 0 records the name for the concept without weight, as a TSV does.
        """
        name = name.strip()
        concept_id = concept_id.strip()
        if not name or concept_id in MISSING_CONCEPT_IDS:
            return False
        if count < 0:
            raise ValueError(f"Invalid count {count} for the name {name!r}: expected 0 or more.")
        index = self._concept_indices.get(concept_id)
        if index is None:
            index = len(self._concepts)
            self._concepts.append(concept_id)
            self._concept_indices[concept_id] = index
            self._concept_counts.append(0)
        self._concept_counts[index] += count
        self._names[name] = add_pairs(self._names.get(name, ()), index, count)
        self.version += 1
        return True

    def add_tsv(self, path: Union[str, Path]) -> int:
        """Add the concepts of a TSV file (format in the module docstring); return how many.

        Raises:
            FileNotFoundError: when ``path`` is not a file.
            DictionaryFormatError: for bytes that are not UTF-8, a line with
                fewer than 2 or more than 3 tab-separated fields, or an empty
                or missing (``-1``) concept ID or preferred name.  The message
                names the file and the line.

        The whole file is checked before anything is added, so a file with an
        invalid line leaves the dictionary as it was and can be added again
        once fixed.
        """
        path = Path(path)
        if path.is_dir():
            raise FileNotFoundError(f"Dictionary file {path} is a folder; give the path of a TSV file.")
        if not path.is_file():
            raise FileNotFoundError(f"Dictionary file not found: {path}")
        rows = []
        with path.open("rb") as file:
            for line_number, raw in enumerate(file, start=1):
                line = _decode_line(path, line_number, raw)
                if not line.strip() or line.startswith("#"):
                    continue
                rows.append(_parse_tsv_line(path, line_number, line))
        if not rows:
            logger.warning("%s has no concept lines; nothing was added.", path)
        for concept_id, preferred, synonyms in rows:
            self.add(preferred, concept_id, count=0)
            self._preferred.setdefault(self._concept_indices[concept_id], preferred)
            for synonym in synonyms:
                self.add(synonym, concept_id, count=0)
        logger.info("Read %d concepts from %s; the dictionary has %d names.", len(rows), path, len(self))
        return len(rows)

    def add_pubtator(
        self, path: Union[str, Path], *, entity_types: Optional[Iterable[str]] = None
    ) -> int:
        """Add the names of a PubTator file's mentions; return how many mentions were added.

        Args:
            entity_types: add only mentions of these types (the PubTator type
                column, e.g. ``"Chemical"``); None adds every mention.
        """
        selected_types = None if entity_types is None else set(entity_types)
        skipped: Counter = Counter()
        added = 0
        for entity_type, name, concept_id in iter_mention_names(read_pubtator(path), skipped=skipped):
            if selected_types is None or entity_type in selected_types:
                added += self.add(name, concept_id)
        logger.info(
            "Added %d names from %s; %d mentions without a concept ID were left out.",
            added,
            path,
            skipped["missing_concept_id"],
        )
        return added

    def pairs(self, name: str) -> Pairs:
        """Return the flat ``(concept index, count, ...)`` tuple of a name as written, or ``()``."""
        return self._names.get(name.strip(), ())

    def rank(self, pairs: Pairs) -> List[Candidate]:
        """Order a name's concepts best first (see the module docstring for the order)."""
        entries = [(pairs[position], pairs[position + 1]) for position in range(0, len(pairs), 2)]
        entries.sort(key=lambda entry: (-entry[1], -self._concept_counts[entry[0]], entry[0]))
        total = sum(count for _, count in entries)
        candidates = []
        for concept, count in entries:
            # With no counts at all, the concepts of an ambiguous name share the score evenly.
            share = count / total if total else 1.0 / len(entries)
            candidates.append(Candidate(self._concepts[concept], count, share))
        return candidates

    def candidates(self, name: str) -> List[Candidate]:
        """Return the concepts of ``name`` as written, best first."""
        return self.rank(self.pairs(name))

    def memory_bytes(self) -> int:
        """Estimate the memory of the stored names and IDs in bytes, with ``sys.getsizeof``.

        The integers inside the tuples are not counted.  Most are shared
        objects (concept indices, counts up to 256), so the estimate is only
        slightly low.
        """
        size = sys.getsizeof(self._names) + sys.getsizeof(self._concepts)
        size += sys.getsizeof(self._concept_indices) + sys.getsizeof(self._concept_counts)
        size += sys.getsizeof(self._preferred)
        size += sum(sys.getsizeof(name) + sys.getsizeof(pairs) for name, pairs in self._names.items())
        size += sum(sys.getsizeof(concept) for concept in self._concepts)
        size += sum(sys.getsizeof(name) for name in self._preferred.values())
        return size

    def to_dict(self) -> Dict[str, Any]:
        """Return the dictionary as JSON-serializable data."""
        return {
            "format": FORMAT_NAME,
            "version": FORMAT_VERSION,
            "concepts": list(self._concepts),
            "preferred": {str(index): name for index, name in self._preferred.items()},
            "names": {name: list(pairs) for name, pairs in self._names.items()},
        }

    @classmethod
    def from_dict(cls, data: Any, *, source: str = "the data") -> "ConceptDictionary":
        """Build a dictionary from :meth:`to_dict` data, checking it; ``source`` names it in errors.

        Raises:
            DictionaryFormatError: when the data is not a saved dictionary of
                this format version or its indices and counts are invalid.
        """
        if not isinstance(data, dict) or data.get("format") != FORMAT_NAME:
            raise DictionaryFormatError(
                f"{source} is not a saved concept dictionary: the 'format' field must "
                f"be {FORMAT_NAME!r}. Save dictionaries with ConceptDictionary.to_disk."
            )
        if data.get("version") != FORMAT_VERSION:
            raise DictionaryFormatError(
                f"{source}: dictionary format version {data.get('version')!r} is not "
                f"supported; this version of spacy_biobert reads version {FORMAT_VERSION}."
            )
        dictionary = cls()
        concepts = data.get("concepts")
        names = data.get("names")
        if not isinstance(concepts, list) or not isinstance(names, dict):
            raise DictionaryFormatError(
                f"{source}: the 'concepts' field must be a list and 'names' a mapping."
            )
        for concept_id in concepts:
            dictionary._concept_indices[concept_id] = len(dictionary._concepts)
            dictionary._concepts.append(concept_id)
            dictionary._concept_counts.append(0)
        for name, pairs in names.items():
            dictionary._names[name] = _check_pairs(source, name, pairs, len(concepts))
            for position in range(0, len(pairs), 2):
                dictionary._concept_counts[pairs[position]] += pairs[position + 1]
        for index, name in data.get("preferred", {}).items():
            dictionary._preferred[int(index)] = name
        dictionary.version += 1
        return dictionary

    def to_disk(self, path: Union[str, Path]) -> None:
        """Write the dictionary to a JSON file."""
        srsly.write_json(path, self.to_dict(), indent=0)

    @classmethod
    def from_disk(cls, path: Union[str, Path]) -> "ConceptDictionary":
        """Read a dictionary that :meth:`to_disk` wrote."""
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"Concept dictionary file not found: {path}")
        try:
            data = srsly.read_json(path)
        except ValueError as error:
            raise DictionaryFormatError(f"{path}: invalid JSON ({error}).") from None
        return cls.from_dict(data, source=str(path))

    def to_bytes(self) -> bytes:
        """Serialize the dictionary with msgpack."""
        return srsly.msgpack_dumps(self.to_dict())

    @classmethod
    def from_bytes(cls, data: bytes) -> "ConceptDictionary":
        """Deserialize a dictionary that :meth:`to_bytes` wrote."""
        return cls.from_dict(srsly.msgpack_loads(data), source="the serialized dictionary")


def _check_pairs(source: str, name: str, pairs: Any, n_concepts: int) -> Pairs:
    valid = (
        isinstance(pairs, (list, tuple))
        and len(pairs) >= 2
        and len(pairs) % 2 == 0
        and all(isinstance(value, int) and value >= 0 for value in pairs)
        and all(pairs[position] < n_concepts for position in range(0, len(pairs), 2))
    )
    if not valid:
        raise DictionaryFormatError(
            f"{source}: the name {name!r} has invalid concepts {pairs!r}; expected "
            f"[concept index, count, ...] with indices below {n_concepts} and counts of 0 or more."
        )
    return tuple(pairs)


def _decode_line(path: Path, line_number: int, raw: bytes) -> str:
    return decode_line(path, line_number, raw, DictionaryFormatError).rstrip("\r\n")


def _parse_tsv_line(path: Path, line_number: int, line: str) -> Tuple[str, str, List[str]]:
    location = f"{path}, line {line_number}"
    fields = line.split("\t")
    if len(fields) not in (2, 3):
        hint = (
            " Separate the fields with tabs, not spaces."
            if len(fields) == 1
            else " Put all synonyms in the third field, separated by '|'."
        )
        raise DictionaryFormatError(
            f"{location}: expected 2 or 3 tab-separated fields ({TSV_FORMAT}), "
            f"found {len(fields)}: {line[:80]!r}.{hint}"
        )
    concept_id, preferred = fields[0].strip(), fields[1].strip()
    if concept_id in MISSING_CONCEPT_IDS:
        raise DictionaryFormatError(
            f"{location}, field 1 (concept ID): {fields[0]!r} is empty or the "
            "missing-ID marker -1. Give the concept's ID, e.g. 'D003924'."
        )
    if not preferred:
        raise DictionaryFormatError(
            f"{location}, field 2 (preferred name): the name is empty. Give the "
            f"concept {concept_id!r} a name, or remove the line."
        )
    synonyms = []
    if len(fields) == 3:
        synonyms = [synonym.strip() for synonym in fields[2].split(SYNONYM_SEPARATOR)]
        synonyms = [synonym for synonym in synonyms if synonym]
    return concept_id, preferred, synonyms


class KeyTable:
    """Derived keys (normalized names, word-order keys) mapped to the merged concepts of their names.

    ``key_function`` returns the key of a name, or ``""`` to leave the name
    out.  The table is built from the dictionary once and reports, through
    :meth:`is_current`, whether the dictionary changed since.
    """

    def __init__(self, dictionary: ConceptDictionary, key_function: Callable[[str], str]):
        self.dictionary = dictionary
        self.key_function = key_function
        self.version = dictionary.version
        self.table: Dict[str, Pairs] = {}
        for name in dictionary.names:
            key = key_function(name)
            if not key:
                continue
            pairs = dictionary.pairs(name)
            merged = self.table.get(key, ())
            for position in range(0, len(pairs), 2):
                merged = add_pairs(merged, pairs[position], pairs[position + 1])
            self.table[key] = merged

    def is_current(self) -> bool:
        """Tell whether the dictionary is unchanged since the table was built."""
        return self.version == self.dictionary.version

    def candidates(self, key: str) -> List[Candidate]:
        """Return the concepts of the names with this key, best first."""
        return self.dictionary.rank(self.table.get(key, ()))

    def memory_bytes(self) -> int:
        """Estimate the table's memory in bytes, with ``sys.getsizeof``, not counting shared strings."""
        size = sys.getsizeof(self.table)
        size += sum(sys.getsizeof(key) + sys.getsizeof(pairs) for key, pairs in self.table.items())
        return size


def char_ngrams(text: str, n: int = 3) -> List[str]:
    """Return the character n-grams of ``text`` padded with one space at each end."""
    padded = f" {text} "
    return [padded[start : start + n] for start in range(max(len(padded) - n + 1, 1))]


class CharNgramIndex:
    """Nearest key by cosine similarity of character n-gram TF-IDF vectors.

    The inverse document frequency of an n-gram is ``ln((1 + N) / (1 + df)) + 1``,
    with N keys, df of them containing it, as in scikit-learn's TfidfTransformer
    with smooth_idf=True.
    The key vectors are stored column-wise, like a CSR matrix of n-grams by
    keys, so a query touches only the keys that share an n-gram with it.
    """

    def __init__(self, keys: Sequence[str], n: int = 3):
        self.keys = list(keys)
        self.n = n
        # One entry per (key, n-gram) pair, in typed arrays: a Python tuple per
        # pair would take about ten times the memory for a dictionary of MeSH's size.
        vocabulary: Dict[str, int] = {}
        rows = array.array("i")
        columns = array.array("i")
        counts = array.array("f")
        for row, key in enumerate(self.keys):
            for gram, count in Counter(char_ngrams(key, n)).items():
                rows.append(row)
                columns.append(vocabulary.setdefault(gram, len(vocabulary)))
                counts.append(count)
        self.vocabulary = vocabulary
        row_array = numpy.frombuffer(rows, dtype=numpy.int32)
        column_array = numpy.frombuffer(columns, dtype=numpy.int32)
        weights = numpy.frombuffer(counts, dtype=numpy.float32).copy()

        n_keys = len(self.keys)
        document_frequency = numpy.bincount(column_array, minlength=len(vocabulary))
        self.idf = (numpy.log((1 + n_keys) / (1 + document_frequency)) + 1).astype(numpy.float32)
        self.unseen_idf = math.log(1 + n_keys) + 1
        weights *= self.idf[column_array]
        norms = numpy.sqrt(numpy.bincount(row_array, weights=weights * weights, minlength=n_keys))
        weights /= numpy.maximum(norms, 1e-12)[row_array].astype(numpy.float32)

        # Sorted by n-gram, each n-gram's keys are one slice: offsets[g]:offsets[g + 1].
        order = numpy.argsort(column_array, kind="stable")
        self.rows = row_array[order]
        self.weights = weights[order]
        self.offsets = numpy.zeros(len(vocabulary) + 1, dtype=numpy.int64)
        self.offsets[1:] = numpy.cumsum(document_frequency)

    def nearest(self, text: str) -> Optional[Tuple[str, float]]:
        """Return the key most similar to ``text`` and the cosine, or None if no n-gram is shared."""
        if not self.keys or not text:
            return None
        counts = Counter(char_ngrams(text, self.n))
        scores = numpy.zeros(len(self.keys), dtype=numpy.float32)
        norm_squared = 0.0
        shared = False
        for gram, count in counts.items():
            column = self.vocabulary.get(gram)
            if column is None:
                norm_squared += (count * self.unseen_idf) ** 2
                continue
            weight = count * float(self.idf[column])
            norm_squared += weight * weight
            start, end = self.offsets[column], self.offsets[column + 1]
            # Each key appears once in a column, so fancy-index addition is exact here.
            scores[self.rows[start:end]] += weight * self.weights[start:end]
            shared = True
        if not shared:
            return None
        best = int(numpy.argmax(scores))
        return self.keys[best], float(scores[best]) / math.sqrt(norm_squared)

    def memory_bytes(self) -> int:
        """Estimate the index's memory in bytes: the numpy arrays and the n-gram vocabulary."""
        size = self.offsets.nbytes + self.rows.nbytes + self.weights.nbytes + self.idf.nbytes
        size += sys.getsizeof(self.vocabulary) + sys.getsizeof(self.keys)
        size += sum(sys.getsizeof(gram) for gram in self.vocabulary)
        return size
