"""The ``biobert_ner`` component: BERT token classification as spaCy entities.

``predict`` turns Docs into per-token tag scores (no side effects);
``set_annotations`` decodes them into ``doc.ents`` and keeps the encoder's
hidden states in ``doc.tensor``.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
from pathlib import Path
from typing import Callable, Dict, Iterable, List, Optional

import numpy
import srsly
import torch
from safetensors import SafetensorError
from safetensors.numpy import load_file, save_file
from spacy.language import Language
from spacy.pipeline import TrainablePipe
from spacy.scorer import get_ner_prf
from spacy.tokens import Doc, Span
from spacy.training import Example, validate_get_examples
from spacy.util import ensure_path
from spacy.vocab import Vocab
from thinc.api import Model, Optimizer
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from ..crf import TransitionScores, crf_loss
from ..models.encoder import load_folder, save_folder, use_umask_mode
from ..models.token_classifier import (
    HEAD_PREFIX,
    TokenScores,
    attach_encoder,
    forget_inference_engine,
    get_hf_model,
)
from ..tags import (
    OUTSIDE,
    TokenSpan,
    best_valid_tags,
    biluo_to_bio,
    drop_orphan_inside,
    make_tags,
    split_tag,
    tags_to_spans,
)

logger = logging.getLogger(__name__)

ENCODER_FOLDER = "encoder"
CFG_NAME = "cfg"
CRF_NAME = "crf.safetensors"
# The CRF's transition scores start at zero and learn at this multiple of the
# encoder's learning rate.  At the rates that fine-tune BERT (1e-5 to 1e-4),
# Adam moves a weight by about the rate per step, too little in a short run.
CRF_LEARN_RATE_SCALE = 100.0
# "argmax": each token's most probable tag, decoded with the conlleval rule.
# "strict": each token's most probable tag, an I-X that follows neither B-X nor
#   I-X read as O (seqeval's strict IOB2 count).
# "viterbi": the most probable sequence in which every I-X follows B-X or I-X.
DECODINGS = ("argmax", "strict", "viterbi")

DEFAULT_MODEL_CONFIG = {
    "@architectures": "spacy_biobert.TokenClassifier.v1",
    "encoder": "dmis-lab/biobert-base-cased-v1.2",
    "window": 128,
    "stride": 96,
}


@Language.factory(
    "biobert_ner",
    assigns=["doc.ents", "token.ent_iob", "token.ent_type", "doc.tensor"],
    default_config={
        "model": DEFAULT_MODEL_CONFIG,
        "store_hidden": True,
        "decoding": "viterbi",
        "label_smoothing": 0.0,
        "max_grad_norm": 1.0,
        "head_learn_rate_factor": 1.0,
        "crf": False,
        "scorer": {"@scorers": "spacy_biobert.entity_scorer.v1"},
    },
    default_score_weights={
        "ents_f": 1.0,
        "ents_p": 0.0,
        "ents_r": 0.0,
        "ents_per_type": None,
    },
)
def make_biobert_ner(
    nlp: Language,
    name: str,
    model: Model,
    store_hidden: bool,
    decoding: str,
    label_smoothing: float,
    max_grad_norm: float,
    head_learn_rate_factor: float,
    crf: bool,
    scorer: Optional[Callable],
) -> "BiobertNer":
    return BiobertNer(
        nlp.vocab,
        model,
        name,
        store_hidden=store_hidden,
        decoding=decoding,
        label_smoothing=label_smoothing,
        max_grad_norm=max_grad_norm,
        head_learn_rate_factor=head_learn_rate_factor,
        crf=crf,
        scorer=scorer,
    )


def score_entities(examples: Iterable[Example], **kwargs) -> Dict[str, object]:
    """Score ``doc.ents`` as exact (start, end, label) matches: ents_p/r/f and ents_per_type."""
    return get_ner_prf(examples, **kwargs)


def make_entity_scorer() -> Callable:
    return score_entities


class BiobertNer(TrainablePipe):
    """Tag entities with a BERT encoder and a token-classification head.

    Each spaCy token takes the tag predicted at its first word piece.  Tags are
    BIO with types (``B-Disease``), collected from the training data at
    ``initialize``.  ``decoding`` is ``"viterbi"`` (the most probable
    well-formed BIO sequence, the default), ``"argmax"`` (each token's most
    probable tag, decoded with the conlleval rule of ``tags_to_spans``) or
    ``"strict"`` (the same tags, an ``I-`` tag that continues no entity read as ``O``).

    ``max_grad_norm`` above 0 rescales the gradient of all the encoder's and
    head's weights together so that its norm is at most that value, before the
    optimizer's step (as ``torch.nn.utils.clip_grad_norm_`` and the Hugging
    Face ``Trainer`` do).  The optimizer's own ``grad_clip`` clips each weight
    tensor separately instead.  ``head_learn_rate_factor`` multiplies the
    learning rate of the head, which starts from random weights while the
    encoder starts pretrained.

    ``crf = true`` trains a linear-chain CRF on top of the head
    (``spacy_biobert.crf``): the loss is the negative log-likelihood of the
    whole gold tag sequence instead of each token's cross-entropy, and the
    learned transition scores join the head's logits in Viterbi decoding.
    """

    def __init__(
        self,
        vocab: Vocab,
        model: Model,
        name: str = "biobert_ner",
        *,
        store_hidden: bool = True,
        decoding: str = "viterbi",
        label_smoothing: float = 0.0,
        max_grad_norm: float = 1.0,
        head_learn_rate_factor: float = 1.0,
        crf: bool = False,
        scorer: Optional[Callable] = score_entities,
    ):
        if decoding not in DECODINGS:
            raise ValueError(
                f"Invalid decoding {decoding!r} for {name!r}: expected one of "
                f"{', '.join(DECODINGS)}."
            )
        if not 0.0 <= label_smoothing < 1.0:
            raise ValueError(
                f"Invalid label_smoothing {label_smoothing!r} for {name!r}: expected "
                "a number from 0 (off) up to, not including, 1."
            )
        if crf and decoding != "viterbi":
            raise ValueError(
                f"Invalid settings for {name!r}: decoding = {decoding!r} with crf = true. "
                "A CRF-trained head's scores are not per-token probabilities, so "
                "decoded token by token they tag far worse: set decoding = 'viterbi' "
                "(or crf = false)."
            )
        if crf and label_smoothing > 0.0:
            raise ValueError(
                f"Invalid settings for {name!r}: label_smoothing = {label_smoothing!r} "
                "applies to the per-token loss, which crf = true replaces. Set "
                "label_smoothing = 0.0 or crf = false."
            )
        if not max_grad_norm >= 0.0:
            raise ValueError(
                f"Invalid max_grad_norm {max_grad_norm!r} for {name!r}: expected 0 "
                "(leave clipping to the optimizer) or a positive number."
            )
        if not head_learn_rate_factor > 0.0:
            raise ValueError(
                f"Invalid head_learn_rate_factor {head_learn_rate_factor!r} for "
                f"{name!r}: expected a positive number (1 trains the head at the "
                "optimizer's learning rate)."
            )
        self.vocab = vocab
        self.model = model
        self.name = name
        self.scorer = scorer
        self.cfg = {"labels": []}
        self.store_hidden = store_hidden
        self.decoding = decoding
        self.label_smoothing = label_smoothing
        self.max_grad_norm = max_grad_norm
        self.head_learn_rate_factor = head_learn_rate_factor
        self.crf = crf
        # With crf: the learned scores, and the gradient gathered since the last step.
        self.transitions: Optional[TransitionScores] = None
        self._d_transitions: Optional[TransitionScores] = None
        self.model.attrs["output_hidden"] = store_hidden

    @property
    def labels(self) -> List[str]:
        """The entity labels, e.g. ``["Chemical", "Disease"]``."""
        return list(self.cfg["labels"])

    @property
    def tags(self) -> List[str]:
        """The BIO tags, in the order of the head's rows."""
        return make_tags(self.cfg["labels"])

    def add_label(self, label: str) -> int:
        if self.model.layers:
            raise ValueError(
                f"Cannot add the label {label!r}: biobert_ner's head is already built "
                f"for {self.labels}. Give all labels before nlp.initialize()."
            )
        if label in self.cfg["labels"]:
            return 0
        if not label.strip() or label != label.strip() or label == OUTSIDE:
            raise ValueError(
                f"Invalid entity label {label!r}: expected a non-empty type name "
                "without surrounding spaces, other than 'O'."
            )
        self.cfg["labels"] = sorted(self.cfg["labels"] + [label])
        return 1

    def initialize(
        self,
        get_examples: Callable[[], Iterable[Example]],
        *,
        nlp: Optional[Language] = None,
        labels: Optional[List[str]] = None,
    ) -> None:
        """Collect the entity labels and load the pretrained encoder with a new head.

        Args:
            labels: the entity labels; by default every label of the gold
                entities in ``get_examples()`` and every label added with ``add_label``.
        """
        validate_get_examples(get_examples, "BiobertNer.initialize")
        if labels is None:
            found = set(self.cfg["labels"])  # labels given earlier with add_label
            n_examples = 0
            for example in get_examples():
                n_examples += 1
                found.update(ent.label_ for ent in example.reference.ents)
            if n_examples == 0:
                raise ValueError(
                    "biobert_ner got no training examples at initialize. Check that "
                    "paths.train names a non-empty corpus file."
                )
            labels = sorted(found)
        if not labels:
            raise ValueError(
                "biobert_ner found no entities in the training data, so it has no "
                "labels to learn. Check the corpus (for untyped B/I/O files, set "
                "entity_type in the reader) or give [initialize.components.<name>.labels]."
            )
        self.cfg["labels"] = sorted(labels)
        self.model.attrs["tags"] = self.tags
        self.model.initialize()
        self._reset_transitions()

    def _reset_transitions(self) -> None:
        self.transitions = TransitionScores.zeros(len(self.tags)) if self.crf else None
        self._d_transitions = None

    def attach_pretrained(
        self, hf_model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase
    ) -> None:
        """Use a token classifier that is already trained, instead of ``initialize``.

        The labels must have been added with ``add_label``, and the head's
        ``id2label`` must list ``self.tags`` in order.
        """
        head_tags = [hf_model.config.id2label[i] for i in range(hf_model.config.num_labels)]
        if head_tags != self.tags:
            raise ValueError(
                f"The head's labels {head_tags} are not {self.name!r}'s tags "
                f"{self.tags}; add the labels and order the head's rows to match."
            )
        self.model.attrs["tags"] = self.tags
        attach_encoder(self.model, hf_model, tokenizer)
        self._reset_transitions()

    def predict(self, docs: Iterable[Doc]) -> TokenScores:
        return self.model.predict(list(docs))

    def set_annotations(self, docs: Iterable[Doc], scores: TokenScores) -> None:
        for i, doc in enumerate(docs):
            logits = self.model.ops.to_numpy(scores.logits[i])
            # Each sentence was read on its own, so no entity may run into the next one.
            segments = scores.sentences[i] if scores.sentences else [(0, len(doc))]
            entities = []
            for start, end in segments:
                for first, last, label in self._decode(
                    logits[start:end], scores.has_piece[i][start:end]
                ):
                    entities.append(Span(doc, start + first, start + last, label=label))
            doc.ents = entities
            if scores.hidden is not None:
                doc.tensor = self.model.ops.to_numpy(scores.hidden[i])

    def _decode(self, logits: numpy.ndarray, has_piece: numpy.ndarray) -> List[TokenSpan]:
        tags = self.tags
        if self.decoding == "viterbi" and self.transitions is not None:
            token_tags = best_valid_tags(logits, tags, has_piece, self.transitions.as_tuple())
        elif self.decoding == "viterbi":
            log_probs = logits - logits.max(axis=1, keepdims=True)
            log_probs -= numpy.log(numpy.exp(log_probs).sum(axis=1, keepdims=True))
            token_tags = best_valid_tags(log_probs, tags, has_piece)
        else:
            token_tags = [
                tags[tag_id] if piece else None
                for tag_id, piece in zip(logits.argmax(axis=1).tolist(), has_piece)
            ]
            if self.decoding == "strict":
                token_tags = drop_orphan_inside(token_tags)
        return tags_to_spans(token_tags)

    def update(
        self,
        examples: Iterable[Example],
        *,
        drop: float = 0.0,
        sgd: Optional[Optimizer] = None,
        losses: Optional[Dict[str, float]] = None,
    ) -> Dict[str, float]:
        """Learn from a batch of examples.

        ``drop`` is not used: the encoder applies its own dropout
        (``hidden_dropout_prob`` in its config) while training.
        """
        if losses is None:
            losses = {}
        losses.setdefault(self.name, 0.0)
        examples = list(examples)
        validate_get_examples(lambda: examples, "BiobertNer.update")
        if not any(len(eg.predicted) for eg in examples):
            return losses
        scores, backprop = self.model.begin_update([eg.predicted for eg in examples])
        loss, d_logits, d_transitions = self._loss_and_gradients(examples, scores)
        backprop(d_logits)
        if d_transitions is not None:
            if self._d_transitions is None:
                self._d_transitions = TransitionScores.zeros(len(self.tags))
            for total, part in zip(self._d_transitions.as_tuple(), d_transitions.as_tuple()):
                total += part
        if sgd is not None:
            self.finish_update(sgd)
        losses[self.name] += loss
        return losses

    def finish_update(self, sgd: Optimizer) -> None:
        """Clip the gradient to ``max_grad_norm`` (when set), then let the optimizer step."""
        if self.max_grad_norm > 0.0 and self.model.layers:
            parameters = [p for p in get_hf_model(self.model).parameters() if p.grad is not None]
            torch.nn.utils.clip_grad_norm_(parameters, self.max_grad_norm)
        if self._d_transitions is not None:
            self._step_transitions(sgd)
        if self.head_learn_rate_factor != 1.0:
            sgd = _HeadScaledOptimizer(sgd, self.head_learn_rate_factor)
        super().finish_update(sgd)
        forget_inference_engine(self.model)

    def _step_transitions(self, sgd: Optimizer) -> None:
        # The transition scores stay out of max_grad_norm: clipped together
        # with the encoder's millions of weights they would barely move.  The
        # optimizer's per-tensor grad_clip and weight decay still apply, and
        # with use_averages they are not averaged (spaCy averages thinc
        # parameters only), so the CPU configs set use_averages = false.
        current, gradients = self.transitions.arrays(), self._d_transitions.arrays()
        updated = {}
        for name, weights in current.items():
            updated[name], _ = sgd(
                (self.model.id, f"crf.{name}"),
                weights.copy(),
                gradients[name].copy(),
                lr_scale=CRF_LEARN_RATE_SCALE,
            )
        self.transitions = TransitionScores(**updated)
        self._d_transitions = None

    def get_loss(self, examples: Iterable[Example], scores: TokenScores):
        """Return the loss per gold-tagged token and its gradient per Doc.

        The loss is the cross-entropy of each token's tag, or with ``crf``
        the CRF's negative log-likelihood of each sentence's tags (see
        ``_crf_loss``).  Tokens whose gold tag is unknown (tokenizations
        disagree) or that have no word piece add nothing to the
        cross-entropy.  With ``label_smoothing`` e, the target puts 1 - e on
        the gold tag and spreads e evenly over all tags.
        """
        loss, d_logits, _ = self._loss_and_gradients(examples, scores)
        return loss, d_logits

    def _loss_and_gradients(self, examples: Iterable[Example], scores: TokenScores):
        """Return the loss, its gradient per Doc and, with ``crf``, its gradient for the transition scores."""
        ops = self.model.ops
        tag_index = {tag: i for i, tag in enumerate(self.tags)}
        golds, masks = [], []
        for example, has_piece in zip(examples, scores.has_piece):
            gold_ids = numpy.zeros(len(example.predicted), dtype="int64")
            mask = numpy.array(has_piece, dtype="float32")
            for i, biluo in enumerate(example.get_aligned_ner()):
                tag = biluo_to_bio(biluo)
                if tag is None:
                    mask[i] = 0.0
                elif tag in tag_index:
                    gold_ids[i] = tag_index[tag]
                else:
                    raise ValueError(
                        f"Unknown entity label {split_tag(tag)[1]!r} in the gold data "
                        f"of {self.name!r}, whose labels are {self.labels}. Add it to "
                        "[initialize.components.<name>.labels] or to the training data."
                    )
            golds.append(gold_ids)
            masks.append(mask)
        n_scored = max(float(sum(mask.sum() for mask in masks)), 1.0)
        if self.transitions is not None:
            return self._crf_loss(scores, golds, masks, n_scored)
        smoothing = self.label_smoothing
        loss = 0.0
        d_logits = []
        for logits, gold_ids, mask in zip(scores.logits, golds, masks):
            shifted = logits - logits.max(axis=1, keepdims=True)
            log_probs = shifted - ops.xp.log(ops.xp.exp(shifted).sum(axis=1, keepdims=True))
            probs = ops.xp.exp(log_probs)
            target = ops.xp.full(probs.shape, smoothing / probs.shape[1], dtype=probs.dtype)
            rows = ops.xp.arange(len(gold_ids))
            target[rows, ops.asarray(gold_ids)] += 1.0 - smoothing
            mask_xp = ops.asarray(mask)
            loss -= float(((target * log_probs).sum(axis=1) * mask_xp).sum())
            d_logits.append((probs - target) * (mask_xp[:, None] / n_scored))
        return loss / n_scored, d_logits, None

    def _crf_loss(self, scores: TokenScores, golds, masks, n_scored: float):
        """Return the CRF's negative log-likelihood per sequence, summed and divided by the gold-tagged tokens.

        Tokens whose gold tag is unknown count as any tag; tokens without
        word pieces split the sequence, as in decoding.  Label smoothing does
        not apply.
        """
        ops = self.model.ops
        d_transitions = TransitionScores.zeros(len(self.tags))
        loss = 0.0
        d_logits = []
        for i, (gold_ids, mask) in enumerate(zip(golds, masks)):
            logits = ops.to_numpy(scores.logits[i])
            gold_ids = numpy.where(mask > 0, gold_ids, -1)
            segments = scores.sentences[i] if scores.sentences else [(0, len(gold_ids))]
            d_doc = numpy.zeros(logits.shape, dtype="float32")
            for start, end in segments:
                segment_loss, d_segment, d_learned = crf_loss(
                    logits[start:end],
                    gold_ids[start:end],
                    scores.has_piece[i][start:end],
                    self.tags,
                    self.transitions,
                )
                loss += segment_loss
                d_doc[start:end] = d_segment
                for total, part in zip(d_transitions.as_tuple(), d_learned.as_tuple()):
                    total += part / n_scored
            d_logits.append(ops.asarray(d_doc / n_scored))
        return loss / n_scored, d_logits, d_transitions

    # Serialization: the encoder is written as safetensors with its config and
    # tokenizer files; thinc's own byte format is not used, because it pickles
    # torch weights.

    def to_disk(self, path, *, exclude=tuple()) -> None:
        path = ensure_path(path)
        path.mkdir(parents=True, exist_ok=True)
        srsly.write_json(path / CFG_NAME, self.cfg)
        hf_model = get_hf_model(self.model)
        save_folder(path / ENCODER_FOLDER, hf_model, self.model.attrs["tokenizer"])
        if self.transitions is not None:
            save_file(self.transitions.arrays(), str(path / CRF_NAME))
            use_umask_mode(path / CRF_NAME)

    def from_disk(self, path, *, exclude=tuple()) -> "BiobertNer":
        path = ensure_path(path)
        cfg_path = path / CFG_NAME
        if not cfg_path.is_file():
            raise FileNotFoundError(
                f"Missing {cfg_path}: this folder was not written by biobert_ner's "
                "to_disk. Load the whole pipeline folder with spacy.load()."
            )
        self.cfg.update(srsly.read_json(cfg_path))
        self.model.attrs["tags"] = self.tags
        hf_model, tokenizer = load_folder(path / ENCODER_FOLDER, self.tags)
        attach_encoder(self.model, hf_model, tokenizer)
        self.transitions = self._load_transitions(path / CRF_NAME)
        self._d_transitions = None
        return self

    def _load_transitions(self, path: Path) -> Optional[TransitionScores]:
        if not self.crf:
            if path.is_file():
                logger.warning(
                    "%r was saved with CRF transition scores, but is loaded with "
                    "crf = false, so they are not used and its entities can differ. "
                    "Load it without overriding crf to use them.",
                    self.name,
                )
            return None
        if not path.is_file():
            raise FileNotFoundError(
                f"{self.name!r} is set to crf = true, but the saved component has no "
                f"CRF scores ({CRF_NAME} is missing): it was trained with crf = false "
                "or before the option existed. Load it with crf = false, or train it "
                "again with crf = true."
            )
        n_tags = len(self.tags)
        expected = {"opening": (n_tags,), "transition": (n_tags, n_tags), "closing": (n_tags,)}
        try:
            arrays = load_file(str(path))
        except (OSError, SafetensorError) as error:
            raise ValueError(
                f"Could not read the CRF scores in {path}: {error}\n"
                "The file may be truncated or corrupt; save the pipeline again."
            ) from error
        shapes = {name: tuple(array.shape) for name, array in arrays.items()}
        if shapes != expected:
            raise ValueError(
                f"The CRF scores in {path} have the shapes {shapes}, but {self.name!r} "
                f"with {n_tags} tags expects {expected}. The file belongs to another pipeline."
            )
        return TransitionScores(**{name: arrays[name].astype("float32") for name in expected})

    def to_bytes(self, *, exclude=tuple()) -> bytes:
        with tempfile.TemporaryDirectory() as tmp:
            self.to_disk(tmp)
            files = {
                str(file.relative_to(tmp)): file.read_bytes()
                for file in Path(tmp).rglob("*")
                if file.is_file()
            }
        return srsly.msgpack_dumps(files)

    def from_bytes(self, bytes_data: bytes, *, exclude=tuple()) -> "BiobertNer":
        files = srsly.msgpack_loads(bytes_data)
        tmp = Path(tempfile.mkdtemp())
        try:
            for name, data in files.items():
                target = tmp / name
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(data)
            self.from_disk(tmp)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        return self


class _HeadScaledOptimizer:
    """Pass each update to ``optimizer``, with the head's learning rate multiplied by ``factor``.

    thinc's torch shim calls the optimizer once per weight tensor, keyed by the
    tensor's name in the torch module, so the head's tensors are found by name.
    """

    def __init__(self, optimizer: Optimizer, factor: float):
        self.optimizer = optimizer
        self.factor = factor

    def __call__(self, key, weights, gradient, *, lr_scale: float = 1.0):
        if key[1].startswith(HEAD_PREFIX):
            lr_scale *= self.factor
        return self.optimizer(key, weights, gradient, lr_scale=lr_scale)

