"""The ISTVT model against the architecture facts of docs/model.md."""

from __future__ import annotations

import pickle

import pytest
import timm
import torch
from support import PRESET, random_clips, tiny_model

import istvt_explain as ie
from istvt_explain.models import (
    ISTVTConfig,
    filter_xception_state_dict,
    read_config,
    token_grid_size,
)
from istvt_explain.models.layers import SpatialAttention, TemporalAttention, self_subtract


@pytest.fixture(scope="module")
def paper_model() -> ie.ISTVT:
    return ie.create_model("paper")


def test_paper_preset_has_the_published_parameter_counts(paper_model):
    assert paper_model.transformer_parameters() == 88_361_001
    assert paper_model.backbone_parameters() == 1_106_760
    assert sum(p.numel() for p in paper_model.parameters()) == 89_467_761


def test_paper_preset_has_the_published_shapes_and_a_19_by_19_grid(paper_model):
    c = paper_model.config
    assert (c.frames, c.image_size, c.embed_dim, c.depth, c.heads, c.dim_head, c.mlp_dim) == (
        6, 300, 728, 12, 8, 64, 2912)
    assert c.grid == 19 and c.tokens_per_frame == 362
    assert tuple(paper_model.pos_embed.shape) == (1, 6, 362, 728)
    assert isinstance(paper_model.proj, torch.nn.Identity)  # raw 728-d features, no projection
    frame = torch.rand(1, 3, 300, 300) * 2 - 1
    with torch.inference_mode():
        assert tuple(paper_model.backbone(frame).shape) == (1, 728, 19, 19)


def test_entry_flow_is_timm_legacy_xception_up_to_block3():
    full = timm.create_model("legacy_xception", pretrained=False)
    model = tiny_model()
    model.backbone.load_state_dict(filter_xception_state_dict(full.state_dict()))
    x = torch.rand(2, 3, 64, 64)
    full.eval()
    with torch.inference_mode():
        ref = x
        for name in ("conv1", "bn1", "act1", "conv2", "bn2", "act2", "block1", "block2", "block3"):
            ref = getattr(full, name)(ref)
        torch.testing.assert_close(model.backbone(x), ref)


@pytest.mark.parametrize("size,grid", [(300, 19), (160, 10), (224, 14), (64, 4), (299, 19), (48, 3)])
def test_token_grid_size_matches_the_backbone_output(size, grid):
    assert token_grid_size(size) == grid
    model = tiny_model(image_size=size, frames=PRESET, depth=1)
    assert model.config.grid == grid
    with torch.inference_mode():
        assert model.backbone(torch.rand(1, 3, size, size)).shape[-2:] == (grid, grid)


@pytest.mark.parametrize("preset", ["tiny", "small"])
def test_every_preset_gives_one_finite_logit_per_clip(preset):
    model = ie.create_model(preset, frames=2, depth=1) if preset == "small" else ie.create_model(preset)
    clips = random_clips(model, 2)
    with torch.inference_mode():
        out = model(clips)
    assert out.shape == (2,) and torch.isfinite(out).all()


def test_a_multiclass_head_gives_a_logit_per_class_at_any_frame_count():
    model = tiny_model(frames=4, depth=1, num_classes=3)
    with torch.inference_mode():
        assert model(random_clips(model, 2)).shape == (2, 3)


@pytest.mark.parametrize("bad", [{"frames": 1}, {"image_size": 20}, {"depth": 0}, {"unknown_key": 3}])
def test_bad_config_is_rejected(bad):
    with pytest.raises(ValueError):
        ie.create_model("tiny", **bad)


def test_wrong_clip_shape_gets_a_clear_error():
    model = tiny_model()
    with pytest.raises(ValueError, match="frames"):
        model(torch.zeros(1, 4, 3, 64, 64))
    with pytest.raises(ValueError, match="64 x 64"):
        model(torch.zeros(1, 3, 3, 96, 96))
    with pytest.raises(ValueError, match=r"\(B, T, 3, H, W\)"):
        model(torch.zeros(3, 3, 64, 64))
    with pytest.raises(ValueError, match="unknown model preset"):
        ie.create_model("huge")


def test_self_subtract_of_identical_frames_is_zero_after_the_first():
    frame = torch.randn(5, 1, 8)
    cls = torch.randn(5, 1, 8)
    x = torch.cat([cls, frame.expand(5, 4, 8)], dim=1)  # class row + 4 identical frames
    r = self_subtract(x)
    torch.testing.assert_close(r[:, :2], x[:, :2])
    assert torch.count_nonzero(r[:, 2:]) == 0
    y = torch.randn(3, 6, 8)
    torch.testing.assert_close(self_subtract(y)[:, 3], y[:, 3] - y[:, 2])


def test_temporal_attention_uses_subtracted_queries_and_original_values():
    attn = TemporalAttention(dim=16, heads=2, dim_head=8)
    seen = {}
    attn.to_qk.register_forward_hook(lambda m, i, o: seen.__setitem__("qk", i[0]))
    attn.to_v.register_forward_hook(lambda m, i, o: seen.__setitem__("v", i[0]))
    frame = torch.randn(1, 1, 5, 16)
    x = torch.cat([torch.randn(1, 1, 5, 16), frame.expand(1, 3, 5, 16)], dim=1)  # (B, T+1, S, D)
    attn(x)
    assert torch.count_nonzero(seen["qk"][:, 2:]) == 0
    torch.testing.assert_close(seen["v"], x.permute(0, 2, 1, 3).reshape(5, 4, 16))


@pytest.mark.parametrize("cls", [TemporalAttention, SpatialAttention])
def test_fused_equals_explicit_attention(cls):
    torch.manual_seed(1)
    attn = cls(dim=32, heads=4, dim_head=8).eval()
    x = torch.randn(2, 5, 7, 32)
    attn.fused_attn = True
    fused = attn(x)
    attn.fused_attn = False
    explicit = attn(x)
    torch.testing.assert_close(fused, explicit, rtol=1e-5, atol=1e-5)


def test_fused_equals_explicit_model():
    model = tiny_model(image_size=PRESET, frames=PRESET, depth=PRESET)
    clips = random_clips(model, 2, seed=3)
    with torch.inference_mode():
        fused = model(clips)
        with ie.AttentionCapture(model):
            explicit = model(clips)
    torch.testing.assert_close(fused, explicit, rtol=1e-5, atol=1e-5)


def test_gradient_reaches_every_parameter():
    model = tiny_model().train()
    clips = random_clips(model, 2, seed=4)
    loss = torch.nn.functional.binary_cross_entropy_with_logits(model(clips), torch.tensor([0.0, 1.0]))
    loss.backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and torch.count_nonzero(p.grad) > 0, name


def test_input_is_not_modified():
    model = tiny_model()
    clips = random_clips(model, 2)
    before = clips.clone()
    with torch.inference_mode():
        model(clips)
    torch.testing.assert_close(clips, before, rtol=0, atol=0)


def test_capture_gives_maps_and_gradients_of_the_documented_shapes_then_releases_the_model():
    model = tiny_model()
    c = model.config
    clips = random_clips(model, 2)
    with ie.AttentionCapture(model, gradients=True) as cap:
        model(clips).sum().backward()
        assert cap.attention(0, "temporal").shape == (2, c.tokens_per_frame, c.heads, c.frames + 1, c.frames + 1)
        assert cap.attention(1, "spatial").shape == (
            2, c.frames + 1, c.heads, c.tokens_per_frame, c.tokens_per_frame)
        assert cap.gradient(1, "temporal").shape == cap.attention(1, "temporal").shape
        rows = cap.attention(0, "spatial").sum(-1)
        torch.testing.assert_close(rows, torch.ones_like(rows))
    assert all(m.fused_attn for _, _, m in model.attention_modules())
    assert all(not m.probe._forward_hooks for _, _, m in model.attention_modules())
    assert not model._forward_pre_hooks


def test_a_saved_checkpoint_loads_back_with_the_same_config_weights_and_outputs(tmp_path):
    model = tiny_model()
    path = tmp_path / "ckpt.safetensors"
    ie.save_checkpoint(model, path, extra={"epoch": 3})
    assert read_config(path) == model.config
    assert not list(tmp_path.glob("*.part"))
    loaded = ie.load_model(path)
    clips = random_clips(model, 2)
    with torch.inference_mode():
        torch.testing.assert_close(loaded(clips), model(clips), rtol=0, atol=0)
    again = tiny_model(weights=path)
    for (k, a), b in zip(model.state_dict().items(), again.state_dict().values(), strict=True):
        assert torch.equal(a, b), k


def test_checkpoint_from_another_preset_is_refused(tmp_path):
    path = tmp_path / "tiny.safetensors"
    ie.save_checkpoint(tiny_model(), path)
    with pytest.raises(ie.CheckpointError, match="preset 'tiny'"):
        ie.create_model("small", weights=path, frames=3, depth=2, image_size=64)


@pytest.mark.parametrize("content", [b"", b"not a checkpoint at all", b"\x80\x04\x95garbage"])
def test_corrupt_checkpoint_is_refused(tmp_path, content):
    path = tmp_path / "bad.safetensors"
    path.write_bytes(content)
    with pytest.raises(ie.CheckpointError, match="bad.safetensors"):
        ie.load_model(path)
    pth = tmp_path / "bad.pth"
    pth.write_bytes(content)
    with pytest.raises(ie.CheckpointError, match="bad.pth"):
        tiny_model(weights=pth)


def test_loading_a_pickle_never_runs_code_from_it(tmp_path, pickle_exploit):
    marker = pickle_exploit.marker
    path = tmp_path / "evil.pth"
    path.write_bytes(pickle.dumps({"conv1.weight": pickle_exploit}))
    with pytest.raises(ie.CheckpointError):
        tiny_model(backbone_weights=path)
    assert not marker.exists()


def test_xception_weights_load_from_timm_and_faceforensics_layouts_and_others_are_refused(tmp_path):
    full = timm.create_model("legacy_xception", pretrained=False)
    state = full.state_dict()
    torch.save(state, tmp_path / "timm.pth")
    # The FaceForensics++ file: 2-D pointwise weights, a `last_linear` head, a wrapper prefix.
    ff = {}
    for key, value in state.items():
        if key.endswith("pointwise.weight"):
            value = value[:, :, 0, 0].clone()
        ff["module." + key.replace("fc.", "last_linear.")] = value
    torch.save({"state_dict": ff}, tmp_path / "xception-b5690688.pth")
    for name in ("timm.pth", "xception-b5690688.pth"):
        model = tiny_model(backbone_weights=tmp_path / name)
        torch.testing.assert_close(model.backbone.block3.skip.weight, full.block3.skip.weight)
        torch.testing.assert_close(model.backbone.block2.rep[1].pointwise.weight,
                                   full.block2.rep[1].pointwise.weight)
    torch.save({"something": torch.zeros(3)}, tmp_path / "other.pth")
    with pytest.raises(ie.CheckpointError, match="not an Xception checkpoint"):
        tiny_model(backbone_weights=tmp_path / "other.pth")


def test_config_survives_a_dict_round_trip():
    config = ISTVTConfig(name="x", frames=4, image_size=128, embed_dim=64, depth=2, heads=2, dim_head=16)
    assert ISTVTConfig.from_dict(config.to_dict()) == config
