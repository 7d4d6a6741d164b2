"""Models as their users hold them: a transformers folder, a `.keras` file, a keras-hub preset, a class
with its arguments, a weights file; each exported with nothing but its path (and --arg for a class)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from graphmint.pipeline.cli import main
from graphmint.pipeline.publish.manifest import read_model_manifest
from graphmint.pipeline.spec.sources import file_sha256

#: the comparison graphmint grew from, kept as written: classes that take their sizes
NETS = """
import keras
import torch
import torch.nn as nn


class SimpleNet(nn.Module):
    def __init__(self, input_size, hidden_size, output_size):
        super().__init__()
        self.fc1 = nn.Linear(input_size, hidden_size)
        self.relu = nn.ReLU()
        self.fc2 = nn.Linear(hidden_size, output_size)

    def forward(self, x):
        return self.fc2(self.relu(self.fc1(x)))


class CustomLayer(nn.Module):
    def __init__(self, input_size, output_size):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(input_size, output_size))

    def forward(self, x):
        return torch.matmul(x, self.weight)


class ModelWithCustom(nn.Module):
    def __init__(self, input_size, custom_output_size):
        super().__init__()
        self.custom = CustomLayer(input_size, custom_output_size)
        self.relu = nn.ReLU()
        self.fc = nn.Linear(custom_output_size, 2)

    def forward(self, x):
        return self.fc(self.relu(self.custom(x)))
"""

#: a Keras layer of the user's own, registered for `.keras` files, and a subclassed model using it
KERAS_LAYERS = """
import keras


@keras.saving.register_keras_serializable(package="userlayers")
class Scale(keras.layers.Layer):
    def build(self, shape):
        self.scale = self.add_weight(shape=(shape[-1],), initializer="random_normal")

    def call(self, x):
        return x * self.scale


@keras.saving.register_keras_serializable(package="userlayers")
class Tower(keras.Model):
    def __init__(self, units=8, **kwargs):
        super().__init__(**kwargs)
        self.units = units
        self.dense = keras.layers.Dense(units, activation="gelu")
        self.scale = Scale()
        self.out = keras.layers.Dense(3)

    def call(self, x):
        return self.out(self.scale(self.dense(x)))

    def get_config(self):
        return {**super().get_config(), "units": self.units}
"""


def _hf_models(folder: Path) -> None:
    """A text classifier, a vision classifier, an encoder-decoder and an audio model, from random configs
    (the vision and audio ones as the corpus builds them)."""
    import torch
    import transformers as hf

    torch.manual_seed(0)
    text = dict(vocab_size=100, hidden_size=32, num_hidden_layers=2, num_attention_heads=4)
    models = {
        "bert-classifier": hf.BertForSequenceClassification(
            hf.BertConfig(**text, intermediate_size=64, max_position_embeddings=32, num_labels=3)
        ),
        "bart-seq2seq": hf.BartForConditionalGeneration(
            hf.BartConfig(
                vocab_size=100,
                d_model=32,
                encoder_layers=1,
                decoder_layers=1,
                encoder_attention_heads=4,
                decoder_attention_heads=4,
                encoder_ffn_dim=64,
                decoder_ffn_dim=64,
                max_position_embeddings=32,
            )
        ),
    }
    from graphmint.models.corpus_torch import vit, wav2vec2

    models["vit-classifier"] = vit()
    models["wav2vec2-audio"] = wav2vec2()
    for name, model in models.items():
        model.save_pretrained(folder / name)
    # an audio model's feature extractor says the sampling rate its waveforms come at
    hf.Wav2Vec2FeatureExtractor(sampling_rate=8000).save_pretrained(folder / "wav2vec2-audio")


def _keras_files(folder: Path) -> None:
    import keras
    import keras_hub

    def functional(width: int = 16) -> keras.Model:
        inputs = keras.Input((6,), name="features")
        hidden = keras.layers.Dense(width, activation="relu")(inputs)
        return keras.Model(inputs, keras.layers.Dense(2)(hidden))

    keras.utils.set_random_seed(0)
    functional().save(folder / "functional.keras")
    keras.utils.set_random_seed(1)  # other weights for the same layers, as training would leave them
    functional().save_weights(folder / "trained.weights.h5")
    functional(24).save_weights(folder / "wider.weights.h5")
    import userlayers

    tower = userlayers.Tower()
    tower(keras.ops.zeros((1, 5)))
    tower.save(folder / "tower.keras")
    lam_in = keras.Input((4,))
    keras.Model(lam_in, keras.layers.Lambda(lambda t: t * 2.0)(lam_in)).save(folder / "lambda.keras")
    keras_hub.models.BertBackbone(
        vocabulary_size=100,
        num_layers=1,
        num_heads=2,
        hidden_dim=16,
        intermediate_dim=32,
        max_sequence_length=32,
    ).save_to_preset(str(folder / "bert-preset"))


def _torch_weights(folder: Path) -> None:
    """Trained-looking weights for SimpleNet(10, 20, 2) as safetensors and as a state dict, a file of
    other shapes, one with a key missing, and a whole pickled module."""
    import sys

    import torch
    from safetensors.torch import save_file

    sys.path.insert(0, str(folder))
    import nets

    torch.manual_seed(7)
    net = nets.SimpleNet(10, 20, 2)
    with torch.no_grad():
        for p in net.parameters():
            p.mul_(3.0).add_(0.1)
    save_file(net.state_dict(), folder / "trained.safetensors")
    torch.save(net.state_dict(), folder / "trained.pt")
    save_file(nets.SimpleNet(10, 30, 2).state_dict(), folder / "wider.safetensors")
    partial = {k: v for k, v in net.state_dict().items() if k != "fc2.bias"}
    save_file(partial, folder / "partial.safetensors")
    torch.save(net, folder / "module.pt")


@pytest.fixture(scope="module")
def held(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder as a user holds their models: code, a transformers folder per kind, Keras files and
    a keras-hub preset, weights files."""
    import sys

    folder = tmp_path_factory.mktemp("held")
    (folder / "nets.py").write_text(NETS)
    (folder / "userlayers.py").write_text(KERAS_LAYERS)
    sys.path.insert(0, str(folder))
    try:
        _hf_models(folder)
        _keras_files(folder)
        _torch_weights(folder)
    finally:
        sys.path.remove(str(folder))
    return folder


CONFIG = """
[defaults]
seed = 0

[[models]]
name = "bert"
ref = "bert-classifier"
routes = ["torch-export"]

[[models]]
name = "vit"
ref = "vit-classifier"
routes = ["torch-export"]

[[models]]
name = "bart"
ref = "bart-seq2seq"
routes = ["torch-export"]

[[models]]
name = "wav2vec2"
ref = "wav2vec2-audio"
routes = ["torch-export"]

[[models]]
name = "functional"
ref = "functional.keras"
routes = ["saved-model"]

[[models]]
name = "functional-trained"
ref = "functional.keras"
weights = "trained.weights.h5"
routes = ["saved-model"]

[[models]]
name = "tower"
ref = "tower.keras"
custom_objects = "userlayers"
inputs = ["x:float32[batch,5]"]
routes = ["saved-model"]

[[models]]
name = "preset"
ref = "bert-preset"
routes = ["saved-model"]

[[models]]
name = "custom"
ref = "nets:ModelWithCustom"
args = { input_size = 10, custom_output_size = 20 }
inputs = ["x:float32[batch,10]"]
routes = ["torch-export"]

[[models]]
name = "trained"
ref = "nets:SimpleNet"
args = { input_size = 10, hidden_size = 20, output_size = 2 }
weights = "trained.safetensors"
inputs = ["x:float32[batch,10]"]
routes = ["torch-export"]
"""


@pytest.fixture(scope="module")
def published(held: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Every held model through one route, from a config whose entries are paths and classes."""
    (held / "held.toml").write_text(CONFIG)
    out = tmp_path_factory.mktemp("held-out")
    cwd = os.getcwd()
    os.chdir(held)  # `nets` and `userlayers` import from the folder the user runs in
    try:
        code = main(["run", "held.toml", "--out", str(out), "--jobs", "2"])
    finally:
        os.chdir(cwd)
    assert code == 0, (out / "report.md").read_text() if (out / "report.md").exists() else code
    return out


def _manifest(out: Path, name: str) -> Any:
    return read_model_manifest(out / name)


@pytest.mark.parametrize(
    ("name", "kind", "cls", "inputs"),
    [
        (
            "bert",
            "transformers",
            "BertForSequenceClassification",
            ["input_ids", "attention_mask", "token_type_ids"],
        ),
        ("vit", "transformers", "ViTForImageClassification", ["pixel_values"]),
        ("wav2vec2", "transformers", "Wav2Vec2Model", ["input_values"]),
        (
            "bart",
            "transformers",
            "BartForConditionalGeneration",
            ["input_ids", "attention_mask", "decoder_input_ids"],
        ),
        ("functional", "keras", "Functional", ["features"]),
        ("tower", "keras", "Tower", ["x"]),
        ("preset", "keras-hub", "BertBackbone", ["token_ids", "segment_ids", "padding_mask"]),
    ],
)
def test_a_model_file_or_folder_exports_with_nothing_but_its_path(
    published: Path, held: Path, name: str, kind: str, cls: str, inputs: list[str]
) -> None:
    manifest = _manifest(published, name)
    assert [r.status for r in manifest.routes] == ["passed"], manifest.routes
    assert [i.name for i in manifest.inputs] == inputs
    source = manifest.model
    assert source.kind == kind and source.model_class.endswith(f".{cls}"), source
    assert (
        Path(source.ref).resolve()
        == (held / CONFIG.split(f'name = "{name}"\nref = "')[1].split('"')[0]).resolve()
    )
    assert source.weights and all(len(w.sha256) == 64 for w in source.weights)


def test_transformers_inputs_are_read_off_the_model(published: Path) -> None:
    bert = _manifest(published, "bert")
    assert [i.dtype for i in bert.inputs] == ["int64"] * 3
    assert bert.dims["sequence"].max == 32  # the config's max_position_embeddings
    vit = _manifest(published, "vit")
    assert vit.inputs[0].shape == ["batch", 3, 32, 32]
    audio = _manifest(published, "wav2vec2")  # 0.1 to 0.2 s at the feature extractor's 8 kHz
    assert (audio.dims["samples"].min, audio.dims["samples"].max) == (800, 1600)
    bart = _manifest(published, "bart")
    assert bart.inputs[2].shape == ["batch", "decoder_sequence"]
    weights = bert.model.weights
    assert [w.path for w in weights] == ["model.safetensors"]
    # the attention masks are right-padded rows, each keeping at least one token
    from graphmint.validators.golden import read_golden_sets

    names = [i.name for i in bert.inputs]
    for golden in read_golden_sets(published / "bert", names):
        mask = golden.inputs["attention_mask"]
        assert (mask[:, 0] == 1).all() and (np.diff(mask, axis=1) <= 0).all(), mask
    assert any(
        (golden.inputs["attention_mask"] == 0).any() for golden in read_golden_sets(published / "bert", names)
    )


def test_a_class_takes_its_arguments_and_weights_load_into_it(published: Path, held: Path) -> None:
    custom = _manifest(published, "custom").model
    assert custom.kind == "callable" and custom.args == {"input_size": 10, "custom_output_size": 20}
    trained = _manifest(published, "trained").model
    assert trained.args == {"input_size": 10, "hidden_size": 20, "output_size": 2}
    [weights] = trained.weights
    assert weights.sha256 == file_sha256(held / "trained.safetensors")
    golden = json.loads((published / "trained" / "manifest.json").read_text())["model"]
    assert golden["weights"][0]["path"].endswith("trained.safetensors")


def test_keras_weights_load_into_a_keras_file(published: Path, held: Path) -> None:
    """A .weights.h5 saved from the same layers with other weights replaces the file's own: the
    published golden outputs are those of the trained weights, not of the .keras file's."""
    import keras

    from graphmint.validators.golden import read_golden_sets

    source = _manifest(published, "functional-trained").model
    assert [w.path for w in source.weights] == [
        "functional.keras",
        str((held / "trained.weights.h5").resolve()),
    ]
    model = keras.saving.load_model(held / "functional.keras")
    model.load_weights(held / "trained.weights.h5")
    own = keras.saving.load_model(held / "functional.keras")
    for golden in read_golden_sets(published / "functional-trained", ["features"], ["output"]):
        features = golden.inputs["features"]
        expected = np.asarray(model(features, training=False))
        np.testing.assert_allclose(golden.outputs["output"], expected, rtol=1e-5, atol=1e-6)
        assert not np.allclose(golden.outputs["output"], np.asarray(own(features, training=False)))


def test_the_comparison_simplenet_runs_by_arg_with_its_trained_weights(
    held: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The command a user of the comparison types: the class as written, its sizes by --arg, the
    weights they trained; the published outputs are those of the trained weights."""
    monkeypatch.chdir(held)
    command = ["export", *SIMPLENET, "--weights", "trained.pt", *X10, "--routes", "torch-export"]
    assert main([*command, "--out", "out"]) == 0
    import torch

    from graphmint.validators.golden import read_golden_sets

    folder = held / "out" / "SimpleNet"
    manifest = read_model_manifest(folder)
    assert manifest.model.weights[0].sha256 == file_sha256(held / "trained.pt")
    state = torch.load(held / "trained.pt", weights_only=True)
    sets = read_golden_sets(folder, ["x"], ["output"])
    assert len(sets) == 4
    for golden in sets:
        x = torch.from_numpy(np.array(golden.inputs["x"]))
        hidden = torch.relu(x @ state["fc1.weight"].T + state["fc1.bias"])
        expected = hidden @ state["fc2.weight"].T + state["fc2.bias"]
        np.testing.assert_allclose(golden.outputs["output"], expected.numpy(), rtol=1e-5, atol=1e-6)


#: the comparison's SimpleNet by --arg, and its input
SIMPLENET = ["nets:SimpleNet", "--arg", "input_size=10", "--arg", "hidden_size=20", "--arg", "output_size=2"]
X10 = ["--input", "x:float32[batch,10]"]

BAD = [
    (
        ["nets:SimpleNet", *X10],
        "needs the argument(s) input_size, hidden_size, output_size",
    ),
    (
        [*SIMPLENET, "--arg", "depth=3", *X10],
        "takes no argument 'depth'",
    ),
    (["nets:SimpleNet", "--arg", "10", *X10], "--arg '10' is not name=value"),
    (
        [*SIMPLENET, "--weights", "wider.safetensors", *X10],
        "shapes differ: fc1.weight [30, 10] for [20, 10]",
    ),
    (
        [*SIMPLENET, "--weights", "partial.safetensors", *X10],
        "missing fc2.bias",
    ),
    (
        [*SIMPLENET, "--weights", "module.pt", *X10],
        "unpickling it runs code",
    ),
    (
        [*SIMPLENET, "--weights", "nowhere.safetensors", *X10],
        "--weights nowhere.safetensors",
    ),
    (["functional.keras", "--weights", "wider.weights.h5"], "shapes differ:"),
    (["functional.keras", "--weights", "trained.pt"], "is not a Keras weights file"),
    (["lambda.keras"], "pass --trust if you trust the file"),
    (["tower.keras"], "pass --custom-objects MODULE"),
    (["missing/folder"], "does not exist"),
    (["nets.py"], "is not a model graphmint can load"),
]


def test_bad_sources_are_one_line_exit_2_and_publish_nothing(
    held: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(held)
    for args, expected in BAD:
        out = tmp_path / "out"
        code = main(["export", *args, "--routes", "onnx", "--out", str(out)])
        err = capsys.readouterr().err.strip().splitlines()
        assert code == 2, (args, err)
        assert len(err) == 1 and expected in err[0], (args, err)
        assert not list(out.rglob("manifest.json")), (args, "nothing may be published")
