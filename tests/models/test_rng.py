"""models.rng: the streams a job seeds draw what they draw after ``torch.manual_seed``."""

from __future__ import annotations

import pytest
import torch

from models.rng import cuda_indices, seed_streams


@pytest.mark.parametrize("seed", [0, 7, 2**40 + 3])
def test_seed_streams_draws_torch_manual_seeds_numbers(seed: int) -> None:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        want = torch.randn(5), torch.rand(3), torch.normal(0.0, torch.full((4,), 0.15))
        seed_streams(seed)
        got = torch.randn(5), torch.rand(3), torch.normal(0.0, torch.full((4,), 0.15))
    for a, b in zip(got, want, strict=True):
        assert torch.equal(a, b)


def test_cuda_indices() -> None:
    assert cuda_indices(torch.device("cpu")) == []
    assert cuda_indices(torch.device("cuda", 2)) == [2]
    assert cuda_indices(torch.device("cuda")) == [0]


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_seed_streams_on_cuda() -> None:
    with torch.random.fork_rng(devices=[0]):
        torch.manual_seed(3)
        want = torch.randn(5, device="cuda")
        seed_streams(3, [0])
        assert torch.equal(torch.randn(5, device="cuda"), want)
