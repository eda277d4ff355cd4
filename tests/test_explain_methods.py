"""Every explanation method through ``explain``: shapes, targets, batches, input safety, Captum agreement."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from support import random_clips, tiny_model

import istvt_explain as ie
from istvt_explain.attribution import Explanation, available_methods, explain, get_method
from istvt_explain.attribution.base import class_scores

# Cheap settings for the costly baselines (64 px crops, 3 frames: a 4 x 4 grid).
FAST = {"integrated-gradients": {"n_steps": 4}, "occlusion": {"patch": 32, "stride": 32}}
ALL = ["attention", "rollout", "relevance", "lrp", "spatial-only", "temporal-only", "integrated-gradients",
       "saliency", "occlusion", "frame-ablation"]


@pytest.fixture(scope="module")
def model() -> ie.ISTVT:
    return tiny_model(seed=0)


def test_registry_holds_every_method_with_a_label():
    assert set(ALL) <= set(available_methods())
    for name in ALL:
        assert get_method(name).name == name and get_method(name).label


@pytest.mark.parametrize("method", ALL)
@pytest.mark.parametrize("batch", [1, 2])
@pytest.mark.parametrize("target", [None, "real"])
def test_every_method_gives_finite_maps_of_the_clip_shape_for_any_batch_and_target(model, method, batch, target):
    clips = random_clips(model, batch, seed=batch)
    before = clips.clone()
    exp = explain(model, clips, method=method, target=target, **FAST.get(method, {}))
    c = model.config
    assert isinstance(exp, Explanation)
    assert exp.spatial.shape == (batch, c.frames, c.grid, c.grid)
    assert exp.temporal.shape == (batch, c.frames)
    assert exp.fake_probability.shape == (batch,)
    assert torch.isfinite(exp.spatial).all() and torch.isfinite(exp.temporal).all()
    assert exp.method == method and exp.target == (None if target is None else 0)
    assert exp.to_pixels(c.image_size, c.image_size).shape == (batch, c.frames, c.image_size, c.image_size)
    assert torch.equal(clips, before), "the caller's clips were modified"
    assert not clips.requires_grad


def test_per_clip_targets_match_single_target_runs(model):
    clips = random_clips(model, 2, seed=5)
    both = explain(model, clips, method="relevance", target=[1, 0])
    fake = explain(model, clips[:1], method="relevance", target="fake")
    real = explain(model, clips[1:], method="relevance", target="real")
    torch.testing.assert_close(both.spatial[:1], fake.spatial, rtol=1e-4, atol=1e-7)
    torch.testing.assert_close(both.spatial[1:], real.spatial, rtol=1e-4, atol=1e-7)
    assert both.target is None


def test_target_changes_gradient_methods(model):
    clips = random_clips(model, 1, seed=6)
    fake = explain(model, clips, method="relevance", target="fake")
    real = explain(model, clips, method="relevance", target="real")
    assert not torch.allclose(fake.spatial, real.spatial)
    torch.testing.assert_close(fake.extras["target_probability"] + real.extras["target_probability"],
                               torch.ones(1))


def test_batch_elements_are_independent(model):
    clips = random_clips(model, 2, seed=7)
    for method in ("rollout", "relevance", "lrp", "saliency"):
        batched = explain(model, clips, method=method)
        single = explain(model, clips[1:], method=method)
        torch.testing.assert_close(batched.spatial[1:], single.spatial, rtol=1e-3, atol=1e-6)


def test_saliency_equals_plain_autograd(model):
    """Captum's Saliency and our own gradient coincide: |d fake logit / d pixel|, pooled to tokens."""
    clips = random_clips(model, 2, seed=8)
    exp = explain(model, clips, method="saliency")
    x = clips.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(class_scores(model, model(x))[:, 1].sum(), x)
    per_pixel = grad.abs().sum(dim=2)
    b, t, h, w = per_pixel.shape
    g = model.config.grid
    expected = F.adaptive_avg_pool2d(per_pixel.reshape(b * t, 1, h, w), g).reshape(b, t, g, g)
    torch.testing.assert_close(exp.spatial, expected, rtol=1e-4, atol=1e-8)


def test_relevance_gradients_match_autograd_through_the_whole_model(model):
    """The capture-based gradient at a map equals a full backward's (embedding graph cut changes nothing)."""
    from istvt_explain.attribution import AttentionCapture

    clips = random_clips(model, 1, seed=9)
    method = get_method("relevance")(model)
    maps, grads, logits, index, _ = method._gradient_pass(clips, None)
    with AttentionCapture(model, gradients=True) as cap:
        model(clips).sum().backward()
        ref = cap.gradient(1, "spatial")
    model.zero_grad(set_to_none=True)
    torch.testing.assert_close(grads[(1, "spatial")], ref, rtol=1e-4, atol=1e-9)


def test_integrated_gradients_reports_a_small_delta(model):
    exp = explain(model, random_clips(model, 1, seed=10), method="integrated-gradients", n_steps=32)
    assert exp.extras["delta"].abs().max() < 0.05


def test_frame_ablation_is_constant_within_a_frame(model):
    exp = explain(model, random_clips(model, 1, seed=11), method="frame-ablation")
    flat = exp.spatial.flatten(2)
    torch.testing.assert_close(flat, flat[..., :1].expand_as(flat))


def test_uniform_attention_model_gives_uniform_rollout():
    """Zero query/key weights make every softmax uniform: the rollout map of each frame is flat."""
    model = tiny_model(seed=1)
    with torch.no_grad():
        for block in model.blocks:
            inner = block.attn_s.heads * block.attn_s.dim_head
            block.attn_t.to_qk.weight.zero_()
            block.attn_s.to_qkv.weight[: 2 * inner].zero_()
    exp = explain(model, random_clips(model, 1, seed=12), method="rollout")
    flat = exp.spatial.flatten(2)
    torch.testing.assert_close(flat, flat[..., :1].expand_as(flat))
    torch.testing.assert_close(exp.temporal, exp.temporal[:, :1].expand_as(exp.temporal))


def test_dtype_and_device_come_from_the_model():
    model = tiny_model(image_size=32, depth=1).double()  # a 2 x 2 grid
    clips = random_clips(model, 1).float()
    exp = explain(model, clips, method="relevance")
    assert exp.spatial.dtype == torch.float64 and exp.spatial.device == clips.device


def test_training_mode_is_restored(model):
    model.train()
    try:
        explain(model, random_clips(model, 1), method="rollout")
        assert model.training
    finally:
        model.eval()


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"method": "gradcam++"}, "unknown explanation method"),
    ({"method": "rollout", "fusion": "median"}, "head fusion"),
    ({"method": "rollout", "colour": 1}, "unknown option"),
    ({"method": "relevance", "target": 3}, "out of range"),
    ({"method": "relevance", "target": [0, 1, 1]}, "targets for a batch"),
])
def test_bad_requests_raise_value_error(model, kwargs, message):
    with pytest.raises(ValueError, match=message):
        explain(model, random_clips(model, 2), **kwargs)


def test_bad_clips_raise_value_error(model):
    with pytest.raises(ValueError, match="frames"):
        explain(model, torch.zeros(1, 5, 3, 64, 64), method="rollout")
    with pytest.raises(ValueError, match="torch.Tensor"):
        explain(model, [[0.0]], method="rollout")


def test_raw_attention_reads_the_last_block_paths_the_logit_uses(model):
    """A slow loop over (t, s) from the captured maps: As[0][0, s] * At[s][0, t], heads averaged.
    The gradient of the logit is zero on the spatial rows of frames t >= 1 in the last block, and
    non-zero on the class row, so those are the rows the map must come from."""
    from istvt_explain.attribution import AttentionCapture

    clips = random_clips(model, 1, seed=21)
    exp = explain(model, clips, method="attention")
    last = model.config.depth - 1
    with AttentionCapture(model, gradients=True) as cap:
        model(clips).sum().backward()
        sa = cap.attention(last, "spatial")[0].mean(dim=1)  # (T+1, N+1, N+1)
        ta = cap.attention(last, "temporal")[0].mean(dim=1)  # (N+1, T+1, T+1)
        grad_s = cap.gradient(last, "spatial")
    model.zero_grad(set_to_none=True)
    frames, tokens = sa.shape[0] - 1, sa.shape[1] - 1
    expected = torch.zeros(frames, tokens)
    for t in range(frames):
        for s in range(tokens):
            expected[t, s] = sa[0, 0, s + 1] * ta[s + 1, 0, t + 1]
    g = model.config.grid
    torch.testing.assert_close(exp.spatial[0], expected.reshape(frames, g, g))
    torch.testing.assert_close(exp.temporal[0], expected.sum(dim=1))
    grad_s = grad_s.reshape(-1, *grad_s.shape[-4:])[0] if grad_s.dim() > 4 else grad_s
    assert grad_s[1:].abs().max() == 0 and grad_s[0].abs().max() > 0


@pytest.mark.parametrize("method", ["attention", "rollout", "relevance", "lrp", "temporal-only"])
def test_frame_importance_is_the_mass_of_the_frames_patches(model, method):
    """The class-token column is a learned constant input: it is reported apart, never in the curve."""
    exp = explain(model, random_clips(model, 2, seed=22), method=method)
    torch.testing.assert_close(exp.temporal, exp.spatial.flatten(2).sum(dim=-1))
    column = exp.extras["class_token_importance"]
    assert column.shape == exp.temporal.shape and column.abs().sum() > 0


def test_integrated_gradients_add_up_to_the_score_difference():
    """Completeness on a model whose score moves a lot between the grey baseline and the clip."""
    strong = tiny_model(depth=1, seed=3)
    with torch.no_grad():
        strong.head[-1].weight.mul_(200.0)
    clips = random_clips(strong, 1, seed=23)
    with torch.no_grad():
        difference = (strong(clips) - strong(torch.zeros_like(clips))).item()
    assert abs(difference) > 1.0
    exp = explain(strong, clips, method="integrated-gradients", n_steps=64)
    assert exp.temporal.sum().item() == pytest.approx(difference, rel=0.05)
    assert exp.extras["pixels"].sum().item() == pytest.approx(difference, rel=0.05)


def test_explain_batches_keeps_each_target_with_its_clip(model):
    """More clips than one batch holds, each with its own target: every clip is explained for its own."""
    from istvt_explain.attribution import explain_batches

    clips = random_clips(model, 5, seed=21)
    targets = [1, 0, 0, 1, 0]
    joined = explain_batches(model, clips, "relevance", target=targets, batch_size=2)
    assert joined.extras["target_index"].tolist() == targets
    for i, target in enumerate(targets):
        alone = explain(model, clips[i:i + 1], method="relevance", target=target)
        torch.testing.assert_close(joined.spatial[i:i + 1], alone.spatial, rtol=1e-4, atol=1e-6)


def test_explain_batches_halves_a_batch_the_device_has_no_memory_for(model):
    """An out-of-memory call is done again at half the size: every clip once, in order, targets kept."""
    from istvt_explain.attribution import explain_batches

    clips = random_clips(model, 7, seed=22)
    targets = [1, 0, 1, 1, 0, 0, 1]
    sizes: list[int] = []

    def small_device(net, inputs, *, method, target, **options):
        sizes.append(len(inputs))
        if len(inputs) > 2:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return explain(net, inputs, method=method, target=target, **options)

    joined = explain_batches(model, clips, "relevance", target=targets, batch_size=8, explain_fn=small_device)
    assert sizes == [7, 4, 2, 2, 2, 1]  # 8 (7 clips) fails, 4 fails, then 2 at a time to the end
    assert joined.extras["target_index"].tolist() == targets
    whole = explain(model, clips, method="relevance", target=targets)
    torch.testing.assert_close(joined.spatial, whole.spatial, rtol=1e-4, atol=1e-6)

    def no_memory_at_all(net, inputs, **kwargs):
        raise torch.OutOfMemoryError("CUDA out of memory")

    with pytest.raises(torch.OutOfMemoryError):
        explain_batches(model, clips, "relevance", batch_size=4, explain_fn=no_memory_at_all)


def test_the_default_batch_is_small_on_the_cpu_and_large_on_a_gpu():
    from istvt_explain.attribution.batching import default_batch_size
    from istvt_explain.pipeline import PipelineOptions

    assert default_batch_size("cpu") == 4 and default_batch_size(torch.device("cuda", 0)) == 32
    assert PipelineOptions().clips_per_call("cuda") == 32
    assert PipelineOptions(batch_size=3).clips_per_call("cuda") == 3
