"""Load and save the Hugging Face encoder with its token-classification head.

The saved layout is the one ``AutoModelForTokenClassification.save_pretrained``
writes: ``config.json`` (with ``id2label``), ``model.safetensors`` and the
tokenizer files, so the folder loads in ``transformers`` as it is.
"""

from __future__ import annotations

import logging
import os
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
PICKLED_WEIGHTS_NAME = "pytorch_model.bin"
# A lower-casing tokenizer whose vocabulary has at least this share of
# capitalised word pieces belongs to a cased encoder.  Uncased vocabularies have
# next to none (all-MiniLM-L6-v2: 2 of 30,522), since lower-cased text cannot
# produce them.
CASED_VOCABULARY_SHARE = 0.05


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
    warn_if_cased_vocabulary_is_lowercased(tokenizer, str(name_or_path))
    return tokenizer


def lowercases(tokenizer: PreTrainedTokenizerBase) -> bool:
    """Return whether the tokenizer lower-cases text before splitting it into word pieces."""
    normalizer = tokenizer.backend_tokenizer.normalizer
    return normalizer is not None and normalizer.normalize_str("BRCA1") != "BRCA1"


def warn_if_cased_vocabulary_is_lowercased(
    tokenizer: PreTrainedTokenizerBase, source: str
) -> None:
    """Warn when a tokenizer lower-cases text for a vocabulary learned on cased text.

    Capitalised word pieces can never be produced then, so the encoder reads
    text unlike its pretraining data.  The usual cause is a cased checkpoint,
    such as BioBERT, shipped without ``tokenizer_config.json``.
    """
    if not lowercases(tokenizer):
        return
    vocab = tokenizer.get_vocab()
    capitalised = sum(1 for piece in vocab if piece.lstrip("#")[:1].isupper())
    if capitalised >= CASED_VOCABULARY_SHARE * len(vocab):
        logger.warning(
            "The tokenizer of %s lower-cases text, but %d of its %d word pieces start "
            "with a capital letter, so the encoder was most likely trained on cased "
            "text. A missing tokenizer_config.json is the usual cause. Set "
            'tokenizer_config = {"do_lower_case": false} in [components.<name>.model] '
            "(with import-hf: --keep-case).",
            source,
            capitalised,
            len(vocab),
        )


def check_tokenizer_fits(
    model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, source: str
) -> None:
    """Reject a tokenizer whose word-piece ids run past the encoder's embeddings."""
    if len(tokenizer) > model.config.vocab_size:
        raise EncoderLoadError(
            f"The tokenizer of {source} has {len(tokenizer)} word pieces, but the "
            f"encoder's embeddings have {model.config.vocab_size} rows, so the "
            "tokenizer files belong to another encoder. Use the tokenizer files "
            "saved with these weights."
        )


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
    model, info = _from_pretrained(
        name_or_path,
        allow_pickle,
        config=config,
        ignore_mismatched_sizes=True,
        output_loading_info=True,
    )
    head_was_loaded = not any("classifier" in key for key in info["missing_keys"])
    if head_was_loaded:
        logger.info(
            "Replaced the token-classification head of %s with a new one for %d tags.",
            name_or_path,
            len(config.id2label),
        )
        model._init_weights(model.classifier)
    return model


def load_checkpoint(name_or_path: str, *, allow_pickle: bool = False) -> PreTrainedModel:
    """Load a fine-tuned token classifier as it is, head and labels included.

    Raises:
        FileNotFoundError: when ``name_or_path`` is a local path that does not
            exist, or a folder without ``config.json``.
        EncoderLoadError: when the weights are missing, pickled without
            ``allow_pickle``, unreadable, or do not fit ``config.json``.
    """
    path = Path(name_or_path)
    looks_local = path.exists() or path.is_absolute() or name_or_path.startswith(".")
    if looks_local and not path.is_dir():
        raise FileNotFoundError(
            f"Checkpoint folder not found: {name_or_path}. Give a folder with "
            "config.json, model.safetensors and the tokenizer files, or a Hugging "
            "Face model name."
        )
    if looks_local and not (path / CONFIG_NAME).is_file():
        raise FileNotFoundError(
            f"{path} has no {CONFIG_NAME}. A token-classification checkpoint folder "
            f"needs {CONFIG_NAME} (with id2label), {WEIGHTS_NAME} and the tokenizer files."
        )
    return _from_pretrained(name_or_path, allow_pickle)


def _from_pretrained(name_or_path: str, allow_pickle: bool, **kwargs: Any):
    try:
        return AutoModelForTokenClassification.from_pretrained(
            name_or_path, use_safetensors=None if allow_pickle else True, **kwargs
        )
    except (OSError, ValueError, RuntimeError, SafetensorError) as error:
        raise EncoderLoadError(
            f"Could not load the encoder weights from {name_or_path!r}: {error}\n"
            + _weights_advice(Path(name_or_path), allow_pickle)
        ) from error


def _weights_advice(path: Path, allow_pickle: bool) -> str:
    """Say what to do about weights that did not load, from the files the folder has."""
    if (path / WEIGHTS_NAME).is_file():
        return (
            f"{path / WEIGHTS_NAME} could not be read: it may be truncated or corrupt, "
            "or its head may not match the labels in config.json. Download or save "
            "the checkpoint again."
        )
    if (path / PICKLED_WEIGHTS_NAME).is_file() and not allow_pickle:
        return (
            f"{path} has only {PICKLED_WEIGHTS_NAME}, a pickle that can run code when "
            "loaded, and biobert_ner reads model.safetensors only. If you trust its "
            "source, set allow_pickle = true in [components.<name>.model] (with "
            "import-hf: --allow-pickle); otherwise convert it to safetensors first."
        )
    advice = (
        "Give a local folder with config.json, model.safetensors and the tokenizer "
        "files, or a Hugging Face model name on a machine that can reach the hub."
    )
    if not allow_pickle:
        advice += (
            " If the checkpoint has only pytorch_model.bin and you trust its source, "
            "set allow_pickle = true in [components.<name>.model] (with import-hf: "
            "--allow-pickle)."
        )
    return advice


def save_folder(
    path: Path, model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase
) -> None:
    """Write the model as safetensors plus its config and tokenizer files."""
    path.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(path, safe_serialization=True)
    tokenizer.save_pretrained(path)
    for weights in path.glob("*.safetensors"):
        use_umask_mode(weights)


def use_umask_mode(path: Path) -> None:
    """Give a file written by safetensors the mode the umask gives other new files.

    safetensors (0.8) creates its files readable by the owner only, so a
    pipeline folder shared with other users would not load for them.
    """
    umask = os.umask(0)
    os.umask(umask)
    path.chmod(0o666 & ~umask)


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
