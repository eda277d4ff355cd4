"""DDP on the CPU: two gloo processes under torch.distributed.run train the tiny model.

The replicas must hold identical weights afterwards and the training loss must fall.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import torch

from istvt_explain.train.logs import read_metrics

WORKER = textwrap.dedent('''
    import sys
    import torch
    import torch.distributed as dist
    from istvt_explain.train import config_from_dict, fit
    from istvt_explain.data.synthetic import SyntheticClipDataset

    out = sys.argv[1]
    dist.init_process_group("gloo")  # the script owns the group: fit() and the evaluation join it
    config = config_from_dict({
        "name": "ddp",
        "model": {"preset": "tiny", "overrides": {"image_size": 64, "frames": 3, "depth": 2}},
        "data": {"kind": "pseudofake_pictures"},
        "optim": {"name": "adamw", "lr": 2e-3, "warmup_epochs": 0.0, "min_lr_ratio": 0.2},
        "epochs": 4, "batch_size": 2, "eval_batch_size": 4, "seed": 1, "device": "cpu", "threads": 1,
    })
    train = SyntheticClipDataset(16, 3, 64, seed=0)
    val = SyntheticClipDataset(6, 3, 64, seed=5)
    result = fit(config, out, train_set=train, val_set=val, progress=False, tensorboard=False)
    rank = int(__import__("os").environ["RANK"])
    torch.save({k: v.detach().clone() for k, v in result.model.state_dict().items()}, f"{out}/rank{rank}.pt")
    assert dist.is_initialized()  # fit() leaves a group it did not create alone

    from istvt_explain.train.evaluation import evaluate_checkpoint
    report = evaluate_checkpoint(config, f"{out}/last.safetensors", f"{out}/eval", dataset=val, progress=False)
    if rank == 0:
        assert report["clip"]["n"] == 6 and report["processes"] == 2, report  # both shards gathered
    else:
        assert report is None
    dist.destroy_process_group()
''')


def test_two_gloo_processes_keep_identical_replicas_and_learn(tmp_path):
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    out = tmp_path / "run"
    out.mkdir()
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           str(script), str(out)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=240, env=env)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    a = torch.load(out / "rank0.pt", weights_only=True)
    b = torch.load(out / "rank1.pt", weights_only=True)
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=0, atol=0, msg=key)
    rows = read_metrics(out / "metrics.csv")
    losses = [float(r["train_loss"]) for r in rows]
    assert len(losses) == 4
    assert losses[-1] < losses[0], losses
    # 16 clips over 2 processes, batch 2 each: 4 steps per epoch, every clip seen once per epoch.
    assert int(rows[-1]["step"]) == 16
    assert (out / "eval" / "report.json").is_file() and (out / "eval" / "roc.png").is_file()
