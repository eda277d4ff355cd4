"""`istvt-explain VIDEO --out heatmap.mp4`: the whole job an analyst runs on a suspicious video.

Decode, find and track the face, classify every clip, explain it, and write the explained
video (plus, on request, a JSON report, the raw maps and key frames).  This module only parses
options and calls the library (``pipeline.run.analyze_video``, ``pipeline.heatmap_video``, ``pipeline.report``); every output goes
through ``StagedOutputs`` so that a failed or interrupted run (Ctrl-C, SIGTERM) leaves nothing behind,
and the next run deletes what a killed one left.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .._version import __version__
from ..attribution.catalogue import BUILT_IN, DEFAULT_METHOD
from ..data.containers import VIDEO_CONTAINERS, container_for
from ..data.detectors import DETECTORS
from ..errors import InputError
from ..models.device import DEVICES
from ..models.precision import DEFAULT_PRECISION, PRECISIONS
from ..pipeline.options import DEFAULT_DETECT_EVERY, DEFAULT_MIN_FACE, OptionError, PipelineOptions
from ..pipeline.segments import DEFAULT_MAX_GAP, DEFAULT_MIN_CLIPS
from .errors import UserError
from .staging import StagedOutputs
from .weights import check_weights

if TYPE_CHECKING:  # heavy (torch): imported inside the functions that use them, so --help stays instant
    import torch

    from ..data.frame_store import DecodedFrames
    from ..pipeline.analysis import VideoAnalysis
    from ..pipeline.timing import StageTimer

KEYFRAME_GLOB = "[0-9][0-9]_frame[0-9]*.png"  # render.keyframes.keyframe_name
HELP = "explain a video: heatmap video, JSON report, maps and key frames (the default command)"

DEMO_NOTICE = ("note: using the bundled demo weights (tiny preset, trained on synthetic pseudo-fakes only; "
               "not a forensic tool). Pass --weights for a real model.")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.usage = "istvt-explain (VIDEO | --demo) --out heatmap.mp4 [options]"
    parser.add_argument("video", nargs="?", help="the video file to explain")
    parser.add_argument("--demo", action="store_true",
                        help="make a short demo video (a real face clip, then a manipulated one) and explain it")
    out = parser.add_argument_group("outputs")
    out.add_argument("-o", "--out", metavar="VIDEO",
                     help=f"the explained video, H.264 in the container its extension names "
                          f"({', '.join(VIDEO_CONTAINERS)})")
    out.add_argument("--json", metavar="PATH",
                     help="a JSON report: verdict, manipulated segments, face tracks, per-clip and per-frame scores")
    out.add_argument("--maps", metavar="NPZ",
                     help="every frame's heatmap at full frame size (float16, 0 where no face), as .npz")
    out.add_argument("--frames", metavar="DIR", help="save the most suspicious frames as PNG pictures here")
    out.add_argument("--keyframes", type=int, default=5, metavar="N", help="how many key frames (default 5)")
    out.add_argument("--force", action="store_true", help="overwrite existing outputs")
    add_model_arguments(parser)
    add_face_arguments(parser, face_all=True)
    look = parser.add_argument_group("look")
    look.add_argument("--colormap", default=None,
                      help="matplotlib colour map of the heatmap (default: inferno, or RdBu_r centred on 0 for "
                           "signed maps; docs/display.md)")
    look.add_argument("--alpha", type=float, default=0.6,
                      help="heatmap opacity where the evidence is strongest, 0..1 (default 0.6; weak evidence "
                           "stays transparent)")
    add_verdict_arguments(parser)
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bar, notice or summary")


def add_model_arguments(parser: argparse.ArgumentParser) -> None:
    """--weights, --preset, --method, --device, --precision, --batch-size (shared with ``scan``)."""
    model = parser.add_argument_group("model")
    model.add_argument("--weights", metavar="PATH",
                       help="an istvt-explain checkpoint (.safetensors); default: the bundled demo weights")
    model.add_argument("--preset", help="refuse weights that are not of this preset (paper, small, tiny)")
    slow = ", ".join(f.name for f in BUILT_IN.values() if f.cost == "many-passes")
    model.add_argument("--method", default=DEFAULT_METHOD, metavar="NAME",
                       help=f"explanation method: {', '.join(BUILT_IN)}, or a registered plugin's (docs/judging.md; "
                            f"default {DEFAULT_METHOD}; the Captum baselines {slow} take minutes per clip on a CPU)")
    model.add_argument("--device", default="auto", choices=DEVICES,
                       help="where the model runs (auto: cuda when available)")
    model.add_argument("--precision", default=DEFAULT_PRECISION, choices=PRECISIONS,
                       help="arithmetic of the model: auto (bf16 on a GPU that has it, fp32 elsewhere), fp32, "
                            "bf16 or fp16 (16-bit autocast; the explanation's own arithmetic stays fp32)")
    model.add_argument("--batch-size", type=int, metavar="N",
                       help="clips per model call (default: 4 on the CPU, 32 on a GPU, halved while the GPU "
                            "runs out of memory)")


def add_face_arguments(parser: argparse.ArgumentParser, face_all: bool) -> None:
    """--stride, --face, --detector, --min-face, --detect-every (shared with ``scan``)."""
    faces = parser.add_argument_group("faces and clips")
    faces.add_argument("--stride", type=int, metavar="N",
                       help="frames between clip starts (default: the clip length, each frame once)")
    if face_all:
        faces.add_argument("--face", type=face_choice, default=0, metavar="N|all",
                           help="which face track to explain, 0 = the largest (default); all = every track")
    else:
        faces.add_argument("--face", type=int, default=0, metavar="N",
                           help="which face track to explain, 0 = the largest (default)")
    faces.add_argument("--detector", default="mtcnn", choices=tuple(DETECTORS),
                       help="face detector (mtcnn runs as its PyTorch port, mtcnn-torch, on a GPU: the same "
                            "faces; haar: OpenCV's cascade, boxes only)")
    faces.add_argument("--min-face", type=int, default=DEFAULT_MIN_FACE, metavar="PX",
                       help="smallest face to look for, in pixels of the frame shrunk to 640 a side "
                            f"(default {DEFAULT_MIN_FACE})")
    faces.add_argument("--detect-every", type=int, default=DEFAULT_DETECT_EVERY, metavar="N",
                       help=f"run the detector every N frames and track in between (default {DEFAULT_DETECT_EVERY}; 1 for "
                            "fast-moving faces)")


def add_verdict_arguments(parser: argparse.ArgumentParser) -> None:
    """--threshold, --segment-min-clips, --segment-max-gap (shared with ``scan``)."""
    verdict = parser.add_argument_group(
        "verdict", "the video is FAKE when its fake clips form at least one manipulated segment "
                   "(lengths in clip lengths: T frames, 6 for the shipped presets)")
    verdict.add_argument("--threshold", type=float, default=0.5,
                         help="clip score from which a clip counts as fake (default 0.5)")
    verdict.add_argument("--segment-min-clips", type=int, default=DEFAULT_MIN_CLIPS, metavar="N",
                         help=f"fake evidence a segment needs, in clip lengths (default {DEFAULT_MIN_CLIPS}; "
                              "a face seen for less can still be fake)")
    verdict.add_argument("--segment-max-gap", type=int, default=DEFAULT_MAX_GAP, metavar="N",
                         help="longest stretch without fake evidence (a dip under the threshold, or no face) "
                              f"a segment bridges, in clip lengths (default {DEFAULT_MAX_GAP})")


def face_choice(text: str) -> int | str:
    """``--face``: a track number (0 = the largest) or ``all``."""
    if text.strip().lower() == "all":
        return "all"
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a track number or 'all', got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"track numbers start at 0, got {value}")
    return value


# -- model -------------------------------------------------------------------------------------


def load_weights(args: argparse.Namespace, device: torch.device) -> tuple[torch.nn.Module, dict[str, Any]]:
    """The model and a description of its weights for the report."""
    from ..models import create_model, load_model, read_config
    from ..models.inference import optimize_for_inference
    from ..models.pretrained import DEMO_WEIGHTS, load_demo_model

    if args.weights is None:
        model = load_demo_model(device=device)
        if not args.quiet:
            print(DEMO_NOTICE, file=sys.stderr)
        path, demo = DEMO_WEIGHTS, True
    else:
        path, demo = Path(args.weights), False
        if args.preset is not None:
            model = create_model(args.preset, weights=path, device=device)
        else:
            model = load_model(path, device=device)
    if args.preset is not None and model.config.name != args.preset:
        stored = read_config(path)
        raise InputError(f"{path}: weights are for preset {stored.name if stored else '?'!r}, not {args.preset!r}")
    optimize_for_inference(model)
    return model, {"path": str(path), "demo": demo, "preset": model.config.name, "config": model.config.to_dict()}


# -- progress and summary ----------------------------------------------------------------------


class ProgressBar:
    """One tqdm bar per stage on stderr; nothing at all when quiet or when stderr is not a terminal."""

    LABELS = {"faces": "finding faces", "explain": "explaining clips", "render": "rendering"}

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self._bar = None
        self._stage: str | None = None

    def __call__(self, stage: str, done: int, total: int) -> None:
        if not self.enabled:
            return
        from tqdm import tqdm

        if stage != self._stage:
            self.close()
            self._stage = stage
            self._bar = tqdm(total=total, desc=self.LABELS.get(stage, stage), unit="frame" if stage != "explain"
                             else "clip", file=sys.stderr, leave=False, dynamic_ncols=True)
        if total != self._bar.total:
            self._bar.total = total
        self._bar.update(done - self._bar.n)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None
            self._stage = None


def summary(analysis: VideoAnalysis, written: list[Path], timings: dict[str, float], elapsed: float,
            label: str | None = None, faces: list[dict] | None = None) -> str:
    """The one screen printed when the job ends.

    ``faces``: with ``--face all``, every face's result (``pipeline.faces.FaceAnalyses.faces``); the
    verdict lines are then the leading (most suspicious) face's, which is FAKE when any face is.
    """
    a = analysis
    segments = a.segments
    clips = len(a.frame_indices)
    if segments:
        found = f"{len(segments)} manipulated segment{'s' if len(segments) != 1 else ''}"
    else:
        found = "no manipulated segment"
    lines = [
        f"istvt-explain {__version__}: {label or a.video_path}",
        f"  verdict          {a.verdict.upper()}  ({found}; clip threshold {a.threshold:g})"
        + (f"  [face #{a.track_index}, the most suspicious of {len(faces)}]" if faces and len(faces) > 1 else ""),
    ]
    lines += [f"                   FAKE: frames {s.start_frame}-{s.end_frame} (peak {s.peak_probability:.2f}, "
              f"mean {s.mean_probability:.2f})" for s in segments]
    if segments:
        lines.append("                   (frames counted from 0 everywhere: here, --json, the video, key frames)")
    lines += [
        f"  fake probability {a.video_probability:.3f}  (mean of the {clips} clip score{'s' if clips != 1 else ''}; "
        "not what the verdict uses)",
        f"  video            {a.num_frames} frames, {a.width}x{a.height}, {a.fps:.3g} fps",
        f"  processed        {int(a.processed.sum())} frames in {len(a.frame_indices)} clips; "
        f"skipped {len(a.skipped_frames)} (no usable face)",
        f"  method           {a.method}",
    ]
    lines += face_lines(a.face_tracks, explained={a.track_index}, faces=faces)
    top = a.suspicious_frames(5)
    if top:
        shown = ", ".join(f"{i} ({a.frame_probability[i]:.2f})" for i in top)
        lines.append(f"  most suspicious  frames {shown}")
        lines.append("                   (frame (p(fake)), sorted by suspicion = p(fake) x importance / top "
                     "importance; --json frames[].suspicion)")
    probs = a.clip_probability
    lines.append(f"  clip scores      min {probs.min():.3f}  mean {probs.mean():.3f}  max {probs.max():.3f}")
    stages = "  ".join(f"{k} {v:.2f}s" for k, v in timings.items())
    lines.append(f"  time             {elapsed:.1f}s, {a.num_frames / max(elapsed, 1e-9):.1f} frames/s ({stages}; "
                 "decoding and encoding run in threads beside the other stages)")
    for path in written:
        lines.append(f"  wrote            {path}")
    return "\n".join(lines)


def face_lines(tracks: list[dict], explained: set[int], faces: list[dict] | None = None) -> list[str]:
    """The summary's list of face tracks: every face found, so a second face is never ignored silently.

    With ``faces`` (``--face all``) each line ends with that face's own verdict.
    """
    if not tracks:
        return []
    every = faces is not None
    lines = [f"  faces            {len(tracks)} track{'s' if len(tracks) != 1 else ''} found (0 = the largest)"
             + ("" if len(tracks) == 1 or every else "; --face N or --face all for others")]
    for i, t in enumerate(tracks):
        spans = ", ".join(f"{a}-{b}" for a, b in t["ranges"][:4]) + (" ..." if len(t["ranges"]) > 4 else "")
        if every:
            f = faces[i]
            if f["verdict"] is None:
                mark = f"not explained: {f.get('skipped') or 'no clip'}"
            else:
                segs = ", ".join(f"{s['start_frame']}-{s['end_frame']}" for s in f["segments"])
                mark = (f"{f['verdict'].upper()}" + (f" frames {segs}" if segs else "")
                        + f" (mean {f['fake_probability']:.2f}, peak {f['peak_probability']:.2f})")
        else:
            mark = "explained" if i in explained else "not explained"
        lines.append(f"                   #{i}: frames {spans} ({t['frames']} frames, ~{t['size']:.0f} px), {mark}")
    return lines


# -- the job -----------------------------------------------------------------------------------


def _check_args(args: argparse.Namespace) -> PipelineOptions:
    """Every check that needs neither the model nor the video: done before anything heavy is imported."""
    if args.demo and args.video:
        raise UserError("give either a VIDEO or --demo, not both")
    if not args.demo and not args.video:
        raise UserError("no video given (usage: istvt-explain VIDEO --out heatmap.mp4, or --demo)")
    if not any((args.out, args.json, args.maps, args.frames)):
        raise UserError("nothing to write: give --out (and/or --json, --maps, --frames)")
    if args.out:
        container_for(args.out)  # --out x.avi: refused here, before any work
    if args.keyframes < 1:
        raise UserError(f"--keyframes must be >= 1, got {args.keyframes}")
    if not 0.0 <= args.alpha <= 1.0:
        raise UserError(f"--alpha must be between 0 and 1, got {args.alpha}")
    return check_model_and_options(args)


def check_model_and_options(args: argparse.Namespace) -> PipelineOptions:
    """That --weights exists and its header is sound, and the job's options (``PipelineOptions`` checks them;
    shared with ``scan``)."""
    if args.weights is not None:
        if not Path(args.weights).expanduser().is_file():
            raise InputError(f"{args.weights}: no such weight file")
        check_weights(args.weights)
    try:
        return PipelineOptions(method=args.method, stride=args.stride, face=0 if args.face == "all" else args.face,
                               detect_every=args.detect_every, batch_size=args.batch_size,
                               threshold=args.threshold, detector=args.detector, min_face=args.min_face,
                               precision=args.precision, segment_min_clips=args.segment_min_clips,
                               segment_max_gap=args.segment_max_gap)
    except OptionError as err:
        raise UserError(f"--{err.option.replace('_', '-')} {err.problem}") from None


def run(args: argparse.Namespace) -> int:
    """The job; SIGTERM stops it as Ctrl-C does (every temporary removed, one line, exit 130)."""
    from ..data._files import sigterm_as_interrupt

    begun = time.time()  # the temporaries of these outputs older than this are a killed run's
    with sigterm_as_interrupt():
        return _run(args, begun)


def _run(args: argparse.Namespace, begun: float) -> int:
    options = _check_args(args)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="istvt-explain-") as scratch:
        if args.demo:
            video = Path(scratch) / "demo-input.mp4"
        else:
            video = Path(args.video).expanduser()
            _check_video_path(video)
        with StagedOutputs(force=args.force, protected=() if args.demo else (video,), started=begun) as staged:
            targets = {
                "out": staged.claim(args.out, "--out") if args.out else None,
                "json": staged.claim(args.json, "--json") if args.json else None,
                "maps": staged.claim(args.maps, "--maps") if args.maps else None,
                "frames": (staged.claim(args.frames, "--frames", directory=True, replace=KEYFRAME_GLOB)
                           if args.frames else None),
            }
            # Only now the heavy imports (torch, OpenCV, matplotlib): every check above answered at once.
            from ..data.frame_store import frames_kept
            from ..models.device import resolve_device
            from ..pipeline.run import analyze_video
            from ..pipeline.timing import StageTimer
            from ..render.overlay import OverlayStyle

            style = OverlayStyle(colormap=args.colormap, alpha=args.alpha)  # unknown colour map: InputError
            device = resolve_device(args.device)
            model, weights = load_weights(args, device)
            extra: dict[str, Any] = {}
            if args.demo:
                from ..data.demo_video import make_demo_video

                demo = make_demo_video(video, crop_size=model.config.image_size)
                extra["demo"] = {"real_frames": [0, demo.fake_start - 1],
                                 "manipulated_frames": [demo.fake_start, demo.num_frames - 1],
                                 "manipulation": "self-blended pseudo-fake of the face (data.pseudofake)"}
            progress = ProgressBar(enabled=not args.quiet and sys.stderr.isatty())
            timer = StageTimer()
            others: list[VideoAnalysis] = []
            try:
                # The face pass keeps the decoded frames (next to the explained video, on its disk) for
                # the crops and the render: the video is decoded once.
                with frames_kept(None, options.keep_frames, folder=targets["out"].parent if targets["out"] else None) as decoded:
                    if args.face == "all":
                        from ..pipeline.faces import analyze_every_face

                        every = analyze_every_face(video, model, options, progress=progress, timer=timer, keep=decoded)
                        analysis = every.most_suspicious()
                        others = [a for a in every.analyses if a is not analysis]
                        extra["faces"] = every.faces()
                    else:
                        analysis = analyze_video(video, model, options, progress=progress, timer=timer, keep=decoded)
                    written = _write_outputs(analysis, args, targets, style, weights, extra, progress, timer,
                                             others, decoded)
            finally:
                progress.close()
            staged.commit()
    if not args.quiet:
        label = None
        if args.demo:
            d = extra["demo"]
            label = (f"generated demo video (frames {d['real_frames'][0]}-{d['real_frames'][1]} real, "
                     f"{d['manipulated_frames'][0]}-{d['manipulated_frames'][1]} manipulated)")
        print(summary(analysis, written, timer.seconds, time.perf_counter() - started, label,
                      faces=extra.get("faces")))
    return 0


def _check_video_path(video: Path) -> None:
    """Fail before loading anything when the input obviously is not there."""
    if not video.exists():
        raise InputError(f"{video}: no such file")
    if video.is_dir():
        raise InputError(f"{video}: is a directory, not a video file (to explain a whole folder: "
                         "istvt-explain scan FOLDER --out RESULTS/)")


def _write_outputs(analysis: VideoAnalysis, args: argparse.Namespace, targets: dict[str, Path | None],
                   style, weights: dict[str, Any], extra: dict[str, Any], progress, timer: StageTimer,
                   others: Sequence[VideoAnalysis] = (), decoded: DecodedFrames | None = None) -> list[Path]:
    from ..pipeline.heatmap_video import render_video
    from ..pipeline.report import build_report, write_maps, write_report
    from ..render.keyframes import save_keyframes

    order = analysis.suspicious_frames(args.keyframes)
    finals = {key: str(Path(getattr(args, key)).expanduser()) for key in targets if targets[key] is not None}
    try:
        kept = {}
        if targets["out"] is not None or targets["frames"] is not None:
            scratch_video = targets["out"]
            if scratch_video is None:  # key frames only: render into a throw-away file
                scratch_video = Path(targets["frames"]) / ".render.mp4"
            kept = render_video(analysis, scratch_video, style, keep_frames=order if targets["frames"] else (),
                                progress=progress, timer=timer, others=others, frames=decoded)
            if targets["out"] is None:
                scratch_video.unlink(missing_ok=True)
        if targets["frames"] is not None:
            save_keyframes(kept, order, targets["frames"])
        if targets["maps"] is not None:
            with timer.stage("maps"):
                write_maps(analysis, targets["maps"])
        if targets["json"] is not None:
            report = build_report(analysis, weights, top_k=args.keyframes, outputs=finals) | extra
            for track in report["face_tracks"] if "faces" in extra else ():  # --face all: every face explained
                track["explained"] = extra["faces"][track["index"]]["verdict"] is not None
            if "demo" in extra:  # the generated input lived in a scratch folder that is gone now
                report["input"]["path"] = None
            write_report(report, targets["json"])
    except OSError as err:
        raise UserError(f"cannot write the outputs ({err.strerror or err})") from None
    return [Path(p) for p in finals.values()]
