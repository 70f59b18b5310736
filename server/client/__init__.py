"""A Python client of the playground's REST API, for scripts and notebooks.

from server.client import Client
pg = Client("http://127.0.0.1:8000")
lenet = pg.create_model(preset="lenet5", seed=0)
run = lenet.run({"x": torch.randn(1, 1, 32, 32)})
run.activations["conv1"]  # torch.Tensor (1, 6, 28, 28), exact float32
"""

from server.client.core import Client
from server.client.errors import PlaygroundError
from server.client.results import Effect, Model, Run, Training
from server.client.stream import Event

__all__ = ["Client", "Effect", "Event", "Model", "PlaygroundError", "Run", "Training"]
