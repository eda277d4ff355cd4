"""Reduced precision: explanations under bf16 autocast agree with float32 (the CPU runs bf16 too)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from istvt_explain.attribution import explain
from istvt_explain.attribution.propagation import class_start, propagate_row
from istvt_explain.models.precision import autocast, autocast_dtype, resolve_precision
from istvt_explain.models.pretrained import load_demo_model

ATTENTION_METHODS = ("attention", "rollout", "relevance", "lrp", "spatial-only", "temporal-only")
MIN_CORRELATION = 0.99  # the bar: reduced-precision maps against float32 on the same clips


def test_auto_is_fp32_on_the_cpu_and_names_are_checked() -> None:
    assert resolve_precision("auto", "cpu") == "fp32" and autocast_dtype("auto", "cpu") is None
    assert autocast_dtype("bf16", "cpu") is torch.bfloat16 and autocast_dtype("fp16", "cpu") is torch.float16
    with pytest.raises(ValueError, match="precision must be one of"):
        resolve_precision("fp8", "cpu")
    with pytest.raises(ValueError, match="precision must be one of"):
        explain(load_demo_model(), torch.zeros(1, 6, 3, 160, 160), method="rollout", precision="half")


@pytest.fixture(scope="module")
def demo_and_clips():
    gen = torch.Generator().manual_seed(11)
    return load_demo_model(), torch.rand(2, 6, 3, 160, 160, generator=gen) * 2 - 1


def _correlations(a: torch.Tensor, b: torch.Tensor) -> list[float]:
    return [float(np.corrcoef(x.flatten().numpy(), y.flatten().numpy())[0, 1]) for x, y in zip(a, b, strict=True)]


@pytest.mark.parametrize("method", ATTENTION_METHODS)
def test_bf16_maps_correlate_with_fp32(demo_and_clips, method: str) -> None:
    model, clips = demo_and_clips
    full = explain(model, clips, method=method)
    half = explain(model, clips, method=method, precision="bf16")
    assert half.settings["precision"] == "bf16" and full.settings["precision"] == "fp32"
    assert half.spatial.dtype == torch.float32 and half.temporal.dtype == torch.float32
    assert not torch.equal(half.logits, full.logits), "bf16 did not reach the model"
    assert min(_correlations(full.spatial, half.spatial)) >= MIN_CORRELATION
    assert min(_correlations(full.temporal, half.temporal)) >= MIN_CORRELATION
    torch.testing.assert_close(half.fake_probability, full.fake_probability, atol=0.01, rtol=0)


def test_propagation_stays_float32_inside_16_bit_autocast() -> None:
    """The class row is one-hot plus additions of about 1e-7 after a dozen blocks: computed in fp16
    (einsum under autocast) those additions are rounded away, which is why propagation opts out."""
    gen = torch.Generator().manual_seed(2)
    blocks = [(torch.rand(1, 5, 4, 4, generator=gen).softmax(-1) * 1e-3,
               torch.rand(1, 4, 5, 5, generator=gen).softmax(-1) * 1e-3) for _ in range(4)]
    start = class_start(1, 4, 5)
    expected = propagate_row(start, blocks)
    with autocast("fp16", "cpu"):
        got = propagate_row(start, blocks)
    assert got.dtype == torch.float32
    added, expected_added = got - start, expected - start  # what the blocks add, on its own scale
    scale = float(expected_added.abs().max())
    torch.testing.assert_close(added / scale, expected_added / scale, rtol=1e-5, atol=1e-6)
