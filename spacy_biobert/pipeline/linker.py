"""The ``biobert_linker`` component: concept IDs (MeSH, OMIM) for the entities in ``doc.ents``.

Each entity whose label is a key of ``labels`` is looked up in the
dictionary that the label maps to, and the first of these steps that finds a
concept decides:

1. ``"exact"``: the entity text as written;
2. ``"normalized"``: the text after the ``normalization`` steps
   (see :mod:`spacy_biobert.linking.normalize`);
3. ``"abbreviation"``: when the entity is a short form in
   ``doc.spans[abbreviations_key]``, or its text equals one, the short form's
   ``span._.long_form`` looked up by steps 1, 2 and 4;
4. ``"word_order"``: the normalized words sorted, so "cancer of the breast"
   finds "breast cancer";
5. ``"fallback"``: the dictionary name nearest to the normalized text (or to
   the long form of an abbreviation) by the cosine of character 3-gram TF-IDF
   vectors, if the cosine is at least ``fallback_min_score``.

A name with several concepts links to the one seen most often with it in the
training data (ties as in :meth:`ConceptDictionary.rank`).

The component writes ``span.kb_id_`` (``""`` when no step finds a concept) and
two Span extensions, stored in ``doc.user_data`` by character offsets:

- ``span._.link_method``: the step that linked the entity, or None;
- ``span._.link_score``: for steps 1-4, the share of the name's training count
  that goes to the chosen concept, which is 1.0 for an unambiguous name.  For
  the fallback it is the cosine, and it is None when nothing was linked.

spaCy spans are immutable views, so the component re-assigns ``doc.ents``
with new Span objects that carry the IDs.

Dictionaries are filled at ``nlp.initialize()`` from
``[initialize.components.<name>]`` settings, or directly with
:meth:`EntityLinker.add_pubtator`, :meth:`EntityLinker.add_tsv` and
:meth:`EntityLinker.add_name`.  They are saved with the pipeline as JSON
(``to_disk``) or msgpack (``to_bytes``).

NOTE: the fallback is the character n-gram search only.  ``fallback`` is a
setting so that a search over encoder embeddings can be another value later.

Known shortcomings: the linker never predicts a concept that is missing from
its dictionaries, and a name that is ambiguous in the training data always
gets its most frequent concept, whatever the context.  A short form without a
long form in ``doc.spans`` falls through to the word-order and fallback steps,
which rarely help for 2-4 letter strings.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple, Union

import srsly
from spacy.language import Language
from spacy.pipeline import Pipe
from spacy.tokens import Doc, Span
from spacy.training import Example
from spacy.util import ensure_path
from spacy.vocab import Vocab

from ..linking.dictionary import (
    MISSING_CONCEPT_IDS,
    Candidate,
    CharNgramIndex,
    ConceptDictionary,
    DictionaryFormatError,
    KeyTable,
    iter_mention_names,
)
from ..linking.normalize import STEPS, check_steps, normalize, word_order_key
from ..readers.mentions import MENTIONS_KEY, from_doc
from ..readers.pubtator import read_pubtator

LINK_METHODS = ("exact", "normalized", "abbreviation", "word_order", "fallback")
FALLBACKS = ("none", "char_ngram")
SCORE_EXTENSION = "link_score"
METHOD_EXTENSION = "link_method"
LONG_FORM_EXTENSION = "long_form"
DICTIONARIES_FILE = "dictionaries.json"

# Entity label -> dictionary.  BC5CDR types are Chemical and Disease; the four
# NCBI-disease classes all name diseases, so they share the Disease dictionary.
DEFAULT_LABELS = {
    "Disease": "Disease",
    "SpecificDisease": "Disease",
    "DiseaseClass": "Disease",
    "Modifier": "Disease",
    "CompositeMention": "Disease",
    "Chemical": "Chemical",
}

# A trade-off measured with benchmarks/linking.py on the NCBI-disease and BC5CDR
# test mentions.  At 0.6, 85 % (NCBI-disease) and 92 % (BC5CDR) of all links are
# right.  At 0.0, acc@1 rises by 0.4 to 1.5 points, but only 73 % and 79 % are.
DEFAULT_FALLBACK_MIN_SCORE = 0.6


def register_extensions() -> None:
    """Register ``span._.link_score`` and ``span._.link_method`` unless they exist."""
    for name in (SCORE_EXTENSION, METHOD_EXTENSION):
        if not Span.has_extension(name):
            Span.set_extension(name, default=None)


register_extensions()


@dataclass(frozen=True)
class Link:
    """The outcome of linking one entity: the concept ID, its score and the step that found it."""

    concept_id: str
    score: float
    method: str


@Language.factory(
    "biobert_linker",
    assigns=["doc.ents", f"span._.{SCORE_EXTENSION}", f"span._.{METHOD_EXTENSION}"],
    requires=["doc.ents"],
    default_config={
        # None stands for DEFAULT_LABELS.  A mapping here would be merged with
        # any mapping that a config gives, so no label could be left out.
        "labels": None,
        "normalization": list(STEPS),
        "use_abbreviations": True,
        "abbreviations_key": "abbreviations",
        "word_order": True,
        "fallback": "char_ngram",
        "fallback_min_score": DEFAULT_FALLBACK_MIN_SCORE,
        "overwrite": True,
    },
    default_score_weights={"link_accuracy": 1.0},
)
def make_biobert_linker(
    nlp: Language,
    name: str,
    labels: Optional[Dict[str, str]],
    normalization: List[str],
    use_abbreviations: bool,
    abbreviations_key: str,
    word_order: bool,
    fallback: str,
    fallback_min_score: float,
    overwrite: bool,
) -> "EntityLinker":
    return EntityLinker(
        nlp.vocab,
        name,
        labels=DEFAULT_LABELS if labels is None else labels,
        normalization=normalization,
        use_abbreviations=use_abbreviations,
        abbreviations_key=abbreviations_key,
        word_order=word_order,
        fallback=fallback,
        fallback_min_score=fallback_min_score,
        overwrite=overwrite,
    )


def score_links(examples: Iterable[Example], **kwargs) -> Dict[str, Optional[float]]:
    """Score ``kb_id_`` on the gold entities that have a concept ID and a predicted entity at the same offsets.

    ``link_accuracy`` is the share of those entities whose predicted ID equals
    the gold ID string.  ``link_coverage`` is the share of gold entities with an
    ID that have a predicted entity at the same offsets.  Both are None without
    gold IDs.
    """
    n_gold = n_aligned = n_correct = 0
    for example in examples:
        predicted = {(ent.start_char, ent.end_char): ent.kb_id_ for ent in example.predicted.ents}
        for ent in example.reference.ents:
            if ent.kb_id_.strip() in MISSING_CONCEPT_IDS:
                continue
            n_gold += 1
            concept_id = predicted.get((ent.start_char, ent.end_char))
            if concept_id is None:
                continue
            n_aligned += 1
            n_correct += concept_id == ent.kb_id_.strip()
    return {
        "link_accuracy": n_correct / n_aligned if n_aligned else None,
        "link_coverage": n_aligned / n_gold if n_gold else None,
    }


class _Lookups:
    """The lookup tables of one dictionary for one set of settings, rebuilt when the dictionary changes."""

    def __init__(self, dictionary: ConceptDictionary, steps: Tuple[str, ...], word_order: bool):
        self.dictionary = dictionary
        self.steps = steps
        # Each name is normalized once for both tables; the mapping is dropped afterwards.
        normalized_names = (
            {name: self.normalize(name) for name in dictionary.names} if steps or word_order else {}
        )
        self.normalized = KeyTable(dictionary, normalized_names.__getitem__) if steps else None
        self.word_order = (
            KeyTable(dictionary, lambda name: word_order_key(normalized_names[name]))
            if word_order
            else None
        )
        self._ngram_index: Optional[CharNgramIndex] = None
        self._ngram_table: Optional[KeyTable] = None

    def normalize(self, text: str) -> str:
        return normalize(text, self.steps)

    def is_current(self) -> bool:
        return all(
            table is None or table.is_current() for table in (self.normalized, self.word_order)
        ) and (self._ngram_table is None or self._ngram_table.is_current())

    def lookup(self, text: str) -> Optional[Tuple[Candidate, str]]:
        """Find ``text`` by the exact, normalized and word-order steps; return the best concept and step."""
        candidates = self.dictionary.candidates(text)
        if candidates:
            return candidates[0], "exact"
        normalized = self.normalize(text)
        if self.normalized is not None:
            candidates = self.normalized.candidates(normalized)
            if candidates:
                return candidates[0], "normalized"
        if self.word_order is not None:
            key = word_order_key(normalized)
            candidates = self.word_order.candidates(key) if key else []
            if candidates:
                return candidates[0], "word_order"
        return None

    def nearest(self, text: str) -> Optional[Tuple[Candidate, float]]:
        """Find the dictionary name nearest to ``text`` by character n-grams; return its best concept and the cosine."""
        if self._ngram_index is None:
            # Built on first use: the keys are the normalized names, so that
            # case and punctuation do not count as differences.
            self._ngram_table = self.normalized or KeyTable(self.dictionary, self.normalize)
            self._ngram_index = CharNgramIndex(list(self._ngram_table.table))
        found = self._ngram_index.nearest(self.normalize(text))
        if found is None:
            return None
        key, cosine = found
        return self._ngram_table.candidates(key)[0], cosine

    def memory_bytes(self) -> int:
        size = self.dictionary.memory_bytes()
        tables = {id(table): table for table in (self.normalized, self.word_order, self._ngram_table)}
        for table in tables.values():
            if table is not None:
                size += table.memory_bytes()
        if self._ngram_index is not None:
            size += self._ngram_index.memory_bytes()
        return size


class EntityLinker(Pipe):
    """Link entities to concept IDs with per-label name dictionaries (see the module docstring).

    Args:
        labels: entity label -> dictionary name; entities with other labels
            are left as they are.  Several labels may share a dictionary.  The
            factory's default, None, is ``DEFAULT_LABELS``.
        normalization: the steps of :func:`spacy_biobert.linking.normalize.normalize`
            for the normalized lookup; an empty list turns that step off.
        use_abbreviations: look up the long form of short forms found in
            ``doc.spans[abbreviations_key]``.
        word_order: look up the word-order key.
        fallback: ``"char_ngram"`` for the nearest name by character 3-gram
            TF-IDF cosine, or ``"none"``.
        fallback_min_score: the lowest cosine, from 0 to 1, at which the fallback links.
        overwrite: replace a ``kb_id_`` that an entity already has; with
            False such entities are left as they are.
    """

    def __init__(
        self,
        vocab: Vocab,
        name: str = "biobert_linker",
        *,
        labels: Mapping[str, str] = DEFAULT_LABELS,
        normalization: Sequence[str] = STEPS,
        use_abbreviations: bool = True,
        abbreviations_key: str = "abbreviations",
        word_order: bool = True,
        fallback: str = "char_ngram",
        fallback_min_score: float = DEFAULT_FALLBACK_MIN_SCORE,
        overwrite: bool = True,
        scorer: Optional[Callable] = score_links,
    ):
        invalid = {label: target for label, target in labels.items() if not target or not label}
        if invalid or not labels:
            raise ValueError(
                f"Invalid labels {dict(labels)!r} for {name!r}: expected a non-empty "
                "mapping from entity label to dictionary name, e.g. {'Disease': 'Disease'}."
            )
        if fallback not in FALLBACKS:
            raise ValueError(
                f"Invalid fallback {fallback!r} for {name!r}: expected one of {', '.join(FALLBACKS)}."
            )
        if not 0.0 <= fallback_min_score <= 1.0:
            raise ValueError(
                f"Invalid fallback_min_score {fallback_min_score!r} for {name!r}: "
                "expected a cosine from 0 to 1."
            )

        self.vocab = vocab
        self.name = name
        self.labels_to_dictionaries = dict(labels)
        self.normalization = check_steps(normalization)
        self.use_abbreviations = use_abbreviations
        self.abbreviations_key = abbreviations_key
        self.word_order = word_order
        self.fallback = fallback
        self.fallback_min_score = fallback_min_score
        self.overwrite = overwrite
        self.scorer = scorer
        self.dictionaries: Dict[str, ConceptDictionary] = {
            dictionary_name: ConceptDictionary() for dictionary_name in sorted(set(labels.values()))
        }
        self._lookups: Dict[str, _Lookups] = {}

    @property
    def labels(self) -> Tuple[str, ...]:
        """The entity labels that are linked."""
        return tuple(self.labels_to_dictionaries)

    # Building the dictionaries

    def add_name(self, name: str, concept_id: str, dictionary: str, count: int = 1) -> bool:
        """Add a name for a concept to one dictionary; return False for an empty name or a missing ID."""
        return self._dictionary(dictionary).add(name, concept_id, count)

    def add_tsv(self, path: Union[str, Path], dictionary: str) -> int:
        """Add the concepts of a TSV file to one dictionary; return how many.

        The format is in :mod:`spacy_biobert.linking.dictionary`.
        """
        return self._dictionary(dictionary).add_tsv(path)

    def add_pubtator(self, paths: Union[str, Path, Iterable[Union[str, Path]]]) -> int:
        """Add the mentions of PubTator files, each to the dictionary of its type; return how many.

        Mentions of types that are not keys of ``labels`` are left out.
        """
        if isinstance(paths, (str, Path)):
            paths = [paths]
        added = 0
        for path in paths:
            added += self._add_mentions(read_pubtator(path))
        return added

    def _add_mentions(self, documents) -> int:
        added = 0
        for label, name, concept_id in iter_mention_names(documents):
            dictionary = self.labels_to_dictionaries.get(label)
            if dictionary is not None:
                added += self.dictionaries[dictionary].add(name, concept_id)
        return added

    def _dictionary(self, dictionary: str) -> ConceptDictionary:
        if dictionary not in self.dictionaries:
            raise KeyError(
                f"{self.name!r} has no dictionary {dictionary!r}; it has "
                f"{', '.join(self.dictionaries)}. Map an entity label to it in the "
                "'labels' setting."
            )
        return self.dictionaries[dictionary]

    def initialize(
        self,
        get_examples: Optional[Callable[[], Iterable[Example]]] = None,
        *,
        nlp: Optional[Language] = None,
        pubtator_paths: Optional[List[str]] = None,
        tsv_paths: Optional[Dict[str, Union[str, List[str]]]] = None,
        use_examples: bool = True,
    ) -> None:
        """Fill the dictionaries from files and, optionally, from the training examples.

        Set in a config as ``[initialize.components.<name>]``::

            [initialize.components.linker]
            pubtator_paths = ["corpus/CDR_TrainingSet.PubTator.txt"]
            use_examples = false

            [initialize.components.linker.tsv_paths]
            Disease = "dictionaries/diseases.tsv"

        Args:
            pubtator_paths: PubTator files whose mentions add names.
            tsv_paths: dictionary name -> a TSV file or a list of them.
            use_examples: add the gold mentions of ``get_examples()`` that have a
                concept ID (``doc.spans["mentions"]`` where the reader made it,
                else ``doc.ents``).  A corpus also listed in ``pubtator_paths``
                would be counted twice.
        """
        for dictionary, paths in (tsv_paths or {}).items():
            for path in [paths] if isinstance(paths, (str, Path)) else paths:
                self.add_tsv(path, dictionary)
        self.add_pubtator(list(pubtator_paths or []))
        if use_examples and get_examples is not None:
            documents = (_gold_document(example.reference) for example in get_examples())
            self._add_mentions(documents)

    # Linking

    def _lookups_for(self, dictionary: str) -> _Lookups:
        lookups = self._lookups.get(dictionary)
        stale = (
            lookups is None
            or not lookups.is_current()
            or lookups.dictionary is not self.dictionaries[dictionary]
        )
        if stale:
            lookups = _Lookups(self.dictionaries[dictionary], self.normalization, self.word_order)
            self._lookups[dictionary] = lookups
        return lookups

    def link(self, text: str, label: str, long_form: Optional[str] = None) -> Optional[Link]:
        """Link one entity text of entity label ``label``; return None if no step finds a concept.

        ``long_form`` is the long form when the text is an abbreviation's short form.
        """
        dictionary = self.labels_to_dictionaries.get(label)
        if dictionary is None:
            return None
        lookups = self._lookups_for(dictionary)

        candidates = lookups.dictionary.candidates(text)
        if candidates:
            return Link(candidates[0].concept_id, candidates[0].share, "exact")
        if lookups.normalized is not None:
            candidates = lookups.normalized.candidates(lookups.normalize(text))
            if candidates:
                return Link(candidates[0].concept_id, candidates[0].share, "normalized")
        if long_form:
            found = lookups.lookup(long_form)
            if found is not None:
                return Link(found[0].concept_id, found[0].share, "abbreviation")
        if lookups.word_order is not None:
            key = word_order_key(lookups.normalize(text))
            candidates = lookups.word_order.candidates(key) if key else []
            if candidates:
                return Link(candidates[0].concept_id, candidates[0].share, "word_order")
        if self.fallback == "char_ngram":
            nearest = lookups.nearest(long_form or text)
            if nearest is not None and nearest[1] >= self.fallback_min_score:
                return Link(nearest[0].concept_id, nearest[1], "fallback")
        return None

    def __call__(self, doc: Doc) -> Doc:
        long_forms = self.long_forms(doc) if self.use_abbreviations else {}
        entities = []
        results = []
        for ent in doc.ents:
            if ent.label_ not in self.labels_to_dictionaries or (
                not self.overwrite and ent.kb_id_
            ):
                entities.append(ent)
                continue
            long_form = long_forms.get((ent.start_char, ent.end_char)) or long_forms.get(ent.text)
            link = self.link(ent.text, ent.label_, long_form)
            concept_id = link.concept_id if link is not None else ""
            entities.append(
                Span(doc, ent.start, ent.end, label=ent.label, kb_id=concept_id, span_id=ent.id)
            )
            results.append((entities[-1], link))
        doc.ents = entities
        for span, link in results:
            span._.set(SCORE_EXTENSION, None if link is None else link.score)
            span._.set(METHOD_EXTENSION, None if link is None else link.method)
        return doc

    def long_forms(self, doc: Doc) -> Dict[Union[Tuple[int, int], str], str]:
        """Map each short form's offsets, and its text, to the text of its long form."""
        if self.abbreviations_key not in doc.spans or not Span.has_extension(LONG_FORM_EXTENSION):
            return {}
        long_forms: Dict[Union[Tuple[int, int], str], str] = {}
        for short_form in doc.spans[self.abbreviations_key]:
            long_form = short_form._.get(LONG_FORM_EXTENSION)
            if long_form is None:
                continue
            long_text = long_form if isinstance(long_form, str) else long_form.text
            long_forms[(short_form.start_char, short_form.end_char)] = long_text
            # The first definition in the document wins for later uses of the same short form.
            long_forms.setdefault(short_form.text, long_text)
        return long_forms

    def memory_bytes(self) -> int:
        """Estimate the memory of the dictionaries and the lookup tables built so far, in bytes."""
        total = 0
        for dictionary in self.dictionaries:
            lookups = self._lookups.get(dictionary)
            total += (
                lookups.memory_bytes()
                if lookups is not None
                else self.dictionaries[dictionary].memory_bytes()
            )
        return total

    # Serialization: JSON on disk, msgpack in bytes, never pickle.

    def _serialized(self) -> Dict[str, object]:
        return {name: dictionary.to_dict() for name, dictionary in self.dictionaries.items()}

    def _load_serialized(self, data: object, source: str) -> None:
        if not isinstance(data, dict):
            raise DictionaryFormatError(
                f"{source}: expected a mapping from dictionary name to dictionary."
            )
        dictionaries = {}
        for name, value in data.items():
            dictionaries[name] = ConceptDictionary.from_dict(value, source=f"{source}, dictionary {name!r}")
        missing = set(self.labels_to_dictionaries.values()) - set(dictionaries)
        for name in missing:
            dictionaries[name] = ConceptDictionary()
        self.dictionaries = dictionaries
        self._lookups = {}

    def to_disk(self, path, *, exclude=tuple()) -> None:
        path = ensure_path(path)
        path.mkdir(parents=True, exist_ok=True)
        srsly.write_json(path / DICTIONARIES_FILE, self._serialized(), indent=0)

    def from_disk(self, path, *, exclude=tuple()) -> "EntityLinker":
        path = ensure_path(path)
        file = path / DICTIONARIES_FILE
        if not file.is_file():
            raise FileNotFoundError(
                f"Missing {file}: this folder was not written by biobert_linker's "
                "to_disk. Load the whole pipeline folder with spacy.load()."
            )
        self._load_serialized(srsly.read_json(file), str(file))
        return self

    def to_bytes(self, *, exclude=tuple()) -> bytes:
        return srsly.msgpack_dumps(self._serialized())

    def from_bytes(self, bytes_data: bytes, *, exclude=tuple()) -> "EntityLinker":
        self._load_serialized(srsly.msgpack_loads(bytes_data), f"{self.name!r} bytes")
        return self


def _gold_document(doc: Doc):
    """Return a gold Doc as an AnnotatedDocument, with every mention when the reader kept them all."""
    spans_key = MENTIONS_KEY if MENTIONS_KEY in doc.spans else None
    return from_doc(doc, spans_key=spans_key)
