"""The thinc model behind biobert_ner: a Hugging Face encoder with a token-classification head.

Input: spaCy Docs.  Output: ``TokenScores``, one row of logits per spaCy token,
read at the token's first word piece, and optionally the encoder's last hidden
state at the same place.  The torch module is a plain
``AutoModelForTokenClassification``; thinc's ``PyTorchWrapper_v2`` runs it,
so mixed precision and gradient scaling come from thinc's ``PyTorchShim``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import numpy
import torch
from spacy.attrs import IDX, LENGTH
from spacy.tokens import Doc
from thinc.api import (
    ArgsKwargs,
    Model,
    NumpyOps,
    PyTorchGradScaler,
    PyTorchWrapper_v2,
    torch2xp,
    xp2torch,
)
from thinc.types import Floats2d
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from ..sentences import sentence_ranges
from .encoder import (
    check_tokenizer_fits,
    load_encoder_config,
    load_pretrained,
    load_tokenizer,
)
from .inference import BACKENDS, QUANTIZATIONS, HeadOutputs, build_engine
from .windows import EncodedDoc, WindowBatch, plan_windows

# BERT-style encoders need room for [CLS], [SEP] and a few word pieces.
MIN_WINDOW = 8
# "document": windows run across the whole Doc.  "sentence": no window crosses
# a sentence boundary, so each sentence is read on its own.
CONTEXTS = ("document", "sentence")
# The name prefix of the head's weights in the optimizer calls of thinc's torch
# shim: the attribute of HeadOutputs, then the attribute of the Hugging Face model.
HEAD_PREFIX = "hf_model.classifier."
# Encoders whose position embeddings follow the position_ids they are given,
# so that several windows can share one row.  RoBERTa offsets its positions
# by the padding index and DistilBERT takes no position_ids: they run one
# window per row.
PACKABLE_MODEL_TYPES = ("bert",)


@dataclass
class TokenScores:
    """The model's output for a list of Docs, one entry per Doc.

    logits: per Doc, shape (n_tokens, n_tags).
    has_piece: per Doc, shape (n_tokens,); False where the tokenizer produced no
        word piece for the token (whitespace, control characters), so its logits
        are zeros and carry no prediction.
    hidden: per Doc, shape (n_tokens, hidden_size): the encoder's last hidden
        state at each token's first word piece, zeros for tokens without a word
        piece; None during training or when the component keeps no hidden states.
    sentences: per Doc, the token ranges of the sentences that were read one
        at a time (``context = "sentence"``); None with ``context = "document"``.
    """

    logits: List[Floats2d]
    has_piece: List[numpy.ndarray]
    hidden: Optional[List[Floats2d]]
    sentences: Optional[List[List[Tuple[int, int]]]] = None


def build_token_classifier(
    encoder: Optional[str],
    window: int = 128,
    stride: int = 96,
    windows_per_batch: int = 64,
    tokenizer_config: Dict[str, Any] = {},
    mixed_precision: bool = False,
    grad_scaler_config: Dict[str, Any] = {},
    allow_pickle: bool = False,
    context: str = "document",
    backend: str = "torch",
    quantize: Optional[str] = None,
    pack: bool = True,
) -> Model[List[Doc], TokenScores]:
    """Build the encoder + head model; the weights load at ``initialize`` or ``from_disk``.

    Args:
        encoder: a Hugging Face model name or a local folder with config.json,
            tokenizer files and model.safetensors.
        window: the maximum window length in word pieces, [CLS] and [SEP]
            included; at most the encoder's ``max_position_embeddings``.
        stride: how many word pieces a window starts after the previous one;
            ``window - 2 - stride`` pieces overlap.
        windows_per_batch: the maximum number of rows per encoder call; a
            row contains one window, or several with ``pack``.
        tokenizer_config: keyword arguments for ``AutoTokenizer.from_pretrained``,
            e.g. ``{"do_lower_case": false}`` for a cased checkpoint that ships
            no tokenizer_config.json.
        mixed_precision: run the encoder under CUDA autocast (GPU only).
        grad_scaler_config: keyword arguments for thinc's ``PyTorchGradScaler``.
        allow_pickle: also read pickled ``pytorch_model.bin`` weights at
            ``initialize``; only for checkpoints from a trusted source.
        context: ``"document"``, windows across the whole Doc, or
            ``"sentence"``, windows that never cross a sentence boundary
            (``doc.sents`` when a component has set them, otherwise the rule
            of ``spacy_biobert.sentences``).  The same setting applies in
            training and prediction, so a model trained on single sentences
            reads raw documents one sentence at a time.
        backend: what runs the model for prediction: ``"torch"``, or
            ``"onnxruntime"`` (CPU only; needs the ``onnx`` extra).  Training
            always runs torch.
        quantize: ``None``, or ``"int8"`` for dynamic int8 quantization of the
            linear layers at prediction time (CPU only), with either backend.
        pack: put several short windows (sentences with ``context =
            "sentence"``, short documents) into one encoder row of ``window``
            pieces, kept apart by the attention mask, so that little of the
            encoder's work goes to padding.  The scores are the same as with
            one window per row.  Only for BERT encoders; others ignore it.

    Raises:
        ValueError: listing every invalid setting, before anything loads.
    """
    problems = []
    if not encoder:
        problems.append(
            f"encoder = {encoder!r}: give a Hugging Face model name or a local folder "
            "(with spacy train: --paths.encoder NAME_OR_FOLDER)"
        )
    if window < MIN_WINDOW:
        problems.append(f"window = {window}: expected at least {MIN_WINDOW} word pieces")
    elif not 1 <= stride <= window - 2:
        problems.append(
            f"stride = {stride}: expected 1 to window - 2 = {window - 2} word pieces, "
            "so that consecutive windows overlap or touch"
        )
    if windows_per_batch < 1:
        problems.append(f"windows_per_batch = {windows_per_batch}: expected at least 1")
    if context not in CONTEXTS:
        problems.append(f"context = {context!r}: expected one of {', '.join(CONTEXTS)}")
    if backend not in BACKENDS:
        problems.append(f"backend = {backend!r}: expected one of {', '.join(BACKENDS)}")
    if quantize not in QUANTIZATIONS:
        problems.append(f"quantize = {quantize!r}: expected null (no quantization) or 'int8'")
    if problems:
        raise ValueError(
            "Invalid settings for spacy_biobert.TokenClassifier.v1:\n- "
            + "\n- ".join(problems)
        )
    return Model(
        "biobert_token_classifier",
        forward,
        init=init,
        attrs={
            "encoder": encoder,
            "window": window,
            "stride": stride,
            "windows_per_batch": windows_per_batch,
            "tokenizer_config": dict(tokenizer_config),
            "mixed_precision": mixed_precision,
            "grad_scaler_config": dict(grad_scaler_config),
            "allow_pickle": allow_pickle,
            "context": context,
            "backend": backend,
            "quantize": quantize,
            "pack": pack,
            # Whether rows are packed: pack, and an encoder that allows it.
            "packed": False,
            "tags": [],
            "output_hidden": True,
            "tokenizer": None,
            # (process id, engine) of the prediction engine built from the
            # current weights; see forget_inference_engine.
            "engine": None,
        },
    )


def init(model: Model, X: Any = None, Y: Any = None) -> None:
    """Load the pretrained encoder named in the config, with a new head for ``attrs["tags"]``."""
    tags = model.attrs["tags"]
    if not tags:
        raise ValueError(
            "The token classifier has no tags. biobert_ner collects them from the "
            "training data at initialize; check that the corpus has entities."
        )
    encoder = model.attrs["encoder"]
    config = load_encoder_config(encoder, tags)
    check_window(model, config.max_position_embeddings, source=encoder)
    tokenizer = load_tokenizer(encoder, model.attrs["tokenizer_config"])
    hf_model = load_pretrained(encoder, config, allow_pickle=model.attrs["allow_pickle"])
    attach_encoder(model, hf_model, tokenizer)


def check_window(model: Model, max_positions: int, *, source: str) -> None:
    window = model.attrs["window"]
    if window > max_positions:
        raise ValueError(
            f"window = {window} word pieces, but the encoder {source!r} has only "
            f"{max_positions} positions. Set [components.<name>.model] window to "
            f"{max_positions} or less."
        )


def attach_encoder(
    model: Model, hf_model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase
) -> None:
    """Put a loaded Hugging Face model and tokenizer inside the thinc model."""
    check_window(model, hf_model.config.max_position_embeddings, source="saved encoder")
    check_tokenizer_fits(hf_model, tokenizer, model.attrs["encoder"])
    wrapper = PyTorchWrapper_v2(
        HeadOutputs(hf_model),
        convert_inputs=_convert_inputs,
        convert_outputs=_convert_outputs,
        mixed_precision=model.attrs["mixed_precision"],
        grad_scaler=PyTorchGradScaler(
            **{"enabled": model.attrs["mixed_precision"], **model.attrs["grad_scaler_config"]}
        ),
    )
    model._layers = [wrapper]
    model.attrs["tokenizer"] = tokenizer
    model.attrs["packed"] = (
        model.attrs["pack"] and hf_model.config.model_type in PACKABLE_MODEL_TYPES
    )
    forget_inference_engine(model)


def forget_inference_engine(model: Model) -> None:
    """Drop the prediction engine; call this whenever the weights change."""
    model.attrs["engine"] = None


def _inference_engine(model: Model):
    """Return the engine for prediction, built in this process from the current weights."""
    backend, quantize = model.attrs["backend"], model.attrs["quantize"]
    if backend == "torch" and quantize is None:
        return None
    if not isinstance(model.ops, NumpyOps):
        raise ValueError(
            f"backend = {backend!r} with quantize = {quantize!r} runs on CPU only, but "
            f"this pipeline runs on {type(model.ops).__name__}. On a GPU, set "
            "[components.<name>.model] backend = 'torch' and quantize = null "
            "(mixed_precision = true for half precision)."
        )
    pid = os.getpid()
    cached = model.attrs["engine"]
    if cached is None or cached[0] != pid:
        engine = build_engine(get_hf_model(model), backend, quantize, model.attrs["packed"])
        cached = (pid, engine)
        model.attrs["engine"] = cached
    return cached[1]


def get_hf_model(model: Model) -> PreTrainedModel:
    """Return the Hugging Face model inside an initialised token classifier."""
    if not model.layers:
        raise ValueError(
            "The token classifier has no weights yet: call nlp.initialize() to load "
            "the pretrained encoder, or load a trained pipeline with spacy.load()."
        )
    return model.layers[0].shims[0]._model.hf_model


def encode_docs(
    tokenizer: PreTrainedTokenizerBase, docs: Sequence[Doc]
) -> List[EncodedDoc]:
    """Tokenize each Doc's tokens into word pieces and find each token's first piece."""
    words = [token_texts(doc) for doc in docs]
    non_empty = [i for i, doc_words in enumerate(words) if doc_words]
    encoded = [
        EncodedDoc(numpy.zeros(0, dtype="int64"), numpy.full(len(w), -1, dtype="int64"))
        for w in words
    ]
    if not non_empty:
        return encoded
    batch = tokenizer(
        [words[i] for i in non_empty],
        is_split_into_words=True,
        add_special_tokens=False,
        return_attention_mask=False,
        return_token_type_ids=False,
        verbose=False,
    )
    for row, i in enumerate(non_empty):
        piece_ids = numpy.asarray(batch["input_ids"][row], dtype="int64")
        word_ids = numpy.asarray(
            [-1 if w is None else w for w in batch.word_ids(row)], dtype="int64"
        )
        first_piece = numpy.full(len(words[i]), -1, dtype="int64")
        valid = numpy.nonzero(word_ids >= 0)[0]
        token_ids, first = numpy.unique(word_ids[valid], return_index=True)
        first_piece[token_ids] = valid[first]
        encoded[i] = EncodedDoc(piece_ids, first_piece)
    return encoded


def token_texts(doc: Doc) -> List[str]:
    """Return the text of each token, read from offsets rather than from Token objects, which is faster."""
    text = doc.text
    offsets = doc.to_array([IDX, LENGTH]).tolist()
    return [text[start : start + length] for start, length in offsets]


def sentence_segments(
    sentences: List[Tuple[int, int]], encoded: EncodedDoc
) -> List[Tuple[int, int]]:
    """Return the word-piece range of each sentence, given as token ranges, covering every piece."""
    n_pieces = len(encoded.piece_ids)
    starts = []
    for start, end in sentences:
        pieces = encoded.first_piece[start:end]
        pieces = pieces[pieces >= 0]
        if len(pieces):
            starts.append(int(pieces[0]))
    if not starts:
        return [(0, n_pieces)]
    starts[0] = 0
    return list(zip(starts, starts[1:] + [n_pieces]))


def forward(
    model: Model, docs: List[Doc], is_train: bool
) -> Tuple[TokenScores, Callable]:
    get_hf_model(model)  # raises ValueError when no weights are loaded yet
    tokenizer = model.attrs["tokenizer"]
    wrapper = model.layers[0]
    ops = model.ops
    n_tags = len(model.attrs["tags"])
    output_hidden = model.attrs["output_hidden"] and not is_train

    encoded = encode_docs(tokenizer, docs)
    sentences = None
    if model.attrs["context"] == "sentence":
        sentences = [sentence_ranges(doc) for doc in docs]
        for doc_sentences, encoded_doc in zip(sentences, encoded):
            encoded_doc.segments = sentence_segments(doc_sentences, encoded_doc)
    plan = plan_windows(
        encoded,
        window=model.attrs["window"],
        stride=model.attrs["stride"],
        windows_per_batch=model.attrs["windows_per_batch"],
        cls_id=tokenizer.cls_token_id,
        sep_id=tokenizer.sep_token_id,
        pad_id=tokenizer.pad_token_id,
        pack=model.attrs["packed"],
    )
    n_total = int(sum(plan.n_tokens))
    logits = ops.alloc2f(n_total, n_tags)
    hidden = None
    if output_hidden:
        hidden_size = get_hf_model(model).config.hidden_size
        hidden = ops.alloc2f(n_total, hidden_size)
    engine = None if is_train else _inference_engine(model)
    batch_backprops = []
    for batch in plan.batches:
        if engine is not None:
            window_logits, window_hidden = engine.run(batch)
            backprop_batch = None
        else:
            with torch.inference_mode(not is_train):
                (window_logits, window_hidden), backprop_batch = wrapper(
                    (batch, output_hidden), is_train
                )
        rows, cols, targets = (ops.asarray(a) for a in (batch.rows, batch.cols, batch.targets))
        _scatter_add(ops, logits, targets, window_logits[rows, cols])
        if output_hidden:
            _scatter_add(ops, hidden, targets, window_hidden[rows, cols])
        if is_train:
            batch_backprops.append((batch, window_logits.shape, backprop_batch))

    counts = ops.asarray(numpy.maximum(plan.counts, 1).astype("float32"))[:, None]
    logits /= counts
    if hidden is not None:
        hidden /= counts
    splits = numpy.cumsum(plan.n_tokens)[:-1]
    has_piece = plan.counts > 0
    scores = TokenScores(
        logits=list(ops.xp.split(logits, splits)),
        has_piece=list(numpy.split(has_piece, splits)),
        hidden=list(ops.xp.split(hidden, splits)) if hidden is not None else None,
        sentences=sentences,
    )

    def backprop(d_logits: List[Floats2d]) -> List[Doc]:
        d_all = ops.xp.concatenate(d_logits) / counts if d_logits else ops.alloc2f(0, n_tags)
        for batch, shape, backprop_batch in batch_backprops:
            rows, cols, targets = (
                ops.asarray(a) for a in (batch.rows, batch.cols, batch.targets)
            )
            d_window = ops.alloc(shape, dtype="float32")
            d_window[rows, cols] = d_all[targets]
            backprop_batch(d_window)
        return []

    return scores, backprop


def _scatter_add(ops, table, indices, values) -> None:
    """Add each row of ``values`` to the row of ``table`` that ``indices`` names, in place."""
    if isinstance(ops, NumpyOps):
        # torch's index_add_ is about 15 times faster than thinc's numpy
        # scatter_add for rows of hidden states, and it works on the same memory.
        torch.from_numpy(table).index_add_(
            0, torch.from_numpy(indices), torch.from_numpy(numpy.ascontiguousarray(values))
        )
    else:
        ops.scatter_add(table, indices, values)


def _convert_inputs(
    model: Model, inputs: Tuple[WindowBatch, bool], is_train: bool
) -> Tuple[ArgsKwargs, Callable]:
    batch, output_hidden = inputs
    device = model.shims[0].device
    kwargs = {
        "input_ids": torch.from_numpy(batch.input_ids).to(device),
        "attention_mask": torch.from_numpy(batch.attention_mask).to(device),
        "output_hidden": output_hidden,
    }
    if batch.position_ids is not None:
        kwargs["position_ids"] = torch.from_numpy(batch.position_ids).to(device)
    return ArgsKwargs(args=(), kwargs=kwargs), lambda d_inputs: []


def _convert_outputs(
    model: Model, inputs_outputs: Tuple[Any, Tuple[torch.Tensor, ...]], is_train: bool
) -> Tuple[Tuple[Floats2d, Optional[Floats2d]], Callable]:
    _, outputs = inputs_outputs
    logits_tensor = outputs[0]
    logits = torch2xp(logits_tensor.float(), ops=model.ops)
    hidden = torch2xp(outputs[1].float(), ops=model.ops) if len(outputs) > 1 else None

    def convert_gradient(d_logits) -> ArgsKwargs:
        d_tensor = xp2torch(d_logits, device=logits_tensor.device).to(logits_tensor.dtype)
        return ArgsKwargs(args=(logits_tensor,), kwargs={"grad_tensors": (d_tensor,)})

    return (logits, hidden), convert_gradient
