"""Concept linking: name normalization and the name -> concept dictionary.

The spaCy component that uses them is ``spacy_biobert.pipeline.linker``.
"""
