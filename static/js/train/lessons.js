/**
 * The training lessons of the start page (one place): which model, which dataset and how
 * it is trained. A lesson link is `/playground#lesson=<name>`; its state then holds the
 * configuration, so a share link replays the same training (same seed, same data order).
 */

const SPIRAL_LAYERS = (act) => {
  const layers = [{ name: "fc1", type: "Linear", args: { in_features: 2, out_features: 16 } }];
  if (act) layers.push({ name: "act1", type: "Tanh", args: {} });
  layers.push({ name: "fc2", type: "Linear", args: { in_features: 16, out_features: 16 } });
  if (act) layers.push({ name: "act2", type: "Tanh", args: {} });
  layers.push({ name: "fc3", type: "Linear", args: { in_features: 16, out_features: 2 } });
  return layers;
};

const spiralSpec = (act) => ({
  name: act ? "SpiralMLP" : "SpiralLinear",
  inputs: { x: { shape: [1, 2] } },
  layers: SPIRAL_LAYERS(act),
  labels: ["orange", "blue"],
});

const SPIRAL_TRAIN = {
  dataset: "spiral",
  dataset_params: { noise: 0 },
  transforms: [],
  optimizer: { name: "adam", args: { lr: 0.03 } },
  loss: { name: "CrossEntropyLoss", args: {} },
  batch_size: 10,
  steps: 1500,
  eval_every: 50,
  seed: 0,
};

export const LESSONS = {
  lenet5_fashion: {
    title: "Train LeNet-5 on Fashion-MNIST",
    preset: "lenet5",
    blurb: "Adam, batch 64: watch the loss fall, the test accuracy climb and conv1's kernels form.",
    train: {
      dataset: "fashion_mnist",
      transforms: [{ kind: "scale" }, { kind: "pad", size: 32 }],
      optimizer: { name: "adam", args: { lr: 0.001 } },
      loss: { name: "CrossEntropyLoss", args: {} },
      batch_size: 64,
      steps: 300,
      eval_every: 100,
      seed: 0,
    },
  },
  tagger_pos: {
    title: "Train the tutorial's tagger",
    preset: "lstm_tagger",
    blurb: "SGD 0.1, one sentence per step, 300 epochs, as PyTorch's example: DET, NN and V appear.",
    train: {
      dataset: "pos_tagging",
      transforms: [],
      optimizer: { name: "sgd", args: { lr: 0.1 } },
      loss: { name: "NLLLoss", args: {} },
      batch_size: 1,
      epochs: 300,
      shuffle: false,
      seed: 0,
    },
  },
  spiral_mlp: {
    title: "Fit the spiral with an MLP",
    spec: spiralSpec(true),
    blurb: "Two Tanh layers of 16: watch the decision boundary bend around the arms.",
    train: SPIRAL_TRAIN,
  },
  spiral_linear: {
    title: "The same MLP without activations",
    spec: spiralSpec(false),
    blurb: "Three Linear layers are one linear map: the boundary stays a straight line.",
    train: SPIRAL_TRAIN,
  },
};

/** The state patch a lesson makes: {spec?, train}; null for an unknown lesson. */
export function lessonState(name) {
  const lesson = LESSONS[name];
  if (!lesson) return null;
  const train = { config: structuredClone(lesson.train), at: null, sample: 0, lesson: name };
  return { lesson, train };
}
