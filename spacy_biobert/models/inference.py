"""Prediction engines that run a trained token classifier faster on CPU.

Training always runs the torch model through thinc.  For prediction, the
token classifier can instead hand its padded windows to an engine built from
the same weights:

- ``backend = "onnxruntime"``: the model exported to ONNX and run by ONNX
  Runtime, a little faster than torch on CPU at the same precision.
- ``quantize = "int8"``: dynamic int8 quantization of every linear layer, with
  one scale per output row (per channel).  With MiniLM on NCBI-disease, one
  scale per whole weight matrix lost 1.66 F1 and one per row 0.16, because a
  few rows with large weights set the scale for all the others.

NOTE: dynamic quantization picks the activations' scale per encoder call, so
with ``quantize = "int8"`` an entity can change with the other documents in
the same batch.  On the NCBI-disease test abstracts, ONNX Runtime int8 found
1,013 entities at ``nlp.pipe`` batch size 64 and 1,018 at 256.

An engine is built from the current weights on the first prediction of each
process and dropped whenever the weights change, so it never serves stale
weights.  A worker process forked by ``nlp.pipe(n_process=...)`` builds its
own instead of using the parent's thread pools.
"""

from __future__ import annotations

import copy
import io
import logging
import os
import tempfile
import warnings
from pathlib import Path
from typing import Optional, Tuple

import numpy
import torch
from transformers import PreTrainedModel

from .windows import WindowBatch

BACKENDS = ("torch", "onnxruntime")
QUANTIZATIONS = (None, "int8")
ONNX_INSTALL_HINT = 'pip install "spacy-biobert[onnx]"'
# Opset 17 has LayerNormalization as one operator, which ONNX Runtime 1.17 and later run.
ONNX_OPSET = 17


def _use_one_thread_after_fork() -> None:
    # A child forked after torch ran parallel code inherits OpenMP's thread pool
    # without its threads, so it hangs at the next parallel region.  With one
    # thread per worker no pool is needed, and n_process spreads the work.
    torch.set_num_threads(1)


os.register_at_fork(after_in_child=_use_one_thread_after_fork)


class HeadOutputs(torch.nn.Module):
    """The token classifier as a module that returns plain tensors: logits, then the last hidden state.

    thinc's torch wrapper and both engines run the model through this module,
    so the head's weight names (``hf_model.classifier.*``) are the same everywhere.
    """

    def __init__(self, hf_model: PreTrainedModel):
        super().__init__()
        self.hf_model = hf_model

    def forward(self, input_ids, attention_mask, position_ids=None, output_hidden: bool = True):
        output = self.hf_model(
            input_ids=input_ids,
            attention_mask=attention_mask,
            position_ids=position_ids,
            output_hidden_states=output_hidden,
            return_dict=True,
        )
        if output_hidden:
            return output.logits, output.hidden_states[-1]
        return (output.logits,)


class TorchInt8Engine:
    """A dynamically quantized int8 copy of the model, run by torch."""

    def __init__(self, hf_model: PreTrainedModel):
        from torch.ao.quantization import per_channel_dynamic_qconfig, quantize_dynamic

        module = copy.deepcopy(HeadOutputs(hf_model)).float().eval()
        linear_layers = {
            name: per_channel_dynamic_qconfig
            for name, layer in module.named_modules()
            if isinstance(layer, torch.nn.Linear)
        }
        with warnings.catch_warnings():
            # torch marks torch.ao.quantization as deprecated in favour of
            # torchao, which has no dynamic int8 path for CPU linear layers yet.
            warnings.simplefilter("ignore", DeprecationWarning)
            warnings.filterwarnings("ignore", message=r"torch\.quantize_per", category=UserWarning)
            self.module = quantize_dynamic(module, linear_layers, dtype=torch.qint8)

    def run(self, batch: WindowBatch) -> Tuple[numpy.ndarray, numpy.ndarray]:
        position_ids = batch.position_ids
        with torch.inference_mode():
            logits, hidden = self.module(
                torch.from_numpy(batch.input_ids),
                torch.from_numpy(batch.attention_mask),
                None if position_ids is None else torch.from_numpy(position_ids),
            )
        return logits.numpy(), hidden.numpy()


class OnnxEngine:
    """The model exported to ONNX, optionally quantized to int8, run by ONNX Runtime."""

    def __init__(self, hf_model: PreTrainedModel, quantize: Optional[str], packed: bool):
        onnxruntime = import_onnxruntime()
        model_bytes = export_onnx(hf_model, packed)
        if quantize == "int8":
            model_bytes = quantize_onnx_int8(model_bytes)
        options = onnxruntime.SessionOptions()
        # Follow torch's thread setting, which the user (or a forked worker) controls.
        options.intra_op_num_threads = torch.get_num_threads()
        options.inter_op_num_threads = 1
        # Idle worker threads would otherwise spin between runs and take the
        # cores from the Python work (tokenizing, decoding) done in between.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.session = onnxruntime.InferenceSession(
            model_bytes, options, providers=["CPUExecutionProvider"]
        )

    def run(self, batch: WindowBatch) -> Tuple[numpy.ndarray, numpy.ndarray]:
        inputs = {"input_ids": batch.input_ids, "attention_mask": batch.attention_mask}
        if batch.position_ids is not None:
            inputs["position_ids"] = batch.position_ids
        logits, hidden = self.session.run(None, inputs)
        return logits, hidden


def import_onnxruntime():
    try:
        import onnx  # noqa: F401  (torch's exporter needs it)
        import onnxruntime
    except ImportError as error:
        raise ImportError(
            f"backend = 'onnxruntime' needs the onnx and onnxruntime packages "
            f"({error}). Install them with: {ONNX_INSTALL_HINT}, or set "
            "[components.<name>.model] backend to 'torch' (for a saved pipeline: "
            "spacy.load(path, config={'components.ner.model.backend': 'torch'}) "
            "with your component's name in place of ner)."
        ) from error
    return onnxruntime


def export_onnx(hf_model: PreTrainedModel, packed: bool) -> bytes:
    """Export the token classifier to ONNX with any number of rows and row length.

    ``packed``: the inputs of packed rows (see ``WindowBatch``), a square
    attention mask per row and position ids, instead of one window per row.
    """
    module = copy.deepcopy(HeadOutputs(hf_model)).float().eval()
    ids = torch.ones((2, 8), dtype=torch.int64)
    dynamic = {0: "rows", 1: "length"}
    names = ["input_ids", "attention_mask"]
    axes = {"input_ids": dynamic, "logits": dynamic, "hidden": dynamic}
    if packed:
        example = (ids, torch.ones((2, 8, 8), dtype=torch.int64), ids)
        names.append("position_ids")
        axes.update(attention_mask={0: "rows", 1: "length", 2: "length"}, position_ids=dynamic)
    else:
        example = (ids, ids)
        axes.update(attention_mask=dynamic)
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        # The tracer warns about Python-level shape checks inside transformers;
        # the exported graph is checked against torch in the tests instead.
        warnings.simplefilter("ignore")
        torch.onnx.export(
            module,
            example,
            buffer,
            input_names=names,
            output_names=["logits", "hidden"],
            dynamic_axes=axes,
            opset_version=ONNX_OPSET,
            # The TorchScript exporter needs onnx only; the newer one also
            # needs onnxscript and is slower to run.
            dynamo=False,
        )
    return buffer.getvalue()


def quantize_onnx_int8(model_bytes: bytes) -> bytes:
    """Quantize every matrix multiplication's weights to int8, one scale per output column."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    with tempfile.TemporaryDirectory() as tmp:
        source, target = Path(tmp) / "fp32.onnx", Path(tmp) / "int8.onnx"
        source.write_bytes(model_bytes)
        # The quantizer logs advice meant for static quantization of images.
        logging.disable(logging.WARNING)
        try:
            quantize_dynamic(source, target, per_channel=True, weight_type=QuantType.QInt8)
        finally:
            logging.disable(logging.NOTSET)
        return target.read_bytes()


def build_engine(
    hf_model: PreTrainedModel, backend: str, quantize: Optional[str], packed: bool
):
    """Return the engine for these settings, or None when the thinc torch model serves."""
    if backend == "onnxruntime":
        return OnnxEngine(hf_model, quantize, packed)
    if quantize == "int8":
        return TorchInt8Engine(hf_model)
    return None
