"""The "Why?" view: Integrated Gradients and Grad-CAM drawn over LeNet-5's input, and a conv1
channel switched off by a click, the prediction bars then equal to what the API (and a
forward hook in plain torch) give."""

from __future__ import annotations

import base64
import json
import zlib

import numpy as np
import pytest
import torch
from captum.attr import IntegratedGradients, LayerAttribution, LayerGradCam, Saliency
from playwright.sync_api import expect
from safetensors.torch import load as st_load

from models.build import build
from models.datasets import FASHION_CLASSES
from models.inputs import make_input, tokenize
from models.presets import PRESETS

pytestmark = pytest.mark.browser


def lenet_with_channel_off(channel: int, patch_seed: int | None = None) -> list[float]:
    """The oracle: the preset (seed 0) on torch.randn after manual_seed(0), conv1[channel] = 0
    (or, with ``patch_seed``, conv1[channel] of the input randn after manual_seed(patch_seed))."""
    model = build(PRESETS["lenet5"].spec, seed=0).model.eval()
    clean = None
    if patch_seed is not None:
        torch.manual_seed(patch_seed)
        with torch.no_grad():
            clean = model.conv1(torch.randn(1, 1, 32, 32))
    torch.manual_seed(0)
    x = torch.randn(1, 1, 32, 32)

    def off(_m, _a, o):
        o = o.clone()
        o[:, channel] = 0 if clean is None else clean[:, channel]
        return o

    model.conv1.register_forward_hook(off)
    with torch.no_grad():
        return model(x)[0].tolist()


def input_gradient() -> torch.Tensor:
    """d(predicted class score)/d(input) for the page's input (randn after manual_seed(0))."""
    model = build(PRESETS["lenet5"].spec, seed=0).model.eval()
    torch.manual_seed(0)
    x = torch.randn(1, 1, 32, 32).requires_grad_()
    out = model(x)
    out[0, int(out[0].argmax())].backward()
    return x.grad[0, 0]


def overlay_drawn(page, method: str) -> None:
    page.select_option("#why-method", method)
    page.click("#why-explain")
    expect(page.locator("#why")).to_have_attribute("data-method", method)
    traces = page.evaluate(
        "document.querySelector('#why-overlay').data.map(t => [t.z.length, t.z[0].length])"
    )
    assert traces == [[32, 32], [32, 32]]  # the input, and the attribution over it


def test_overlays_and_switching_a_channel_off(page, server, shot):
    page.goto(f"{server}/")
    page.click("a[data-preset=lenet5]")
    page.wait_for_selector("#stack .block[data-layer=fc3]")
    page.wait_for_selector("#model-status[data-kind=ok]")
    page.click("#tab-why")
    page.wait_for_selector("#why-maps.js-plotly-plot")
    page.wait_for_selector("#why-bars[data-values]")
    before = json.loads(page.get_attribute("#why-bars", "data-values"))

    overlay_drawn(page, "integrated_gradients")
    shot(page, "why_integrated_gradients")
    overlay_drawn(page, "gradcam")
    shot(page, "why_gradcam", docs=True)
    overlay_drawn(page, "gradients")
    drawn = page.evaluate("document.querySelector('#why-overlay').data[1].z")
    assert np.asarray(drawn) == pytest.approx(input_gradient().numpy(), rel=1e-5, abs=1e-9)

    page.click("#why-featvis")
    page.wait_for_selector("#why-featvis-map.js-plotly-plot")
    z = page.evaluate("document.querySelector('#why-featvis-map').data[0].z")
    assert (len(z), len(z[0])) == (32, 32)
    expect(page.locator("#why")).to_contain_text("conv1[0]: 64 steps")

    page.click("#why-switches button[data-channel='2']")
    expect(page.locator("#why-switches button[data-channel='2']")).to_have_attribute(
        "aria-pressed", "true"
    )
    page.wait_for_function(
        "b => document.querySelector('#why-bars').dataset.values !== b", arg=json.dumps(before)
    )
    after = json.loads(page.get_attribute("#why-bars", "data-values"))
    assert after != before
    # what the API returns for the same request, asked directly from the page
    direct = page.evaluate(
        """async () => {
          const headers = {Authorization: `Bearer ${localStorage.getItem("playground.token")}`,
                           "Content-Type": "application/json"};
          const list = await (await fetch("/api/models", {headers})).json();
          const body = {inputs: {x: {kind: "random", distribution: "normal", seed: 0}},
                        encoding: "f32", capture: "none",
                        interventions: [{layer: "conv1", op: "zero", channels: [2]}]};
          const url = `/api/models/${list.models[0].id}/intervene`;
          const init = {method: "POST", headers, body: JSON.stringify(body)};
          return (await (await fetch(url, init)).json()).outputs.fc3;
        }"""
    )
    raw = np.frombuffer(base64.b64decode(direct["data"]), dtype="<f4")
    assert after == raw.tolist()
    assert after == pytest.approx(lenet_with_channel_off(2), rel=1e-5, abs=1e-6)
    bars = page.evaluate("document.querySelector('#why-bars').data[0].y")
    assert bars == pytest.approx(after)
    title = page.evaluate("document.querySelector('#why-maps').layout.annotations[2].text")
    assert title == "conv1[2] off"
    page.locator("#why-bars").scroll_into_view_if_needed()
    shot(page, "why_channel_off", docs=True)

    # the channels switched off are part of the link: reopened, it shows the same prediction
    page.wait_for_function("() => location.hash.startsWith('#z=')")
    page.wait_for_timeout(400)  # the hash is written 200 ms after the last change
    page.reload()
    expect(page.locator("#why-switches button[data-channel='2']")).to_have_attribute(
        "aria-pressed", "true"
    )
    page.wait_for_selector("#why-bars[data-values]")
    assert json.loads(page.get_attribute("#why-bars", "data-values")) == after

    # patch instead of zero: the channel from another input (random, seed 1)
    want = lenet_with_channel_off(2, patch_seed=1)
    page.check("#why-patch")
    page.wait_for_function(
        """want => {
          const got = JSON.parse(document.querySelector('#why-bars').dataset.values || "[]");
          return got.length === want.length &&
            got.every((v, i) => Math.abs(v - want[i]) <= 1e-5 * Math.abs(want[i]) + 1e-6);
        }""",
        arg=want,
    )
    assert json.loads(page.get_attribute("#why-bars", "data-values")) != after


def test_tagger_words_explained_by_their_embedding_gradient(page, server):
    page.goto(f"{server}/")
    page.click("a[data-preset=lstm_tagger]")
    page.wait_for_selector("#model-status[data-kind=ok]")
    page.click("#tab-why")
    page.click("#why-explain")
    expect(page.locator("#why")).to_have_attribute("data-method", "tokens")
    words = page.evaluate("document.querySelector('#why-overlay').data[0].x")
    drawn = page.evaluate("document.querySelector('#why-overlay').data[0].y")
    preset = PRESETS["lstm_tagger"]
    model = build(preset.spec, seed=preset.seed).model.eval()
    ids, _ = tokenize(" ".join(words), preset.spec["inputs"]["sentence"]["vocab"])
    kept = {}
    model.word_embeddings.register_forward_hook(lambda _m, _a, o: kept.setdefault("e", o))
    out = model(torch.tensor(ids))
    kept["e"].retain_grad()
    out[..., int(out[0].argmax())].sum().backward()
    want = kept["e"].grad.norm(dim=-1).tolist()
    assert drawn == pytest.approx(want, rel=1e-4)


# -- a trained LeNet-5 on a real Fashion-MNIST sample ------------------------------------------
FASHION = {
    "dataset": "fashion_mnist",
    "transforms": [{"kind": "scale"}, {"kind": "pad", "size": 32}],
    "optimizer": {"name": "adam", "args": {"lr": 0.002}},
    "loss": {"name": "CrossEntropyLoss", "args": {}},
    "batch_size": 64,
    "steps": 300,
    "eval_every": 300,
    "seed": 0,
}
SAMPLE = {  # a test-set trouser: a garment with a clear outline and a padded background
    "kind": "dataset",
    "dataset": "fashion_mnist",
    "split": "test",
    "index": 2,
    "transforms": FASHION["transforms"],
}
TRAIN_AND_FETCH = """async (config) => {
  const auth = {Authorization: `Bearer ${localStorage.getItem("playground.token")}`};
  const json = {...auth, "Content-Type": "application/json"};
  const id = (await (await fetch("/api/models", {headers: auth})).json()).models[0].id;
  const made = await fetch(`/api/models/${id}/trainings`,
    {method: "POST", headers: json, body: JSON.stringify(config)});
  const training = await made.json();
  if (made.status !== 202) throw new Error(JSON.stringify(training));
  let t = training;
  while (t.status !== "done") {
    if (["failed", "cancelled"].includes(t.status)) throw new Error(JSON.stringify(t));
    await new Promise((r) => setTimeout(r, 100));
    t = await (await fetch(`/api/models/${id}/trainings/${training.id}`, {headers: auth})).json();
  }
  const weights = new Uint8Array(await (await fetch(`/api/models/${id}/weights`,
    {headers: auth})).arrayBuffer());
  let bin = "";
  for (const b of weights) bin += String.fromCharCode(b);
  return {weights: btoa(bin)};
}"""


def state_link(state: dict) -> str:
    """The page's share link (static/js/state.js: base64url of raw-deflated JSON)."""
    packer = zlib.compressobj(wbits=-15)
    raw = packer.compress(json.dumps(state).encode()) + packer.flush()
    return "#z=" + base64.urlsafe_b64encode(raw).decode().rstrip("=")


def explained(page, method: str) -> tuple[dict, dict]:
    """Choose ``method``, click Explain: the request body and the API's answer."""
    page.select_option("#why-method", method)
    with page.expect_response(lambda r: r.url.endswith("/attribute")) as answer:
        page.click("#why-explain")
    expect(page.locator("#why")).to_have_attribute("data-method", method)
    return answer.value.request.post_data_json, answer.value.json()


def payload(p: dict) -> np.ndarray:
    raw = np.frombuffer(base64.b64decode(p["data"]), dtype="<f4")
    return raw.reshape(p["shape"])


def test_trained_lenet_attributes_to_the_garment(page, server, shot):
    """LeNet-5 trained 300 steps on Fashion-MNIST through the API (about 10 s here) explains a
    test trouser, chosen in the Why tab as a sample of the training's dataset: Saliency and
    Integrated Gradients put more mass on the garment's pixels than on the background, and
    every overlay drawn equals the API's answer, which equals Captum called directly on the
    same trained weights and the same sample."""
    spec = {**PRESETS["lenet5"].spec, "labels": list(FASHION_CLASSES)}
    # the Train tab configured with FASHION; the Why tab explains its test sample 2
    train = {"config": FASHION, "at": None, "sample": 0}
    state = {"spec": spec, "train": train, "whyInput": {"sample": 2}, "autorun": True}
    page.goto(f"{server}/playground{state_link(state)}")
    # a link that runs on open: the build, then the run (no validation left to overlap the
    # training on a busy machine)
    expect(page.locator("#model-status")).to_contain_text("Ran in")
    trained = page.evaluate(TRAIN_AND_FETCH, FASHION)
    model = build(spec, seed=0).model.eval()
    model.load_state_dict(st_load(base64.b64decode(trained["weights"])))
    x = make_input(SAMPLE, [1, 1, 32, 32]).tensor
    garment = (x > 0).numpy()[0, 0]  # scaled to [0, 1]: the background is exactly 0
    with torch.no_grad():
        predicted = int(model(x)[0].argmax())
    assert predicted == 1  # "Trouser", the sample's label: the model has learned

    page.click("#tab-why")
    expect(page.locator("#why-input")).to_have_value("sample")
    expect(page.locator("#why-sample")).to_have_value("2")
    for method in ("saliency", "integrated_gradients", "gradcam"):
        body, res = explained(page, method)
        assert res["target"] == predicted
        np.testing.assert_array_equal(payload(res["inputs"]["x"]["tensor"]), x.numpy())
        got = payload(res["attribution"]["tensor"])
        want = oracle(model, x, method, body, res["captum"])
        np.testing.assert_array_equal(got, want)  # f32 on the CPU: bit for bit
        drawn = page.evaluate("document.querySelector('#why-overlay').data[1].z")
        np.testing.assert_allclose(np.asarray(drawn), got[0, 0], rtol=1e-6)
        mass = np.abs(got[0, 0])
        if method == "saliency":  # about the object: the garment, a quarter of the pixels,
            # holds more of the mass than the background, over twice as much per pixel
            assert mass[garment].sum() > mass[~garment].sum()
            assert mass[garment].mean() > 2 * mass[~garment].mean()
        if method == "integrated_gradients":  # (x - baseline 0) × mean gradient: all of it
            assert mass[garment].sum() > 0 and mass[~garment].sum() == 0
        shot(page, f"why_trained_{method}", docs=method != "saliency")


def oracle(model, x: torch.Tensor, method: str, body: dict, captum: dict) -> np.ndarray:
    """Captum called directly with the arguments the API reports it used."""
    leaf = x.clone().requires_grad_()
    if method == "saliency":
        attr = Saliency(model).attribute(leaf, target=captum["target"], abs=True)
    elif method == "integrated_gradients":
        attr = IntegratedGradients(model).attribute(
            leaf, baselines=captum["baselines"], target=captum["target"],
            n_steps=captum["n_steps"], internal_batch_size=captum["internal_batch_size"],
        )  # fmt: skip
    else:
        layer = getattr(model, body["layer"])
        raw = LayerGradCam(model, layer).attribute(
            leaf, target=captum["target"], relu_attributions=True
        )
        attr = LayerAttribution.interpolate(raw, (32, 32), "bilinear")
    return attr.detach().numpy()
