"""``python -m spacy_biobert import-hf`` and ``export-hf``: token classifiers in and out of spaCy."""

from __future__ import annotations

from pathlib import Path

import spacy

from ..huggingface import export_pipeline, import_checkpoint
from ..models.token_classifier import CONTEXTS
from ..pipeline.ner import DECODINGS


def check_new_folder(path: Path) -> None:
    """Reject an output folder that already has files, so nothing is overwritten."""
    if path.exists() and (not path.is_dir() or any(path.iterdir())):
        raise FileExistsError(
            f"{path} already exists and is not an empty folder; give a new output folder."
        )


def add_parsers(subparsers) -> None:
    importer = subparsers.add_parser(
        "import-hf",
        help="make a spaCy pipeline from a Hugging Face token-classification checkpoint",
        description="Make a spaCy pipeline folder with biobert_ner from a Hugging Face "
        "token-classification checkpoint (config.json with id2label, model.safetensors, "
        "tokenizer files), keeping its head.",
    )
    importer.add_argument("checkpoint", help="the checkpoint folder or model name")
    importer.add_argument("output", type=Path, help="the new pipeline folder")
    importer.add_argument(
        "--entity-type", help="the entity label of an untyped B/I/O head, e.g. Disease"
    )
    importer.add_argument(
        "--allow-pickle",
        action="store_true",
        help="also read pytorch_model.bin, a pickle that can run code: only for "
        "checkpoints you trust",
    )
    importer.add_argument(
        "--keep-case",
        action="store_true",
        help="do not lower-case text (for a cased checkpoint without tokenizer_config.json)",
    )
    importer.add_argument(
        "--window", type=int, default=128, help="word pieces per window (default: 128)"
    )
    importer.add_argument(
        "--stride", type=int, default=96, help="word pieces between windows (default: 96)"
    )
    importer.add_argument(
        "--context",
        choices=CONTEXTS,
        default="sentence",
        help="read each sentence alone, as BioBERT's training files are (default), "
        "or the whole document",
    )

    importer.add_argument(
        "--decoding",
        choices=DECODINGS,
        default="viterbi",
        help="how tags become entities (default: viterbi; argmax is the rule of "
        "transformers' token-classification pipeline)",
    )

    def run_import(args) -> None:
        check_new_folder(args.output)
        nlp = import_checkpoint(
            args.checkpoint,
            entity_type=args.entity_type,
            allow_pickle=args.allow_pickle,
            tokenizer_config={"do_lower_case": False} if args.keep_case else {},
            model_config={"window": args.window, "stride": args.stride, "context": args.context},
            component_config={"decoding": args.decoding},
        )
        nlp.to_disk(args.output)
        labels = ", ".join(nlp.get_pipe("ner").labels)
        print(f"Wrote a spaCy pipeline with the labels {labels} to {args.output}")

    importer.set_defaults(run=run_import)

    exporter = subparsers.add_parser(
        "export-hf",
        help="write a trained biobert_ner as a Hugging Face token-classification folder",
        description="Write a trained biobert_ner component as a folder that "
        "AutoModelForTokenClassification and AutoTokenizer load.",
    )
    exporter.add_argument("pipeline", help="a trained pipeline folder or package name")
    exporter.add_argument("output", type=Path, help="the new Hugging Face folder")
    exporter.add_argument(
        "--component", help="the component to export, when there is more than one biobert_ner"
    )
    exporter.add_argument(
        "--drop-crf",
        action="store_true",
        help="export a component trained with crf = true without its CRF transition "
        "scores (the head alone tags much worse)",
    )

    def run_export(args) -> None:
        check_new_folder(args.output)
        nlp = spacy.load(args.pipeline)
        export_pipeline(nlp, args.output, component=args.component, drop_crf=args.drop_crf)
        print(f"Wrote a Hugging Face token-classification folder to {args.output}")

    exporter.set_defaults(run=run_export)
