"""spacy-biobert: BioBERT and other BERT encoders as a spaCy entity recognizer.

The ``biobert_ner`` factory, the ``spacy_biobert.TokenClassifier.v1``
architecture and the ``spacy_biobert.Corpus.v1`` reader are registered through
entry points, so spaCy finds them without this package being imported.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
