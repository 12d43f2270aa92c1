"""Load and save the Hugging Face encoder with its token-classification head.

The saved layout is the one ``AutoModelForTokenClassification.save_pretrained``
writes: ``config.json`` (with ``id2label``), ``model.safetensors`` and the
tokenizer files, so the folder loads in ``transformers`` as it is.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Dict, List, Sequence, Tuple

from safetensors import SafetensorError
from transformers import (
    AutoConfig,
    AutoModelForTokenClassification,
    AutoTokenizer,
    PretrainedConfig,
    PreTrainedModel,
    PreTrainedTokenizerBase,
)

logger = logging.getLogger(__name__)

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"


class EncoderLoadError(OSError):
    """The encoder, its weights or its tokenizer could not be loaded."""


def load_encoder_config(
    name_or_path: str, tags: Sequence[str], *, local_files_only: bool = False
) -> PretrainedConfig:
    """Load the encoder's configuration and give it one output per tag.

    Only ``config.json`` is read, so that settings can be checked against the
    encoder before any weights load.
    """
    try:
        return AutoConfig.from_pretrained(
            name_or_path,
            num_labels=len(tags),
            id2label=dict(enumerate(tags)),
            label2id={tag: i for i, tag in enumerate(tags)},
            local_files_only=local_files_only,
        )
    except (OSError, ValueError) as error:
        raise EncoderLoadError(
            f"Could not load the encoder configuration from {name_or_path!r}: {error}\n"
            "Give a local folder that contains config.json, the tokenizer files and "
            "model.safetensors, or a Hugging Face model name on a machine that can "
            "reach the hub."
        ) from error


def load_tokenizer(
    name_or_path: str | Path, tokenizer_config: Dict[str, Any]
) -> PreTrainedTokenizerBase:
    """Load the encoder's fast tokenizer.

    Raises:
        EncoderLoadError: when no tokenizer loads, or only a slow one exists
            (word-to-piece alignment needs a fast tokenizer's ``word_ids``).
    """
    try:
        tokenizer = AutoTokenizer.from_pretrained(
            str(name_or_path), use_fast=True, **tokenizer_config
        )
    except (OSError, ValueError) as error:
        raise EncoderLoadError(
            f"Could not load the tokenizer from {str(name_or_path)!r}: {error}\n"
            "The folder needs tokenizer.json or vocab.txt (with tokenizer_config.json)."
        ) from error
    if not tokenizer.is_fast:
        raise EncoderLoadError(
            f"The tokenizer of {str(name_or_path)!r} has no fast (Rust) version; "
            "biobert_ner needs one to map word pieces to tokens. Add tokenizer.json "
            "to the folder, or use an encoder whose tokenizer has a fast version."
        )
    return tokenizer


def load_pretrained(
    name_or_path: str,
    config: PretrainedConfig,
    *,
    allow_pickle: bool = False,
) -> PreTrainedModel:
    """Load a pretrained encoder and put a new, randomly initialised head on top.

    A head that the checkpoint already has is replaced, because its rows follow
    the checkpoint's own label order, not this pipeline's tags.

    Args:
        allow_pickle: also read ``pytorch_model.bin``, which is a pickle and can
            run code when loaded. Only for checkpoints from a trusted source.
    """
    try:
        model, info = AutoModelForTokenClassification.from_pretrained(
            name_or_path,
            config=config,
            use_safetensors=None if allow_pickle else True,
            ignore_mismatched_sizes=True,
            output_loading_info=True,
        )
    except (OSError, ValueError) as error:
        raise EncoderLoadError(
            f"Could not load the encoder weights from {name_or_path!r}: {error}\n"
            "biobert_ner reads model.safetensors only. If the checkpoint has only "
            "pytorch_model.bin and you trust its source, set allow_pickle = true "
            "in [components.<name>.model]; otherwise convert it to safetensors first."
        ) from error
    head_was_loaded = not any("classifier" in key for key in info["missing_keys"])
    if head_was_loaded:
        logger.info(
            "Replaced the token-classification head of %s with a new one for %d tags.",
            name_or_path,
            len(config.id2label),
        )
        model._init_weights(model.classifier)
    return model


def save_folder(
    path: Path, model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase
) -> None:
    """Write the model as safetensors plus its config and tokenizer files."""
    path.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(path, safe_serialization=True)
    tokenizer.save_pretrained(path)


def load_folder(
    path: Path, tags: List[str]
) -> Tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """Load a folder written by ``save_folder``, without contacting any hub.

    Raises:
        EncoderLoadError: when a file is missing or unreadable, or the head's
            labels are not ``tags``.
    """
    for name in (CONFIG_NAME, WEIGHTS_NAME):
        if not (path / name).is_file():
            raise EncoderLoadError(
                f"Missing {path / name}. A saved biobert_ner pipeline keeps its "
                f"encoder in {path}; save the pipeline again with nlp.to_disk, or "
                "copy the whole pipeline folder."
            )
    try:
        model = AutoModelForTokenClassification.from_pretrained(
            path, local_files_only=True, use_safetensors=True
        )
    except (OSError, ValueError, RuntimeError, SafetensorError) as error:
        raise EncoderLoadError(
            f"Could not read the encoder weights in {path / WEIGHTS_NAME}: {error}\n"
            "The file may be truncated or corrupt; save the pipeline again."
        ) from error
    saved_tags = [model.config.id2label[i] for i in range(model.config.num_labels)]
    if saved_tags != list(tags):
        raise EncoderLoadError(
            f"The head in {path / CONFIG_NAME} has the labels {saved_tags}, but the "
            f"component expects {list(tags)}. The folder belongs to another pipeline."
        )
    tokenizer = load_tokenizer(path, {})
    return model, tokenizer
