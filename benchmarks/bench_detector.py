"""Face detection throughput: the OpenCV MTCNN (``mtcnn``) against the PyTorch one (``mtcnn-torch``).

    python benchmarks/bench_detector.py                          # CPU, 2 threads, batches 1 and 8
    python benchmarks/bench_detector.py --device cuda --batches 1 8 32 --out OUT.json

A 1280 x 720 frame of a real face (``data.media``), shrunk to ``--max-side`` (640) by each detector as
it would be in the face pass; frames per second, best of ``--repeats`` runs after a warm-up (torch's
CPU convolutions prepare themselves once per shape).  The OpenCV detector only goes one frame at a
time; its batch column is the same loop.  Shared machines: quote ratios measured in one run.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from istvt_explain.data.detectors import MTCNNDetector  # noqa: E402
from istvt_explain.data.media import _background, _paste, face_image  # noqa: E402
from istvt_explain.data.mtcnn_torch import TorchMTCNNDetector  # noqa: E402


def _frame() -> np.ndarray:
    """1280 x 720: the astronaut, large, and the mirrored astronaut, smaller, over a gradient."""
    frame = _background(1280, 720)
    _paste(frame, face_image("astronaut"), 450, 360, 430)
    _paste(frame, face_image("astronaut-mirrored"), 1000, 330, 220)
    return frame


def _rate(frames: int, fn: Callable[[], object], repeats: int, sync: Callable[[], None]) -> float:
    """Frames per second, best of ``repeats`` timed runs after one warm-up run."""
    fn()
    sync()
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        sync()
        best = min(best, time.perf_counter() - start)
    return frames / best


def run(device: str, batches: list[int], threads: int, repeats: int, max_side: int) -> dict:
    torch.set_num_threads(threads)
    cv2.setNumThreads(threads)
    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)
    frame = _frame()
    opencv = MTCNNDetector(max_side=max_side)
    ours = TorchMTCNNDetector(max_side=max_side, device=device, batch_size=max(batches))
    rows = []
    for batch in batches:
        frames = [frame] * batch
        on_device = torch.from_numpy(np.stack(frames)).to(device)
        row = {"batch": batch,
               "opencv_fps": _rate(batch, lambda f=frames: [opencv.detect(x) for x in f], repeats, sync),
               "torch_fps": _rate(batch, lambda f=frames: ours.detect_batch(f), repeats, sync),
               "torch_device_tensor_fps": _rate(batch, lambda t=on_device: ours.detect_batch(t), repeats, sync)}
        rows.append(row)
    faces = [(d.box.round(1).tolist(), round(d.score, 4)) for d in ours.detect(frame)]
    return {"device": device, "device_name": torch.cuda.get_device_name() if device.startswith("cuda")
            else platform.processor() or platform.machine(), "threads": threads, "repeats": repeats,
            "frame": "1280x720", "max_side": max_side, "load_average": os.getloadavg(), "faces": faces,
            "same_faces": faces == [(d.box.round(1).tolist(), round(d.score, 4)) for d in opencv.detect(frame)],
            "torch": torch.__version__, "opencv": cv2.__version__, "rows": rows}


def markdown(result: dict) -> str:
    lines = [f"Device {result['device']} ({result['device_name']}), {result['threads']} threads, "
             f"{result['frame']} shrunk to {result['max_side']}, load {result['load_average'][0]:.1f}; "
             f"same faces as OpenCV: {result['same_faces']}",
             "", "| batch | OpenCV MTCNN fps | torch MTCNN fps (numpy frames) | torch fps (frames on device) |",
             "|---:|---:|---:|---:|"]
    lines += [f"| {r['batch']} | {r['opencv_fps']:.1f} | {r['torch_fps']:.1f} | {r['torch_device_tensor_fps']:.1f} |"
              for r in result["rows"]]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu", help="where the torch MTCNN runs: cpu, cuda, cuda:1")
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 8], help="frames per detect_batch call")
    parser.add_argument("--threads", type=int, default=2, help="CPU threads for torch and OpenCV")
    parser.add_argument("--repeats", type=int, default=5, help="timed runs; the best counts")
    parser.add_argument("--max-side", type=int, default=640, help="frames are shrunk to this longer side")
    parser.add_argument("--out", type=Path, help="also write the figures to this JSON file")
    args = parser.parse_args(argv)
    result = run(args.device, args.batches, args.threads, args.repeats, args.max_side)
    print(markdown(result))
    if args.out:
        args.out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
