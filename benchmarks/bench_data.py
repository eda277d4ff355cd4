"""Throughput of the data pipeline on a 640 x 360 video of a real face, in frames per second.

    python benchmarks/bench_data.py                  # 150 frames, 2 threads
    python benchmarks/bench_data.py --frames 300 --threads 1

Stages: decode (PyAV, to RGB), detection on every frame (MTCNN at two smallest face sizes,
Haar), cropping (square crops resized to 300 and 160 px), the whole ``extract_face_clips``
(detect every frame and every 5th; its frames kept for the crops, as it runs, or the video decoded a
second time, as it did before), and H.264 encoding.  Results go to
benchmarks/results/data.{json,md}.  The machines are shared: the load average is recorded with
the figures; quote ratios.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import cv2

from istvt_explain.data.clips import extract_face_clips
from istvt_explain.data.faces import create_detector, crop_square
from istvt_explain.data.media import make_face_video
from istvt_explain.data.tracking import square_boxes
from istvt_explain.data.video import VideoReader, VideoWriter

RESULTS = Path(__file__).parent / "results"


def _rate(count: int, fn: Callable[[], object], repeats: int) -> float:
    """Best of ``repeats`` runs, in items per second (the least disturbed by other processes)."""
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return count / best


def run(frames: int, threads: int, repeats: int) -> dict:
    cv2.setNumThreads(threads)
    os.environ.setdefault("OMP_NUM_THREADS", str(threads))
    with tempfile.TemporaryDirectory() as tmp:
        video = make_face_video(Path(tmp) / "face.mp4", frames=frames, size=(640, 360), fps=25)
        reader = VideoReader(video.path)
        decoded = list(reader)
        rates: dict[str, float] = {}
        rates["decode (PyAV -> RGB)"] = _rate(frames, lambda: sum(1 for _ in reader), repeats)
        for name, min_face in (("mtcnn", 20), ("mtcnn", 40), ("haar", 24)):
            detector = create_detector(name, min_face=min_face)
            rates[f"detect {name}, min face {min_face} px"] = _rate(
                frames, lambda d=detector: [d.detect(f) for f in decoded], repeats)
        boxes = square_boxes(video.boxes, 1.25)
        for size in (300, 160):
            rates[f"crop to {size} px"] = _rate(
                frames, lambda s=size: [crop_square(f, b, s) for f, b in zip(decoded, boxes, strict=True)], repeats)
        mtcnn = create_detector("mtcnn")
        for every in (1, 5):
            # kept: the crops read the face pass's frames back; again: the file is decoded a second time
            for keep in (True, False):
                rates[f"extract_face_clips 300 px, detect every {every}, {'kept' if keep else 'decoded again'}"] = \
                    _rate(frames, lambda e=every, k=keep: extract_face_clips(
                        video.path, image_size=300, detector=mtcnn, detect_every=e, keep_frames=k), repeats)

        def encode() -> None:
            with VideoWriter(Path(tmp) / "out.mp4", 25, 640, 360) as writer:
                for f in decoded:
                    writer.write(f)

        rates["encode H.264 (crf 20, veryfast)"] = _rate(frames, encode, repeats)
    return {"video": {"size": "640x360", "frames": frames, "content": "astronaut face panning/zooming"},
            "threads": threads, "repeats": repeats, "cpu_count": os.cpu_count(),
            "load_average_1m": os.getloadavg()[0], "platform": platform.platform(),
            "python": platform.python_version(), "opencv": cv2.__version__,
            "frames_per_s": {k: round(v, 1) for k, v in rates.items()}}


def write(result: dict) -> None:
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "data.json").write_text(json.dumps(result, indent=1))
    lines = [f"# Data pipeline throughput ({result['video']['size']}, {result['video']['frames']} frames, "
             f"{result['threads']} threads)", "",
             f"Machine: {result['cpu_count']} CPUs, 1-minute load average {result['load_average_1m']:.1f} "
             "while measuring (shared machine: figures are lower bounds); best of "
             f"{result['repeats']} runs.", "", "| stage | frames/s |", "| --- | ---: |"]
    lines += [f"| {k} | {v:.1f} |" for k, v in result["frames_per_s"].items()]
    (RESULTS / "data.md").write_text("\n".join(lines) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=150)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    result = run(args.frames, args.threads, args.repeats)
    write(result)
    print((RESULTS / "data.md").read_text())


if __name__ == "__main__":
    main()
