"""Move token classifiers between Hugging Face folders and spaCy pipelines.

``import_checkpoint`` turns a fine-tuned ``AutoModelForTokenClassification``
folder into a spaCy pipeline with ``biobert_ner``, keeping its head: the rows
are reordered to the component's tag order, so every logit is the
checkpoint's own.  ``export_pipeline`` writes a trained ``biobert_ner`` as a
folder that ``from_pretrained`` loads.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Tuple

import spacy
import torch
from spacy.language import Language
from transformers import PreTrainedModel

from .models.encoder import EncoderLoadError, load_checkpoint, load_tokenizer, save_folder
from .models.token_classifier import get_hf_model
from .pipeline.ner import BiobertNer
from .tags import OUTSIDE, make_tags

logger = logging.getLogger(__name__)

FACTORY = "biobert_ner"
# Tag prefixes of the BIOES and BILOU schemes, which a BIO head has no rows for.
OTHER_SCHEME_PREFIXES = ("S", "E", "U", "L")


class LabelSchemeError(ValueError):
    """The checkpoint's labels are not a BIO scheme that biobert_ner can keep."""


def read_bio_labels(
    id2label: Mapping[int, str], *, entity_type: Optional[str] = None, source: str = ""
) -> Tuple[List[str], Dict[str, int]]:
    """Read a head's labels as BIO tags.

    Args:
        id2label: the checkpoint's ``config.id2label``.
        entity_type: the entity label for an untyped ``B``/``I``/``O`` head.
        source: where ``id2label`` comes from, for messages.

    Returns:
        The entity labels, and the checkpoint's row of each BIO tag
        (``{"O": 0, "B-Disease": 1, "I-Disease": 2}``).

    Raises:
        LabelSchemeError: for BIOES or BILOU heads, generic names such as
            ``LABEL_0``, an untyped head without ``entity_type``, or a type that
            lacks its ``B-`` or ``I-`` row.
    """
    where = f" in {source}" if source else ""
    names = {int(index): str(name) for index, name in id2label.items()}
    rows: Dict[str, int] = {}
    untyped = set(names.values()) <= {OUTSIDE, "B", "I"}
    for index, name in sorted(names.items()):
        if name == OUTSIDE:
            tag = OUTSIDE
        elif untyped:
            if not entity_type:
                raise LabelSchemeError(
                    f"The head{where} has untyped labels {sorted(set(names.values()))}. "
                    "Name the entity type they stand for: entity_type='Disease' "
                    "(on the command line: --entity-type Disease)."
                )
            tag = f"{name}-{entity_type}"
        else:
            prefix, dash, label = name.partition("-")
            if prefix in OTHER_SCHEME_PREFIXES and dash:
                raise LabelSchemeError(
                    f"The head{where} uses BIOES or BILOU labels ({name!r}); "
                    "biobert_ner keeps BIO heads only (O, B-X, I-X). Fine-tune the "
                    "checkpoint on BIO tags, or train biobert_ner on your corpus."
                )
            if prefix not in ("B", "I") or not dash or not label:
                raise LabelSchemeError(
                    f"The head{where} has the label {name!r} at row {index}, which "
                    "is not O, B-<type> or I-<type>. If the checkpoint has no label "
                    "names (LABEL_0, LABEL_1, ...), write them into id2label in "
                    "config.json first."
                )
            tag = name
        if tag in rows:
            raise LabelSchemeError(f"The head{where} has the label {name!r} twice.")
        rows[tag] = index
    if OUTSIDE not in rows:
        raise LabelSchemeError(f"The head{where} has no 'O' label: {sorted(rows)}.")
    labels = sorted({tag[2:] for tag in rows if tag != OUTSIDE})
    missing = [tag for tag in make_tags(labels) if tag not in rows]
    if missing:
        raise LabelSchemeError(
            f"The head{where} lacks the rows {missing}; biobert_ner needs B- and I- "
            "rows for every type."
        )
    return labels, rows


def reorder_head(model: PreTrainedModel, rows: Mapping[str, int], tags: List[str]) -> None:
    """Reorder the head's rows to ``tags`` and relabel the config to match."""
    classifier = getattr(model, "classifier", None)
    if not isinstance(classifier, torch.nn.Linear):
        raise EncoderLoadError(
            f"{type(model).__name__} has no linear head named 'classifier'; "
            "import_checkpoint takes BERT-family token classifiers."
        )
    order = torch.tensor([rows[tag] for tag in tags])
    with torch.no_grad():
        classifier.weight.copy_(classifier.weight[order].clone())
        classifier.bias.copy_(classifier.bias[order].clone())
    model.config.id2label = dict(enumerate(tags))
    model.config.label2id = {tag: i for i, tag in enumerate(tags)}


def import_checkpoint(
    checkpoint: str | Path,
    *,
    entity_type: Optional[str] = None,
    allow_pickle: bool = False,
    tokenizer_config: Optional[Dict[str, Any]] = None,
    model_config: Optional[Dict[str, Any]] = None,
    component_config: Optional[Dict[str, Any]] = None,
    lang: str = "en",
) -> Language:
    """Make a spaCy pipeline whose ``ner`` component is a Hugging Face token classifier.

    Args:
        checkpoint: a folder with ``config.json`` (with ``id2label``), weights
            and tokenizer files, or a Hugging Face model name.
        entity_type: the entity label of an untyped ``B``/``I``/``O`` head.
        allow_pickle: also read ``pytorch_model.bin``, a pickle that can run
            code when loaded; only for checkpoints from a source you trust.  The
            pipeline saves the weights as safetensors, so its config keeps
            ``allow_pickle = false``.
        tokenizer_config: keyword arguments for the tokenizer, such as
            ``{"do_lower_case": False}``.
        model_config: settings of ``spacy_biobert.TokenClassifier.v1``
            (``window``, ``stride``, ``context``, ...).
        component_config: settings of ``biobert_ner`` (``decoding``, ...).
        lang: the spaCy language of the pipeline.

    Returns:
        The pipeline, ready to use or to save with ``nlp.to_disk``.
    """
    model = load_checkpoint(str(checkpoint), allow_pickle=allow_pickle)
    labels, rows = read_bio_labels(
        model.config.id2label, entity_type=entity_type, source=str(checkpoint)
    )
    tokenizer_config = dict(tokenizer_config or {})
    tokenizer = load_tokenizer(checkpoint, tokenizer_config)
    nlp = spacy.blank(
        lang, config={"nlp": {"tokenizer": {"@tokenizers": "spacy_biobert.BioTokenizer.v1"}}}
    )
    settings = {
        "encoder": str(checkpoint),
        "tokenizer_config": tokenizer_config,
        **(model_config or {}),
    }
    ner = nlp.add_pipe(FACTORY, name="ner", config={"model": settings, **(component_config or {})})
    for label in labels:
        ner.add_label(label)
    reorder_head(model, rows, ner.tags)
    ner.attach_pretrained(model, tokenizer)
    nlp.meta["description"] = f"biobert_ner imported from the token classifier {checkpoint}"
    return nlp


def export_pipeline(
    nlp: Language,
    output: str | Path,
    *,
    component: Optional[str] = None,
    drop_crf: bool = False,
) -> Path:
    """Write a ``biobert_ner`` component as a Hugging Face token-classification folder.

    Args:
        component: the component's name; needed only when the pipeline has
            more than one ``biobert_ner``.
        drop_crf: export a component trained with ``crf = true`` without its
            transition scores, which the layout has no place for.  Decoded
            token by token, as ``transformers`` does, its head alone tags
            much worse, so this is off by default.

    Returns:
        The folder, with ``config.json``, ``model.safetensors`` and the
        tokenizer files.
    """
    names = [name for name, pipe in nlp.pipeline if isinstance(pipe, BiobertNer)]
    if component is None:
        if len(names) != 1:
            raise ValueError(
                f"The pipeline has {len(names)} biobert_ner components ({names}); "
                "name the one to export (--component NAME)."
            )
        component = names[0]
    elif component not in names:
        raise ValueError(
            f"The pipeline has no biobert_ner component named {component!r}; "
            f"its biobert_ner components are {names}."
        )
    ner = nlp.get_pipe(component)
    if ner.transitions is not None and not drop_crf:
        raise ValueError(
            f"{component!r} was trained with crf = true. A Hugging Face "
            "token-classification folder has no place for the CRF's transition "
            "scores, and its head decoded token by token, as transformers' "
            "pipeline does, tags much worse (the make demo pipeline: 69 F1 "
            "against 84 on the NCBI-disease test sentences). To share a model "
            "for transformers, train it with crf = false (spacy train ... "
            "--components.ner.crf false). To export this one "
            "anyway, for example to import it again with import-hf, whose "
            "Viterbi decoding keeps its accuracy, pass --drop-crf (drop_crf=True)."
        )
    if ner.transitions is not None:
        logger.warning(
            "Exporting %r without its CRF transition scores: decoded token by token, "
            "the exported head tags far less accurately than the pipeline.",
            component,
        )
    output = Path(output)
    save_folder(output, get_hf_model(ner.model), ner.model.attrs["tokenizer"])
    return output
