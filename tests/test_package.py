"""A trained pipeline becomes a wheel with ``spacy package`` and installs into a new virtual environment."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
import zipfile

import pytest
import spacy
import torch
from spacy.training import Example

TEXTS = ["breast cancer in patients", "the gene of huntington disease and ovarian cancer"]


def run(args, **kwargs):
    result = subprocess.run(args, capture_output=True, text=True, **kwargs)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def entity_tuples(nlp):
    return [[(e.start_char, e.end_char, e.label_) for e in nlp(text).ents] for text in TEXTS]


@pytest.fixture(scope="module")
def wheel(tiny_encoder, tmp_path_factory):
    """Train a tiny pipeline, package it with spaCy and build the wheel without any network."""
    tmp = tmp_path_factory.mktemp("package")
    torch.manual_seed(0)
    nlp = spacy.blank("en")
    nlp.add_pipe("biobert_ner", name="ner", config={"model": {"encoder": str(tiny_encoder)}})
    examples = [
        Example.from_dict(nlp.make_doc(TEXTS[0]), {"entities": [(0, 13, "Disease")]}),
        Example.from_dict(nlp.make_doc(TEXTS[1]), {"entities": [(12, 30, "Disease"), (35, 49, "Disease")]}),
    ]
    optimizer = nlp.initialize(lambda: examples)
    optimizer.learn_rate = 0.005
    for _ in range(30):
        nlp.update(examples, sgd=optimizer)
    nlp.to_disk(tmp / "pipeline")
    (tmp / "packages").mkdir()
    run(
        [sys.executable, "-m", "spacy", "package", str(tmp / "pipeline"), str(tmp / "packages"),
         "--name", "tiny_ner", "--version", "0.0.1", "--build", "none"]
    )
    package_folder = tmp / "packages" / "en_tiny_ner-0.0.1"
    # What `--build wheel` does with the `build` package, minus the isolated
    # environment that would have to download setuptools.
    run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-index",
         "--no-build-isolation", "--wheel-dir", str(tmp / "dist"), str(package_folder)]
    )
    (wheel_path,) = (tmp / "dist").glob("en_tiny_ner-0.0.1-*.whl")
    return wheel_path, entity_tuples(spacy.load(tmp / "pipeline")), package_folder


def test_package_requires_spacy_biobert(wheel):
    _, _, package_folder = wheel
    meta = json.loads((package_folder / "meta.json").read_text())
    assert any(req.startswith("spacy-biobert>=") for req in meta["requirements"])


def test_wheel_holds_safetensors_and_no_pickle(wheel):
    wheel_path, _, _ = wheel
    names = zipfile.ZipFile(wheel_path).namelist()
    assert any(name.endswith("ner/encoder/model.safetensors") for name in names)
    # spaCy's own vocab/lookups.bin is msgpack; torch's pickles would be these.
    assert not [n for n in names if n.endswith(("pytorch_model.bin", ".pkl", ".pt", ".pth"))]
    metadata = next(name for name in names if name.endswith("METADATA"))
    requires = zipfile.ZipFile(wheel_path).read(metadata).decode()
    assert "Requires-Dist: spacy-biobert" in requires


def test_installed_wheel_gives_same_entities(wheel, tmp_path):
    wheel_path, expected, _ = wheel
    assert any(expected), "the tiny pipeline should find some entities"
    venv = tmp_path / "venv"
    run([sys.executable, "-m", "venv", "--without-pip", str(venv)])
    python = venv / "bin" / "python"
    site_packages = run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"]
    ).strip()
    # The new environment imports spaCy, torch and spacy-biobert from this one's
    # site-packages instead of downloading them, so the install needs no network.
    dev_site_packages = sysconfig.get_paths()["purelib"]
    (tmp_path / "venv" / site_packages).joinpath("dependencies.pth").write_text(
        f"import site; site.addsitedir({dev_site_packages!r})\n"
    )
    run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "--quiet",
         "--no-index", str(wheel_path)]
    )
    code = (
        "import json, spacy\n"
        "nlp = spacy.load('en_tiny_ner')\n"
        f"texts = {TEXTS!r}\n"
        "print(json.dumps([[[e.start_char, e.end_char, e.label_] for e in nlp(t).ents] for t in texts]))\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(HF_HUB_OFFLINE="1", HF_HOME=str(tmp_path / "empty_hf_home"))
    output = run([str(python), "-c", code], cwd=tmp_path, env=env)
    found = [[tuple(entity) for entity in doc] for doc in json.loads(output)]
    assert found == expected
