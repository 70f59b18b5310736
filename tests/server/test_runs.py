"""Runs (server/routers/runs.py): inputs of every kind through a model, every layer captured.

The oracle is plain torch: the same weights (``models.build.build(spec, seed=S)``, equal to
the tutorials' classes after ``torch.manual_seed(S)``, tested in tests/models) called layer
by layer the way the tutorials write their ``forward``. On the CPU the API's float32 values
must be bit-identical; f16 must equal the oracle rounded to float16.
"""

from __future__ import annotations

import base64
import io

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from models.build import build
from models.presets import PRESETS

LENET = PRESETS["lenet5"].spec
LENET_LAYERS = [layer["name"] for layer in LENET["layers"]]


def lenet_oracle(seed: int, x: torch.Tensor) -> dict[str, torch.Tensor]:
    """Every LeNet-5 layer's output, computing module by module in plain torch."""
    model = build(LENET, seed=seed).model.eval()
    acts = {}
    with torch.no_grad():
        for name in LENET_LAYERS:
            x = getattr(model, name)(x)
            acts[name] = x
    return acts


def tensor_input(x: torch.Tensor) -> dict:
    return {"kind": "tensor", "data": x.tolist()}


def sample(seed: int, *shape: int) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("encoding", ["f32", "f16", "list"])
def test_lenet_activations_equal_plain_torch(api, lenet, encoding):
    x = sample(1, 1, 1, 32, 32)
    result = api.run(lenet["id"], inputs={"x": tensor_input(x)}, encoding=encoding)
    oracle = lenet_oracle(0, x)
    assert result["mode"] == "eval"
    assert list(result["activations"]) == LENET_LAYERS
    for name, act in result["activations"].items():
        assert act["tensor"]["encoding"] == encoding
        assert act["tensor"]["dtype"] == "float32"
        api.assert_same(act["tensor"], oracle[name])
    api.assert_same(result["outputs"]["fc3"], oracle["fc3"])
    api.assert_same(result["inputs"]["x"]["tensor"], x)
    assert result["labels"] == [str(d) for d in range(10)]
    assert 0 < result["compute_ms"] < result["elapsed_ms"]  # the forward, within the job


def test_lenet_f32_decodes_with_numpy_frombuffer(api, lenet):
    """What a script does: base64 -> little-endian float32 -> reshape."""
    x = sample(2, 1, 1, 32, 32)
    payload = api.run(lenet["id"], inputs={"x": tensor_input(x)}, encoding="f32")["activations"][
        "conv1"
    ]["tensor"]
    conv1 = np.frombuffer(base64.b64decode(payload["data"]), "<f4").reshape(payload["shape"])
    want = lenet_oracle(0, x)["conv1"].numpy()
    if api.device == "cpu":
        np.testing.assert_array_equal(conv1, want)
    else:
        np.testing.assert_allclose(conv1, want, rtol=1e-4, atol=1e-5)


def test_statistics_match_numpy(api, lenet):
    x = sample(3, 1, 1, 32, 32)
    act = api.run(lenet["id"], inputs={"x": tensor_input(x)}, capture=["relu1"])["activations"][
        "relu1"
    ]
    want = lenet_oracle(0, x)["relu1"].numpy().astype(np.float64)
    stats = act["stats"]
    assert stats["shape"] == [1, 6, 28, 28] and stats["numel"] == want.size
    assert stats["mean"] == pytest.approx(want.mean(), rel=1e-5)
    assert stats["std"] == pytest.approx(want.std(), rel=1e-5)  # population std
    assert stats["min"] == pytest.approx(want.min()) and stats["max"] == pytest.approx(want.max())
    assert stats["zero_fraction"] == pytest.approx((want == 0).mean())
    assert stats["nan_count"] == 0
    assert sum(stats["histogram"]["counts"]) == want.size


def test_input_statistics_are_exact_float32_whatever_the_encoding(api, lenet):
    """The input card's numbers come from the server, as a layer's: not from the f16 payload."""
    torch.manual_seed(0)
    want = torch.randn(1, 1, 32, 32).double()
    got = api.run(lenet["id"], inputs={"x": {"kind": "random"}}, encoding="f16", capture=[])
    stats = got["inputs"]["x"]["stats"]
    assert stats["mean"] == pytest.approx(float(want.mean()), rel=1e-5)
    assert stats["std"] == pytest.approx(float(want.std(correction=0)), rel=1e-5)
    assert stats["min"] == float(want.min()) and stats["max"] == float(want.max())
    assert api.run(lenet["id"], capture=[], stats=False)["inputs"]["x"].get("stats") is None


def test_same_seed_same_model_same_activations(api):
    """Two models created with the same seed hold the same weights, so compute the same."""
    x = tensor_input(sample(4, 1, 1, 32, 32))
    a = api.create(preset="lenet5", seed=11)
    b = api.create(preset="lenet5", seed=11)
    c = api.create(preset="lenet5", seed=12)
    run = {"inputs": {"x": x}, "encoding": "f32", "capture": []}
    fa = api.run(a["id"], **run)["outputs"]["fc3"]["data"]
    assert api.run(b["id"], **run)["outputs"]["fc3"]["data"] == fa
    assert api.run(c["id"], **run)["outputs"]["fc3"]["data"] != fa


def test_random_input_is_seeded_like_torch_manual_seed(api, lenet):
    result = api.run(
        lenet["id"], inputs={"x": {"kind": "random", "seed": 9}}, encoding="f32", capture=["fc3"]
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(9)
        x = torch.randn(1, 1, 32, 32)
    api.assert_same(result["inputs"]["x"]["tensor"], x)
    api.assert_same(result["outputs"]["fc3"], lenet_oracle(0, x)["fc3"])


def test_missing_input_defaults_to_seeded_normal(api, lenet):
    default = api.run(lenet["id"], encoding="f32", capture=[])
    seeded = api.run(lenet["id"], inputs={"x": {"kind": "random"}}, encoding="f32", capture=[])
    assert default["inputs"]["x"]["tensor"]["data"] == seeded["inputs"]["x"]["tensor"]["data"]


def test_uniform_and_constant_inputs(api, lenet):
    uniform = {"kind": "random", "distribution": "uniform", "low": -2, "high": 3, "seed": 1}
    got = api.decode(
        api.run(lenet["id"], inputs={"x": uniform}, encoding="f32", capture=[])["inputs"]["x"][
            "tensor"
        ]
    )
    want = -2 + 5 * torch.rand(1, 1, 32, 32, generator=torch.Generator().manual_seed(1))
    np.testing.assert_allclose(got, want.numpy(), rtol=1e-6)
    const = api.run(
        lenet["id"], inputs={"x": {"kind": "constant", "value": 0.5}}, capture=["conv1"]
    )
    x = torch.full((1, 1, 32, 32), 0.5)
    api.assert_same(const["activations"]["conv1"]["tensor"], lenet_oracle(0, x)["conv1"])


def test_image_input(api, lenet):
    pixels = np.arange(32 * 32, dtype=np.uint8).reshape(32, 32)  # a grey ramp, 0..255 twice
    buf = io.BytesIO()
    Image.fromarray(pixels, mode="L").save(buf, format="PNG")
    png = base64.b64encode(buf.getvalue()).decode()
    result = api.run(
        lenet["id"], inputs={"x": {"kind": "image", "png_base64": png}}, capture=["conv1"]
    )
    x = torch.from_numpy(pixels.astype(np.float32) / 255.0).reshape(1, 1, 32, 32)
    api.assert_same(result["inputs"]["x"]["tensor"], x)
    api.assert_same(result["activations"]["conv1"]["tensor"], lenet_oracle(0, x)["conv1"])


def test_a_batch_of_other_size_is_inferred_again(api, lenet):
    x = sample(5, 3, 1, 32, 32)
    result = api.run(lenet["id"], inputs={"x": tensor_input(x)}, encoding="f32")
    assert result["activations"]["flat"]["tensor"]["shape"] == [3, 576]
    api.assert_same(result["outputs"]["fc3"], lenet_oracle(0, x)["fc3"])


# -- capture --------------------------------------------------------------------------------
def test_capture_a_list_and_none(api, lenet):
    some = api.run(lenet["id"], capture=["pool2", "conv1"])
    assert set(some["activations"]) == {"pool2", "conv1"}
    assert api.run(lenet["id"], capture="none")["activations"] == {}
    assert api.run(lenet["id"], capture=[])["activations"] == {}


def test_capture_unknown_layer(api, lenet):
    r = api.post(f"/api/models/{lenet['id']}/run", json={"capture": ["conv9"]})
    err = api.error(r, 404, "unknown_layer")
    assert err["layer"] == "conv9" and "conv1" in err["message"]


def test_unknown_input_name(api, lenet):
    r = api.post(f"/api/models/{lenet['id']}/run", json={"inputs": {"y": {"kind": "random"}}})
    assert "x" in api.error(r, 422, "invalid_input")["message"]


def test_downsampled_for_display(make_api):
    api = make_api(max_display_elements=1000)
    model = api.create(preset="lenet5", seed=0)
    act = api.run(model["id"], capture=["conv1"])["activations"]["conv1"]["tensor"]
    assert act["downsampled"] is True and act["true_shape"] == [1, 6, 28, 28]
    assert np.prod(act["shape"]) <= 1000 and act["shape"][:2] == [1, 6]
    full = api.run(model["id"], capture=["conv1"], downsample=False)["activations"]["conv1"]
    assert full["tensor"]["shape"] == [1, 6, 28, 28] and "true_shape" not in full["tensor"]


# -- the LSTM tagger ------------------------------------------------------------------------
def test_lstm_tagger_tags_each_word(api):
    preset = PRESETS["lstm_tagger"]
    model = api.create(preset="lstm_tagger", seed=4)
    text = "The dog ate the apple"
    result = api.run(
        model["id"], inputs={"sentence": {"kind": "tokens", "text": text}}, encoding="f32"
    )
    assert result["inputs"]["sentence"]["tokens"] == text.split()
    assert result["inputs"]["sentence"].get("stats") is None  # token ids: no statistics
    assert result["labels"] == ["DET", "NN", "V"]
    vocab = preset.spec["inputs"]["sentence"]["vocab"]
    sentence = torch.tensor([vocab.index(w) for w in text.split()])
    api.assert_same(result["inputs"]["sentence"]["tensor"], sentence.float())
    # the tutorial's LSTMTagger.forward, on the same weights
    m = build(preset.spec, seed=4).model.eval()
    with torch.no_grad():
        embeds = m.word_embeddings(sentence)
        lstm_out, (h_n, c_n) = m.lstm(embeds.view(len(sentence), 1, -1))
        tag_space = m.hidden2tag(lstm_out.view(len(sentence), -1))
        tag_scores = F.log_softmax(tag_space, dim=1)
    scores = result["outputs"]["log_softmax"]
    assert scores["shape"] == [5, 3]  # one row of tag scores per word
    api.assert_same(scores, tag_scores)
    lstm = result["activations"]["lstm"]
    api.assert_same(lstm["tensor"], lstm_out)
    api.assert_same(lstm["extras"]["h_n"]["tensor"], h_n)
    api.assert_same(lstm["extras"]["c_n"]["tensor"], c_n)
    api.assert_same(result["activations"]["word_embeddings"]["tensor"], embeds)


def test_stats_false_leaves_out_only_the_statistics(api):
    """``stats: false`` drops every "stats" key (layers and extras) and nothing else: the
    payloads are byte for byte those of a run with statistics."""
    model = api.create(preset="lstm_tagger", seed=4)
    body = {"inputs": {"sentence": {"kind": "tokens", "text": "The dog ate the apple"}}}
    full = api.run(model["id"], **body)
    bare = api.run(model["id"], **body, stats=False)
    assert "stats" in full["activations"]["lstm"]["extras"]["h_n"]
    for timed in (full, bare):
        del timed["elapsed_ms"], timed["compute_ms"]
    for act in full["activations"].values():
        act.pop("stats")
        for extra in act["extras"].values():
            extra.pop("stats")
    assert bare == full


def test_lstm_tagger_sentence_of_other_length(api):
    model = api.create(preset="lstm_tagger", seed=0)
    result = api.run(
        model["id"], inputs={"sentence": {"kind": "tokens", "text": "Everybody read that book"}}
    )
    assert result["outputs"]["log_softmax"]["shape"] == [4, 3]
    assert result["inputs"]["sentence"]["tokens"] == ["Everybody", "read", "that", "book"]


def test_lstm_tagger_unknown_word(api):
    model = api.create(preset="lstm_tagger", seed=0)
    r = api.post(
        f"/api/models/{model['id']}/run",
        json={"inputs": {"sentence": {"kind": "tokens", "text": "The cat ate"}}},
    )
    err = api.error(r, 422, "unknown_token")
    assert "cat" in err["message"] and err["detail"] == {"unknown": ["cat"]}


def test_token_index_outside_vocabulary_is_a_4xx(api):
    model = api.create(preset="lstm_tagger", seed=0)
    r = api.post(
        f"/api/models/{model['id']}/run",
        json={"inputs": {"sentence": {"kind": "tensor", "data": [0, 1, 99]}}},
    )
    err = api.error(r, 422, "token_out_of_range")
    assert err["layer"] == "word_embeddings" and "0–8" in err["message"] and "99" in err["message"]
    assert api.run(model["id"])["outputs"]["log_softmax"]["shape"] == [5, 3]  # still serving


# -- attention ------------------------------------------------------------------------------
def test_transformer_attention_weights_per_head(api):
    preset = PRESETS["transformer_classifier"]
    model = api.create(preset="transformer_classifier", seed=2)
    text = "the movie was not good"
    result = api.run(
        model["id"],
        inputs={"tokens": {"kind": "tokens", "text": text}},
        capture=["embedding", "encoder"],
        encoding="f32",
    )
    extras = result["activations"]["encoder"]["extras"]
    assert set(extras) == {"attn.layers.0.self_attn", "attn.layers.1.self_attn"}
    weights = extras["attn.layers.0.self_attn"]["tensor"]
    assert weights["shape"] == [1, 4, 5, 5]  # (batch, heads, L, S)
    m = build(preset.spec, seed=2).model.eval()
    vocab = preset.spec["inputs"]["tokens"]["vocab"]
    tokens = torch.tensor([[vocab.index(w) for w in text.split()]])
    with torch.no_grad():
        e = m.embedding(tokens)
        attn = m.encoder.layers[0].self_attn
        _, want = attn(e, e, e, need_weights=True, average_attn_weights=False)
    api.assert_same(result["activations"]["embedding"]["tensor"], e)
    got = api.decode(weights)
    np.testing.assert_allclose(got, want.numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(got.sum(-1), 1.0, rtol=1e-5)


# -- train and eval -------------------------------------------------------------------------
def test_dropout_train_mode_is_seeded_and_differs_from_eval(api):
    model = api.create(preset="mlp", seed=0)
    x = {"x": tensor_input(sample(6, 1, 1, 28, 28))}
    run = {"inputs": x, "encoding": "f32", "capture": ["relu1", "dropout", "fc3"]}
    train_a = api.run(model["id"], mode="train", seed=5, **run)
    train_b = api.run(model["id"], mode="train", seed=5, **run)
    train_c = api.run(model["id"], mode="train", seed=6, **run)
    evaled = api.run(model["id"], mode="eval", **run)
    assert train_a["mode"] == "train" and evaled["mode"] == "eval"
    assert train_a["activations"] == train_b["activations"]  # same seed, same mask
    drop = api.decode(train_a["activations"]["dropout"]["tensor"])
    relu = api.decode(train_a["activations"]["relu1"]["tensor"])
    assert drop.tolist() != api.decode(train_c["activations"]["dropout"]["tensor"]).tolist()
    # eval: dropout is the identity; train: kept values scaled by 1/(1-p), p = 0.2
    np.testing.assert_array_equal(api.decode(evaled["activations"]["dropout"]["tensor"]), relu)
    kept = drop != 0
    assert (relu[~kept] != 0).sum() > 0  # some non-zero activations were dropped
    np.testing.assert_allclose(drop[kept], relu[kept] / 0.8, rtol=1e-6)
    assert train_a["outputs"]["fc3"]["data"] != evaled["outputs"]["fc3"]["data"]


def test_dropout_train_mode_matches_torch_manual_seed(api):
    model = api.create(preset="mlp", seed=0)
    x = sample(7, 1, 1, 28, 28)
    result = api.run(
        model["id"], mode="train", seed=5, inputs={"x": tensor_input(x)}, encoding="f32"
    )
    if api.device != "cpu":
        pytest.skip("the oracle draws its dropout mask from the CPU generator")
    m = build(PRESETS["mlp"].spec, seed=0).model.train()
    with torch.no_grad(), torch.random.fork_rng(devices=[]):
        torch.manual_seed(5)
        h = x
        for layer in PRESETS["mlp"].spec["layers"]:
            h = getattr(m, layer["name"])(h)
            api.assert_same(result["activations"][layer["name"]]["tensor"], h)


def test_train_mode_moves_batchnorm_statistics_and_keeps_them(api):
    preset = PRESETS["small_cnn"]
    model = api.create(preset="small_cnn", seed=0)
    x = sample(8, 2, 3, 32, 32)
    api.run(model["id"], mode="train", seed=1, inputs={"x": tensor_input(x)}, capture=[])
    m = build(preset.spec, seed=0).model.train()
    with torch.no_grad(), torch.random.fork_rng(devices=[]):
        torch.manual_seed(1)
        h = x
        for layer in preset.spec["layers"]:
            h = getattr(m, layer["name"])(h)
    from safetensors.torch import load

    state = load(api.weights(model["id"]))
    for name in (
        "bn1.running_mean",
        "bn1.running_var",
        "bn2.running_mean",
        "bn2.num_batches_tracked",
    ):
        want = m.state_dict()[name]
        if api.device == "cpu" or not want.is_floating_point():
            assert torch.equal(state[name], want), name
        else:
            torch.testing.assert_close(state[name], want, rtol=1e-4, atol=1e-5)
    assert api.ok(api.get(f"/api/models/{model['id']}"))["version"] == model["version"] + 1
    # an eval run leaves them alone
    api.run(model["id"], mode="eval", inputs={"x": tensor_input(x)}, capture=[])
    assert torch.equal(
        load(api.weights(model["id"]))["bn1.running_mean"], state["bn1.running_mean"]
    )
