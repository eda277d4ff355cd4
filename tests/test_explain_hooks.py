"""Hooks are always released and fast paths restored: after many runs, and after a forced failure."""

from __future__ import annotations

import pytest
import torch
from support import random_clips, tiny_model

import istvt_explain as ie
from istvt_explain.attribution import AttentionCapture, explain, lrp_rules

FAST = {"integrated-gradients": {"n_steps": 2}, "occlusion": {"patch": 64, "stride": 64}}


@pytest.fixture(scope="module")
def model() -> ie.ISTVT:
    return tiny_model(seed=0)


def assert_clean(model: torch.nn.Module) -> None:
    for name, module in model.named_modules():
        assert not module._forward_hooks, f"forward hook left on {name or 'model'}"
        assert not module._forward_pre_hooks, f"forward pre-hook left on {name or 'model'}"
        assert not module._backward_hooks, f"backward hook left on {name or 'model'}"
        assert "forward" not in vars(module), f"{name or 'model'}.forward was patched"
    for _, _, module in model.attention_modules():
        assert module.fused_attn, "fused attention not restored"
    assert not any(m.lrp for m in model.modules() if hasattr(m, "lrp")), "relevance rules left on"


def test_many_with_blocks_leave_nothing_behind(model):
    with torch.no_grad():
        tokens = model.embed(random_clips(model, 1, seed=1))  # the transformer is what the capture touches
    for i in range(12):
        backward = i % 4 == 0  # a few with gradients, the rest forward only
        with AttentionCapture(model, gradients=backward) as cap:
            assert cap.active
            x = tokens.clone().requires_grad_(backward)
            with torch.set_grad_enabled(backward):
                out = model.forward_head(model.forward_blocks(x))
            if backward:
                torch.autograd.grad(out.sum(), x)
                assert len(cap.grads) == 2 * model.config.depth
            assert len(cap.maps) == 2 * model.config.depth
        assert not cap.active
        model.zero_grad(set_to_none=True)
    assert_clean(model)


@pytest.mark.parametrize("method", ["attention", "rollout", "relevance", "lrp", "spatial-only", "temporal-only",
                                    "integrated-gradients", "saliency", "occlusion", "frame-ablation"])
def test_every_method_releases_its_hooks(model, method):
    for _ in range(2):
        explain(model, random_clips(model, 1, seed=1), method=method, **FAST.get(method, {}))
    assert_clean(model)
    assert all(p.grad is None for p in model.parameters()), "a method left gradients on the weights"


class Boom(RuntimeError):
    pass


def test_capture_releases_after_an_exception(model):
    with pytest.raises(Boom), AttentionCapture(model, gradients=True):
        assert not next(iter(model.attention_modules()))[2].fused_attn
        raise Boom()
    assert_clean(model)


@pytest.mark.parametrize("method", ["relevance", "lrp", "rollout"])
def test_methods_release_after_a_failure_inside_the_forward(model, method):
    """A hook that raises in the middle of the forward (inside the LRP pass for lrp)."""
    def explode(module, args, output):
        if method != "lrp" or model.norm.lrp:
            raise Boom("forced failure")

    handle = model.norm.register_forward_hook(explode)
    try:
        with pytest.raises(Boom):
            explain(model, random_clips(model, 2, seed=2), method=method)
    finally:
        handle.remove()
    assert_clean(model)


def test_lrp_rules_are_switched_back_after_an_exception(model):
    with pytest.raises(Boom), lrp_rules(model):
        raise Boom()
    assert_clean(model)


def test_capture_reads_the_batch_from_a_forward_that_starts_at_the_tokens(model):
    x = random_clips(model, 2, seed=2)
    with AttentionCapture(model) as cap, torch.no_grad():
        model.forward_blocks(model.embed(x))
        c = model.config
        assert cap.attention(0, "spatial").shape == (2, c.frames + 1, c.heads, c.tokens_per_frame,
                                                     c.tokens_per_frame)
        assert cap.attention(1, "temporal").shape == (2, c.tokens_per_frame, c.heads, c.frames + 1,
                                                      c.frames + 1)
