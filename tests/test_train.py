"""Training: config checking, a tiny run, checkpoints, skipped clips, and resume == straight run."""

from __future__ import annotations

import math

import pytest
import torch
from safetensors.torch import load_file
from support import SMALL, tiny_model

from istvt_explain.cli import main
from istvt_explain.data.synthetic import SyntheticClipDataset
from istvt_explain.models import CheckpointError, load_model
from istvt_explain.train import ConfigError, available_configs, config_from_dict, fit, load_config
from istvt_explain.train.logs import read_metrics
from istvt_explain.train.state import load_state


def tiny_config(**top):
    raw = {
        "name": "test",
        "model": {"preset": "tiny", "overrides": dict(SMALL)},
        "data": {"kind": "pseudofake_pictures", "train_clips": 8, "val_clips": 4, "test_clips": 6},
        "optim": {"name": "adamw", "lr": 1e-3, "warmup_epochs": 0.5, "min_lr_ratio": 0.1},
        "epochs": 2, "batch_size": 2, "eval_batch_size": 4, "seed": 3, "device": "cpu", "threads": 1,
    }
    raw.update(top)
    return config_from_dict(raw)


def data(length=8, **kw):
    return SyntheticClipDataset(length, SMALL["frames"], SMALL["image_size"], **kw)


def test_shipped_training_configs_load_with_their_documented_settings():
    assert {"demo", "ffpp_c23_paper", "pseudofake"} <= set(available_configs())
    paper = load_config("ffpp_c23_paper")
    assert (paper.optim.name, paper.optim.lr, paper.optim.momentum, paper.batch_size, paper.epochs) == \
        ("sgd", 1e-3, 0.9, 16, 20)
    assert paper.model.preset == "paper"
    demo = load_config("demo")
    assert demo.model.preset == "tiny" and demo.model.overrides == {}
    assert "grace_hopper" not in demo.data.train_pictures and demo.data.test_pictures[:2] == ["grace_hopper", "carphone"]
    wide = load_config("demo_wide")  # stage 2: more training people, the same held-out ones
    assert wide.data.test_pictures == demo.data.test_pictures and set(demo.data.train_pictures) < set(wide.data.train_pictures)
    swap = load_config("demo_swap")  # stage 2 with face swaps: the same held-out people, half the fakes swapped
    assert swap.data.test_pictures == demo.data.test_pictures and swap.data.swap_share == 0.5
    assert set(swap.data.swap_blends) == {"alpha", "poisson"} and demo.data.swap_share == 0.0
    more = load_config("demo_swap_more")  # the same recipe and held-out people, 18 more training people
    assert more.data.test_pictures == demo.data.test_pictures and more.data.swap_share == 0.5
    added = set(more.data.train_pictures) - set(swap.data.train_pictures)
    assert len(added) == 18 and {"caltech_f01", "vitallens_1"} <= added
    clean = load_config("demo_swap_clean")  # the diagnostic: swaps only, nothing degraded, sharp colour people only
    assert clean.data.test_pictures == demo.data.test_pictures and clean.data.swap_share == 1.0
    assert set(clean.data.degrade.values()) == {0.0} and not clean.data.degrade_eval
    assert not {"camera", "lfw_subset[0:80]"} & set(clean.data.train_pictures)


@pytest.mark.parametrize("raw, key", [
    ({"optim": {"lrr": 0.1}}, "optim.lrr"),
    ({"epoch": 3}, "epoch"),
    ({"optim": {"lr": "fast"}}, "optim.lr"),
    ({"batch_size": 0}, "batch_size"),
    ({"data": {"kind": "videos"}}, "data.kind"),
    ({"model": {"overrides": {"depht": 2}}}, "model.overrides"),
    ({"data": {"kind": "cached"}}, "data.cache_dir"),
])
def test_bad_config_names_the_key(raw, key):
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        config_from_dict(raw)


def test_cli_refuses_bad_key(tmp_path, capsys):
    path = tmp_path / "c.yaml"
    path.write_text("optim:\n  learning_rate: 0.1\n")
    assert main(["train", "--config", str(path), "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert "optim.learning_rate" in err and len(err.strip().splitlines()) == 1


def test_fit_writes_checkpoints_logs_and_skips_broken_clips(tmp_path):
    out = tmp_path / "run"
    with pytest.warns(UserWarning, match="skipping item"):
        result = fit(tiny_config(), out, train_set=data(8, broken=(2,)), val_set=data(4, seed=9),
                     progress=False)
    assert result.epochs_done == 2 and not result.stopped_early
    rows = read_metrics(out / "metrics.csv")
    assert [int(r["epoch"]) for r in rows] == [1, 2]
    assert sum(int(r["skipped"]) for r in rows) >= 1  # counted in the epoch summary, never a crash
    assert all(math.isfinite(float(r["train_loss"])) for r in rows)
    for name in ("last", "best"):
        model = load_model(out / f"{name}.safetensors")
        assert model.config.image_size == 64 and model.config.depth == 2
    state = load_state(out / "state" / "last.pt")  # weights_only=True inside
    assert state["progress"]["epoch"] == 2
    assert any((out / "tensorboard").iterdir())


def test_resume_ends_where_a_straight_run_ends(tmp_path):
    config = tiny_config(epochs=2, checkpoint_every_steps=2)
    straight = fit(config, tmp_path / "straight", train_set=data(), val_set=data(4, seed=9), progress=False,
                   tensorboard=False)
    # Killed after 3 steps (mid-epoch 1: 4 steps per epoch), then resumed twice over.
    first = fit(config, tmp_path / "resumed", train_set=data(), val_set=data(4, seed=9), progress=False,
                stop_after_steps=3, tensorboard=False)
    assert first.stopped_early and first.global_step == 3
    second = fit(config, tmp_path / "resumed", train_set=data(), val_set=data(4, seed=9), progress=False,
                 stop_after_steps=5, resume=True, tensorboard=False)
    assert second.stopped_early and second.epochs_done == 1
    resumed = fit(config, tmp_path / "resumed", train_set=data(), val_set=data(4, seed=9), progress=False,
                  resume=True, tensorboard=False)
    assert resumed.global_step == straight.global_step == 8
    a = load_file(str(tmp_path / "straight" / "last.safetensors"))
    b = load_file(str(tmp_path / "resumed" / "last.safetensors"))
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=0, atol=0, msg=key)
    assert resumed.best_score == straight.best_score


def test_resume_refuses_a_state_of_another_model(tmp_path):
    fit(tiny_config(epochs=1), tmp_path / "run", train_set=data(), val_set=data(4), progress=False,
        tensorboard=False)
    other = config_from_dict({**tiny_config(epochs=1).to_dict(),
                              "model": {"preset": "tiny", "overrides": {**SMALL, "depth": 1}}})
    with pytest.raises(CheckpointError, match="resume it with its own config"):
        fit(other, tmp_path / "run", train_set=data(), val_set=data(4), progress=False, resume=True,
            tensorboard=False)


def test_truncated_state_is_refused_clearly(tmp_path):
    path = tmp_path / "state" / "last.pt"
    path.parent.mkdir()
    path.write_bytes(b"PK\x03\x04 truncated")
    with pytest.raises(CheckpointError, match="unreadable or corrupt training state"):
        load_state(path)


def test_pseudofake_pictures_items_follow_the_clip_contract():
    from istvt_explain.data.datasets.pseudofake import PictureClipSource, PseudoFakeDataset

    ds = PseudoFakeDataset(PictureClipSource(["astronaut", "camera"], 3, 64), 4, seed=1, blend="builtin")
    items = [ds[i] for i in range(4)]
    assert [it["label"] for it in items] == [0.0, 1.0, 0.0, 1.0]
    for it in items:
        assert it["clip"].shape == (3, 3, 64, 64) and it["clip"].dtype == torch.float32
        assert -1.0 <= float(it["clip"].min()) and float(it["clip"].max()) <= 1.0
        assert it["mask"].shape == (3, 64, 64)
    assert float(items[0]["mask"].max()) == 0.0 and float(items[1]["mask"].max()) > 0.3
    ds.set_epoch(0)
    torch.testing.assert_close(ds[1]["clip"], items[1]["clip"])  # the same draw for the same (epoch, index)
    ds.set_epoch(1)
    assert not torch.equal(ds[1]["clip"], items[1]["clip"])  # fresh augmentation each epoch


def test_interrupted_state_write_keeps_the_previous_state(tmp_path, monkeypatch):
    out = tmp_path / "run"
    fit(tiny_config(epochs=1), out, train_set=data(), val_set=data(4), progress=False, tensorboard=False)
    path = out / "state" / "last.pt"
    before = path.read_bytes()

    def full_disk(obj, f, *args, **kwargs):
        with open(f, "wb") as fh:
            fh.write(b"PK\x03\x04 half")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(torch, "save", full_disk)
    with pytest.raises(OSError, match="No space"):
        fit(tiny_config(epochs=2), out, train_set=data(), val_set=data(4), progress=False, tensorboard=False,
            resume=True)
    assert path.read_bytes() == before
    assert not [p for p in path.parent.iterdir() if p.name != "last.pt"]  # no half-written leftovers
    assert load_state(path)["progress"]["epoch"] == 1


def test_pair_groups_stay_together_and_shards_are_disjoint():
    from istvt_explain.train.state import ResumableSampler

    class Pairs(torch.utils.data.Dataset):
        group_size = 2

        def __len__(self) -> int:
            return 20

        def __getitem__(self, index: int) -> int:
            return index

    shards = []
    for rank in range(2):
        sampler = ResumableSampler(Pairs(), num_replicas=2, rank=rank, seed=3)
        sampler.set_epoch(1)
        order = list(sampler)
        assert len(order) == len(sampler) == 10
        assert all(order[i] // 2 == order[i + 1] // 2 and order[i] % 2 == 0 for i in range(0, 10, 2))
        shards.append(set(order))
    assert shards[0].isdisjoint(shards[1]) and shards[0] | shards[1] == set(range(20))
    sampler = ResumableSampler(Pairs(), seed=3)
    sampler.set_start(4)
    full = ResumableSampler(Pairs(), seed=3)
    assert list(sampler) == list(full)[4:]


def test_pseudofake_pairs_differ_only_by_the_blend():
    from istvt_explain.data.datasets.pseudofake import PictureClipSource, PseudoFakeDataset
    from istvt_explain.data.degrade import DegradeOptions

    # Pixel-exact outside the blend for pointwise degradations (blur, scaling and codecs spread a change a few
    # pixels: see test_train_material).
    no_codec = DegradeOptions(jpeg=0.0, h264=0.0, colour=1.0, downscale=0.0, blur=0.0, noise=1.0)
    data = PseudoFakeDataset(PictureClipSource(["astronaut"], frames=2, size=64), length=4, blend="builtin",
                             degrade=no_codec)
    real, fake = data[2], data[3]
    assert real["label"] == 0.0 and fake["label"] == 1.0
    outside = fake["mask"] == 0
    assert torch.equal(real["clip"].permute(1, 0, 2, 3)[:, outside], fake["clip"].permute(1, 0, 2, 3)[:, outside])
    assert not torch.equal(real["clip"], fake["clip"])


def test_train_command_calibrates_the_best_checkpoint(tmp_path, capsys):
    import json

    import yaml

    from istvt_explain.models import read_temperature

    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(tiny_config(epochs=1).to_dict()))
    out = tmp_path / "run"
    assert main(["train", "--config", str(path), "--out", str(out), "--no-progress"]) == 0
    report = json.loads((out / "calibration.json").read_text())
    assert read_temperature(out / "calibrated.safetensors") == pytest.approx(report["temperature"])
    assert read_temperature(out / "best.safetensors") == 1.0  # the trained weights stay as they were
    assert "ECE" in capsys.readouterr().out


def test_a_fresh_run_over_a_folder_holding_a_run_is_refused_without_resume_or_force(tmp_path, capsys):
    """Before: a forgotten --resume started epoch 1 again and overwrote the state at its end, silently."""
    import yaml

    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(tiny_config(epochs=1).to_dict()))
    out = tmp_path / "run"
    argv = ["train", "--config", str(path), "--out", str(out), "--no-progress", "--no-calibrate"]
    assert main(argv) == 0
    state = (out / "state" / "last.pt").read_bytes()
    capsys.readouterr()
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err == (f"istvt-explain: error: {out}: holds a training run (state/last.pt); give --resume to go on "
                   "from it, or --force to start a fresh run over it")
    assert (out / "state" / "last.pt").read_bytes() == state
    assert main([*argv, "--force"]) == 0


def test_mask_head_trains_but_never_reaches_checkpoints_or_the_returned_model(tmp_path):
    from istvt_explain.train.mask_head import MaskHead

    model = tiny_model(**SMALL)
    head = MaskHead(model)
    clips = torch.rand(2, SMALL["frames"], 3, 64, 64) * 2 - 1
    masks = torch.zeros(2, SMALL["frames"], 64, 64)
    masks[..., :32, :32] = 1.0  # the top-left quarter of every frame was blended
    model(clips)
    loss = head.loss(masks)
    loss.backward()
    assert torch.isfinite(loss) and head.proj.weight.grad.abs().sum() > 0
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.blocks.parameters())
    head.remove()
    assert not model.norm._forward_hooks

    out = tmp_path / "run"
    result = fit(tiny_config(epochs=1, mask_loss_weight=1.0), out, progress=False, tensorboard=False)
    assert not result.model.norm._forward_hooks
    assert set(load_file(out / "best.safetensors")) == set(tiny_model(**SMALL).state_dict())
    assert "mask_head" in load_state(out / "state" / "last.pt")["progress"]
    resumed = fit(tiny_config(epochs=2, mask_loss_weight=1.0), out, progress=False, tensorboard=False, resume=True)
    assert resumed.epochs_done == 2
