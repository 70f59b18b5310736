"""models.probe against plain torch: every captured activation equals the layers run by hand."""

from __future__ import annotations

import json
from typing import Any

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from models.build import build
from models.catalog import CATALOG
from models.errors import SpecError
from models.inputs import make_input
from models.presets import PRESETS
from models.probe import Activation, attention_hooks, attention_modules, describe, probe
from models.tensors import decode


def encoder_spec(**args: Any) -> dict[str, Any]:
    """One TransformerEncoderLayer on (N=2, L=5, E=16) tokens, batch first (fast-path ready)."""
    layer_args = {"d_model": 16, "nhead": 4, "dim_feedforward": 32, "batch_first": True, **args}
    return {
        "name": "Enc",
        "inputs": {"x": {"shape": [2, 5, 16]}},
        "layers": [{"name": "enc", "type": "TransformerEncoderLayer", "args": layer_args}],
    }


MHA_SPEC = {
    "name": "Attn",
    "inputs": {"x": {"shape": [7, 3, 16]}},
    "layers": [
        {
            "name": "attn",
            "type": "MultiheadAttention",
            "args": {"embed_dim": "auto", "num_heads": 4},
        }
    ],
}

TRANSFORMER_SPEC = {
    "name": "T",
    "inputs": {"src": {"shape": [6, 1, 16]}, "tgt": {"shape": [4, 1, 16]}},
    "layers": [
        {
            "name": "transformer",
            "type": "Transformer",
            "inputs": ["src", "tgt"],
            "args": {
                "d_model": 16,
                "nhead": 2,
                "num_encoder_layers": 2,
                "num_decoder_layers": 1,
                "dim_feedforward": 32,
            },
        }
    ],
}

DROPOUT_SPEC = {
    "name": "Drop",
    "inputs": {"x": {"shape": [4, 32]}},
    "layers": [
        {"name": "fc", "type": "Linear", "args": {"in_features": 32, "out_features": 64}},
        {"name": "drop", "type": "Dropout", "args": {"p": 0.4}},
    ],
}


def no_hooks_left(model: nn.Module) -> bool:
    """True when no module of ``model`` holds a forward hook or pre-hook of any kind."""
    dicts = (
        "_forward_hooks",
        "_forward_pre_hooks",
        "_forward_hooks_with_kwargs",
        "_forward_pre_hooks_with_kwargs",
        "_forward_hooks_always_called",
    )
    return all(not getattr(m, d) for m in model.modules() for d in dicts)


# -- hooks ----------------------------------------------------------------------------------
def test_hooks_removed_after_probe(lenet) -> None:
    model = build(lenet, seed=1).model
    probe(model, {"x": torch.randn(1, 1, 32, 32)})
    assert no_hooks_left(model)
    enc = build(encoder_spec(), seed=0).model
    probe(enc, {"x": torch.randn(2, 5, 16)})
    assert no_hooks_left(enc)


def test_hooks_removed_when_forward_raises(lenet) -> None:
    model = build(lenet, seed=1).model
    with pytest.raises(RuntimeError):
        probe(model, {"x": torch.randn(1, 1, 28, 28)})  # fc1 gets 400 features, not 576
    assert no_hooks_left(model)
    enc = build(encoder_spec(), seed=0).model
    with pytest.raises(KeyError), attention_hooks(enc, list(enc._modules)):
        assert not no_hooks_left(enc)
        raise KeyError("boom")
    assert no_hooks_left(enc)


def test_a_probe_hooks_only_attention(lenet, monkeypatch) -> None:
    """Layer outputs come from the model's own forward: no layer gets a hook (each keeps
    torch's fast call path); only attention modules are hooked, for their weights."""
    registered = []
    real = nn.Module.register_forward_hook

    def spy(module, *args, **kwargs):
        registered.append(type(module).__name__)
        return real(module, *args, **kwargs)

    monkeypatch.setattr(nn.Module, "register_forward_hook", spy)
    probe(build(lenet, seed=1).model, {"x": torch.randn(1, 1, 32, 32)})
    assert registered == []
    probe(build(encoder_spec(), seed=0).model, {"x": torch.randn(2, 5, 16)})
    assert registered and set(registered) == {"MultiheadAttention"}


def test_unknown_capture_name_is_404_and_registers_nothing(lenet) -> None:
    model = build(lenet, seed=1).model
    with pytest.raises(SpecError) as info:
        probe(model, {"x": torch.randn(1, 1, 32, 32)}, capture=["conv1", "conv7"])
    assert (info.value.code, info.value.layer) == ("unknown_layer", "conv7")
    assert "conv1, relu1" in info.value.message
    assert no_hooks_left(model)


def test_input_names_are_checked(lenet) -> None:
    model = build(lenet, seed=1).model
    for inputs in ({}, {"y": torch.randn(1, 1, 32, 32)}, {"x": torch.zeros(1), "z": 1}):
        with pytest.raises(SpecError) as info:
            probe(model, inputs)
        assert info.value.code == "invalid_input"
    with pytest.raises(SpecError) as info:
        probe(model, {"x": [[1.0]]})
    assert info.value.code == "invalid_input"
    with pytest.raises(SpecError) as info:
        probe(model, {"x": torch.randn(1, 1, 32, 32)}, mode="training")  # type: ignore[arg-type]
    assert info.value.code == "invalid_mode"


# -- activations equal plain torch ----------------------------------------------------------
def hooked_outputs(model: nn.Module, xs: dict[str, torch.Tensor]) -> dict[str, Any]:
    """The oracle: what plain forward hooks on the top-level layers see in ``model(**xs)``."""
    seen: dict[str, Any] = {}
    handles = [
        child.register_forward_hook(lambda _m, _a, out, name=name: seen.__setitem__(name, out))
        for name, child in model.named_children()
    ]
    try:
        with torch.no_grad():
            model(**xs)
    finally:
        for handle in handles:
            handle.remove()
    return seen


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, torch.Tensor):
        return isinstance(b, torch.Tensor) and torch.equal(a, b)
    if isinstance(a, tuple | list):
        return type(a) is type(b) and len(a) == len(b) and all(map(_same, a, b))
    return a == b


@pytest.mark.parametrize("name", list(PRESETS))
def test_every_preset_probe_sees_what_forward_hooks_see(name: str) -> None:
    """The probe keeps outputs in the model's own forward, not with hooks: for every preset
    each layer's activation and extras equal, bit for bit, what a forward hook on it sees."""
    preset = PRESETS[name]
    model = build(preset.spec, seed=preset.seed).model.eval()
    xs = {
        key: make_input(
            preset.default_inputs[key],
            inp["shape"],
            inp.get("dtype", "float32"),
            vocab=inp.get("vocab"),
        ).tensor
        for key, inp in preset.spec["inputs"].items()
    }
    seen = hooked_outputs(model, xs)
    result = probe(model, xs)
    assert list(result.activations) == list(seen)
    for layer, act in result.activations.items():
        main, extras = CATALOG[act.type].split(seen[layer])
        if attention_modules(act.type, model.get_submodule(layer)):
            # asking for the weights (need_weights=True) takes torch's explicit softmax path
            # instead of the fused attention kernel: equal up to float32 rounding
            assert torch.allclose(act.tensor, main, rtol=1e-5, atol=1e-5), layer
            continue
        assert torch.equal(act.tensor, main), layer
        for key, extra in extras.items():
            assert _same(act.extras[key], extra), (layer, key)


def test_lenet_activations_equal_the_layers_by_hand(lenet) -> None:
    model = build(lenet, seed=1).model
    x = torch.randn(1, 1, 32, 32, generator=torch.Generator().manual_seed(0))
    result = probe(model, {"x": x})
    acts = {name: a.tensor for name, a in result.activations.items()}
    assert list(acts) == [layer["name"] for layer in lenet["layers"]]
    m = model
    conv1 = F.conv2d(x, m.conv1.weight, m.conv1.bias)
    pool1 = F.max_pool2d(F.relu(conv1), 2)
    conv2 = F.conv2d(pool1, m.conv2.weight, m.conv2.bias)
    pool2 = F.max_pool2d(F.relu(conv2), 2)
    flat = pool2.reshape(1, -1)
    fc1 = flat @ m.fc1.weight.T + m.fc1.bias
    fc2 = F.relu(fc1) @ m.fc2.weight.T + m.fc2.bias
    fc3 = F.relu(fc2) @ m.fc3.weight.T + m.fc3.bias
    oracle = {
        "conv1": conv1,
        "relu1": F.relu(conv1),
        "pool1": pool1,
        "conv2": conv2,
        "relu2": F.relu(conv2),
        "pool2": pool2,
        "flat": flat,
        "fc1": fc1,
        "relu3": F.relu(fc1),
        "fc2": fc2,
        "relu4": F.relu(fc2),
        "fc3": fc3,
    }
    for name, expected in oracle.items():
        assert acts[name].shape == expected.shape, name
        assert torch.allclose(acts[name], expected, atol=1e-5), name
    assert acts["pool1"].shape == (1, 6, 14, 14) and acts["pool2"].shape == (1, 16, 6, 6)
    assert not any(a.requires_grad for a in acts.values())
    with torch.no_grad():
        assert torch.equal(result.outputs["fc3"], model(x))
    assert list(result.outputs) == ["fc3"] and result.mode == "eval"
    assert all(a.extras == {} for a in result.activations.values())


def test_lstm_extras_equal_nn_lstm_called_directly(tagger) -> None:
    model = build(tagger, seed=1).model
    sentence = torch.tensor([0, 1, 2, 3, 4])
    result = probe(model, {"sentence": sentence})
    lstm = result.activations["lstm"]
    assert lstm.type == "LSTM" and set(lstm.extras) == {"h_n", "c_n"}
    embeds = F.embedding(sentence, model.word_embeddings.weight)
    assert torch.equal(result.activations["word_embeddings"].tensor, embeds)
    oracle = nn.LSTM(6, 6)
    oracle.load_state_dict(model.lstm.state_dict())
    with torch.no_grad():
        out, (h_n, c_n) = oracle(embeds.view(5, 1, -1))
    assert torch.allclose(lstm.tensor, out) and lstm.tensor.shape == (5, 1, 6)
    assert torch.allclose(lstm.extras["h_n"], h_n) and torch.allclose(lstm.extras["c_n"], c_n)
    assert torch.allclose(lstm.extras["h_n"][0], out[-1])  # the last step's hidden state
    scores = F.log_softmax(out.view(5, -1) @ model.hidden2tag.weight.T + model.hidden2tag.bias, 1)
    assert torch.allclose(result.outputs["log_softmax"], scores, atol=1e-6)


def test_gru_keeps_h_n() -> None:
    spec = {
        "inputs": {"x": {"shape": [4, 2, 3]}},
        "layers": [
            {
                "name": "gru",
                "type": "GRU",
                "args": {"input_size": 3, "hidden_size": 5, "num_layers": 2},
            }
        ],
    }
    model = build(spec, seed=0).model
    x = torch.randn(4, 2, 3)
    act = probe(model, {"x": x}).activations["gru"]
    with torch.no_grad():
        out, h_n = model.gru(x)
    assert torch.equal(act.tensor, out) and list(act.extras) == ["h_n"]
    assert torch.equal(act.extras["h_n"], h_n) and h_n.shape == (2, 2, 5)


def test_multihead_attention_weights_per_head() -> None:
    model = build(MHA_SPEC, seed=0).model
    x = torch.randn(7, 3, 16)
    act = probe(model, {"x": x}).activations["attn"]
    weights = act.extras["attn_weights"]
    assert weights.shape == (3, 4, 7, 7)  # (N, heads, L, S)
    assert torch.allclose(weights.sum(-1), torch.ones(3, 4, 7), atol=1e-6)
    with torch.no_grad():
        out, averaged = model.attn(x, x, x)  # torch's default: weights averaged over heads
        _, per_head = model.attn(x, x, x, average_attn_weights=False)
    assert torch.allclose(weights.mean(dim=1), averaged, atol=1e-6)
    assert torch.allclose(weights, per_head)
    assert torch.allclose(act.tensor, out, atol=1e-6)


def test_multihead_attention_unbatched() -> None:
    spec = {**MHA_SPEC, "inputs": {"x": {"shape": [7, 16]}}}
    model = build(spec, seed=0).model
    weights = probe(model, {"x": torch.randn(7, 16)}).activations["attn"].extras["attn_weights"]
    assert weights.shape == (4, 7, 7)  # (heads, L, S)


def test_encoder_layer_in_eval_gives_weights_and_the_plain_output(monkeypatch) -> None:
    model = build(encoder_spec(), seed=0).model.eval()
    x = torch.randn(2, 5, 16)
    fused = []
    real = torch._transformer_encoder_layer_fwd

    def spy(*args: Any) -> torch.Tensor:
        fused.append(1)
        return real(*args)

    monkeypatch.setattr(torch, "_transformer_encoder_layer_fwd", spy)
    with torch.no_grad():
        plain = model(x)
    assert fused == [1]  # a plain eval call takes torch's fused path, skipping self_attn
    result = probe(model, {"x": x})
    assert fused == [1]  # the probe does not
    act = result.activations["enc"]
    assert list(act.extras) == ["attn.self_attn"]
    weights = act.extras["attn.self_attn"]
    assert weights.shape == (2, 4, 5, 5)
    assert torch.allclose(weights.sum(-1), torch.ones(2, 4, 5), atol=1e-6)
    with torch.no_grad():
        _, oracle = model.enc.self_attn(x, x, x, average_attn_weights=False)
    assert torch.allclose(weights, oracle, atol=1e-6)
    assert torch.allclose(act.tensor, plain, atol=1e-5)
    assert torch.allclose(result.outputs["enc"], plain, atol=1e-5)
    assert torch.backends.mha.get_fastpath_enabled()  # the global switch is left alone


def test_transformer_captures_every_attention_module() -> None:
    model = build(TRANSFORMER_SPEC, seed=0).model.eval()  # no dropout in the plain call
    src, tgt = torch.randn(6, 1, 16), torch.randn(4, 1, 16)
    result = probe(model, {"src": src, "tgt": tgt})
    extras = result.activations["transformer"].extras
    assert {k: tuple(v.shape) for k, v in extras.items()} == {
        "attn.encoder.layers.0.self_attn": (1, 2, 6, 6),
        "attn.encoder.layers.1.self_attn": (1, 2, 6, 6),
        "attn.decoder.layers.0.self_attn": (1, 2, 4, 4),
        "attn.decoder.layers.0.multihead_attn": (1, 2, 4, 6),
    }
    with torch.no_grad():
        plain = model(src, tgt)
    assert torch.allclose(result.outputs["transformer"], plain, atol=1e-5)
    assert no_hooks_left(model)


# -- modes and seeds ------------------------------------------------------------------------
def test_dropout_in_train_mode_is_seeded() -> None:
    model = build(DROPOUT_SPEC, seed=0).model
    x = torch.randn(4, 32)
    a = probe(model, {"x": x}, mode="train", seed=7)
    b = probe(model, {"x": x}, mode="train", seed=7)
    c = probe(model, {"x": x}, mode="train", seed=8)
    assert a.mode == "train"
    assert torch.equal(a.activations["drop"].tensor, b.activations["drop"].tensor)
    assert not torch.equal(a.activations["drop"].tensor, c.activations["drop"].tensor)
    dropped = a.activations["drop"].tensor == 0
    assert 0.2 < dropped.float().mean().item() < 0.6  # p = 0.4
    kept = a.activations["fc"].tensor / 0.6
    assert torch.allclose(a.activations["drop"].tensor[~dropped], kept[~dropped], atol=1e-6)
    torch.manual_seed(7)  # the same mask as plain torch seeded the same way
    with torch.no_grad():
        expected = F.dropout(model.fc(x), p=0.4, training=True)
    assert torch.equal(a.activations["drop"].tensor, expected)


def test_seed_leaves_the_global_rng_alone() -> None:
    model = build(DROPOUT_SPEC, seed=0).model
    x = torch.randn(4, 32)
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    probe(model, {"x": x}, mode="train", seed=5)
    assert torch.equal(torch.rand(3), expected)


def test_eval_mode_is_deterministic_and_mode_is_restored() -> None:
    model = build(DROPOUT_SPEC, seed=0).model
    model.train()
    x = torch.randn(4, 32)
    a = probe(model, {"x": x})
    b = probe(model, {"x": x})
    assert model.training  # given back in the mode it was in
    assert torch.equal(a.activations["drop"].tensor, b.activations["drop"].tensor)
    assert torch.equal(a.activations["drop"].tensor, a.activations["fc"].tensor)  # no dropout
    model.eval()
    probe(model, {"x": x}, mode="train", seed=1)
    assert not model.training and not model.drop.training


def test_each_module_gets_its_own_mode_back() -> None:
    model = build(DROPOUT_SPEC, seed=0).model
    model.drop.eval()  # a mixed state: train() on the root would overwrite it
    x = torch.randn(4, 32)
    result = probe(model, {"x": x}, mode="train", seed=3)
    assert not torch.equal(result.activations["drop"].tensor, result.activations["fc"].tensor)
    assert model.training and model.fc.training and not model.drop.training
    probe(model, {"x": x}, mode="eval")
    assert model.training and model.fc.training and not model.drop.training


def test_train_mode_updates_batchnorm_running_stats_as_torch_does() -> None:
    spec = {
        "inputs": {"x": {"shape": [8, 3]}},
        "layers": [{"name": "bn", "type": "BatchNorm1d", "args": {"num_features": 3}}],
    }
    model = build(spec, seed=0).model
    x = torch.randn(8, 3) * 20 + 5
    result = probe(model, {"x": x}, mode="train")
    expected = (x - x.mean(0)) / torch.sqrt(x.var(0, unbiased=False) + 1e-5)
    assert torch.allclose(result.activations["bn"].tensor, expected, atol=1e-4)
    assert torch.allclose(model.bn.running_mean, 0.1 * x.mean(0), atol=1e-5)
    eval_out = probe(model, {"x": x}).activations["bn"].tensor  # uses the running stats
    running = (x - model.bn.running_mean) / torch.sqrt(model.bn.running_var + 1e-5)
    assert torch.allclose(eval_out, running, atol=1e-4)


def test_capture_a_subset(lenet) -> None:
    model = build(lenet, seed=1).model
    x = torch.randn(1, 1, 32, 32)
    result = probe(model, {"x": x}, capture=["pool2", "conv1"])
    assert set(result.activations) == {"pool2", "conv1"}
    assert isinstance(result.activations["pool2"], Activation)
    assert result.activations["pool2"].tensor.shape == (1, 16, 6, 6)
    assert result.activations["conv1"].type == "Conv2d"
    full = probe(model, {"x": x})
    assert torch.equal(result.outputs["fc3"], full.outputs["fc3"])
    assert probe(model, {"x": x}, capture=[]).activations == {}


def test_several_outputs_keyed_by_name(lenet) -> None:
    lenet["outputs"] = ["flat", "fc3"]
    model = build(lenet, seed=1).model
    result = probe(model, {"x": torch.randn(1, 1, 32, 32)}, capture=["fc1"])
    assert list(result.outputs) == ["flat", "fc3"]
    assert result.outputs["flat"].shape == (1, 576) and result.outputs["fc3"].shape == (1, 10)


# -- describe -------------------------------------------------------------------------------
def test_describe_is_json_and_decodes_back(tagger) -> None:
    model = build(tagger, seed=1).model
    result = probe(model, {"sentence": torch.tensor([0, 1, 2, 3, 4])})
    body = json.loads(json.dumps(describe(result)))
    assert body["mode"] == "eval" and set(body["outputs"]) == {"log_softmax"}
    lstm = body["activations"]["lstm"]
    assert lstm["type"] == "LSTM" and set(lstm["extras"]) == {"h_n", "c_n"}
    for name, act in result.activations.items():
        payload = body["activations"][name]["tensor"]
        assert payload["encoding"] == "f16"
        back = decode(payload, max_elements=10_000)
        assert torch.allclose(back, act.tensor.float(), atol=1e-3, rtol=1e-3), name
    h_n = decode(lstm["extras"]["h_n"]["tensor"], max_elements=100)
    assert torch.allclose(h_n, result.activations["lstm"].extras["h_n"], atol=1e-3)
    stats = lstm["stats"]
    assert stats["shape"] == [5, 1, 6]
    assert stats["mean"] == pytest.approx(result.activations["lstm"].tensor.mean().item())
    assert sum(stats["histogram"]["counts"]) == 30
    out = decode(body["outputs"]["log_softmax"], max_elements=100)
    assert torch.allclose(out, result.outputs["log_softmax"], atol=1e-2)


def test_describe_attention_and_limits() -> None:
    model = build(MHA_SPEC, seed=0).model
    result = probe(model, {"x": torch.randn(7, 3, 16)})
    body = json.loads(json.dumps(describe(result, encoding="list", max_elements=40, bins=5)))
    weights = body["activations"]["attn"]["extras"]["attn_weights"]
    assert weights["tensor"]["true_shape"] == [3, 4, 7, 7] and weights["tensor"]["downsampled"]
    assert len(weights["stats"]["histogram"]["counts"]) == 5
    assert weights["stats"]["shape"] == [3, 4, 7, 7]


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_on_cuda_tensors_stay_on_the_device_and_seeds_fork_its_rng() -> None:
    model = build(DROPOUT_SPEC, seed=0, device="cuda").model
    x = torch.randn(4, 32)  # on the CPU: probe moves it
    state = torch.cuda.get_rng_state()
    a = probe(model, {"x": x}, mode="train", seed=7)
    b = probe(model, {"x": x}, mode="train", seed=7)
    assert torch.equal(torch.cuda.get_rng_state(), state)
    assert a.outputs["drop"].device.type == "cuda"
    assert a.activations["fc"].tensor.device.type == "cuda"
    assert torch.equal(a.outputs["drop"], b.outputs["drop"])
    back = decode(describe(a, encoding="f32")["outputs"]["drop"], max_elements=1000)
    assert torch.equal(back, a.outputs["drop"].cpu())


def test_describe_encodes_each_tensor_once(monkeypatch) -> None:
    """The model's output is its last layer's activation: one encoding, shared (issue 17)."""
    from models import probe as probe_module
    from models.presets import PRESETS

    preset = PRESETS["lenet5"]
    model = build(preset.spec, seed=preset.seed).model.eval()
    result = probe(model, {"x": torch.randn(1, 1, 32, 32)}, capture="all")
    real = probe_module.encode
    calls = []
    monkeypatch.setattr(
        probe_module, "encode", lambda t, *a, **k: calls.append(t) or real(t, *a, **k)
    )
    out = describe(result)
    assert len(calls) == len(result.activations) == len({id(t) for t in calls})
    assert out["outputs"]["fc3"] == out["activations"]["fc3"]["tensor"]
    assert out["outputs"]["fc3"] == real(result.outputs["fc3"])
