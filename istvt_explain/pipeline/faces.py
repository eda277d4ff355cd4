"""Every face of a video: one analysis per face track, with a single detection pass.

Why: ``pipeline.run.analyze_video`` follows one track (the largest by default); a video with two
people may have the other one swapped.  ``analyze_every_face`` decodes the video and runs the face
detector once, then cuts the crops of each track from the kept frames, so N faces cost one face
pass plus N crop and model passes.  The most suspicious face leads (``most_suspicious``): the command
line draws its timeline and banner, and every face gets its box and map.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..data.frame_store import DecodedFrames, frames_kept
from ..errors import InputError
from ..models.device import model_device
from .analysis import VideoAnalysis
from .options import PipelineOptions
from .run import StageProgressFn, analyze_clips, face_clips, find_video_faces
from .timing import StageTimer


@dataclass
class FaceAnalyses:
    """The analyses of every face track that made at least one clip, and why the others did not."""

    analyses: list[VideoAnalysis]
    skipped: dict[int, str] = field(default_factory=dict)

    @property
    def tracks(self) -> list[dict]:
        return self.analyses[0].face_tracks if self.analyses else []

    def most_suspicious(self) -> VideoAnalysis:
        """The face that leads: a FAKE one before any REAL one, then the highest clip score."""
        return max(self.analyses, key=lambda a: (a.verdict == "fake", float(a.clip_probability.max()),
                                                 -a.track_index))

    def verdict(self) -> str:
        """FAKE when any face is."""
        return "fake" if any(a.verdict == "fake" for a in self.analyses) else "real"

    def faces(self) -> list[dict[str, Any]]:
        """The report's top-level ``faces``: one entry per track, explained or skipped."""
        by_track = {a.track_index: a for a in self.analyses}
        out = []
        for i, track in enumerate(self.tracks):
            entry: dict[str, Any] = {"index": i, **track}
            a = by_track.get(i)
            if a is None:
                entry.update(verdict=None, fake_probability=None, segments=[], skipped=self.skipped.get(i, ""))
            else:
                entry.update(verdict=a.verdict, fake_probability=round(a.video_probability, 6),
                             peak_probability=round(float(a.clip_probability.max()), 6),
                             segments=[{k: round(v, 6) if isinstance(v, float) else v for k, v in s.to_dict().items()}
                                       for s in a.segments], clips=len(a.frame_indices))
            out.append(entry)
        return out


def analyze_every_face(video_path: str | Path, model, options: PipelineOptions | None = None,
                       progress: StageProgressFn | None = None, timer: StageTimer | None = None,
                       keep: DecodedFrames | None = None) -> FaceAnalyses:
    """``analyze_video`` for every face track; the video is decoded and the detector run once.

    ``keep``: as in ``analyze_video`` (the decoded frames, for the crops of every track and the
    caller's explained video).  The largest track must make at least one clip (as in
    ``analyze_video``: ``InputError`` otherwise); a smaller track seen too briefly is listed in
    ``skipped`` with the reason.
    """
    options = options or PipelineOptions()
    timer = timer or StageTimer()
    with frames_kept(keep, options.keep_frames) as kept:
        with timer.stage("faces"):
            found = find_video_faces(video_path, options, progress, kept, model_device(model))
            clips = face_clips(found, 0, model.config, options)
        if progress:
            progress("faces", found.num_frames, found.num_frames)
        result = FaceAnalyses([analyze_clips(clips, model, options, progress, timer)])
        for index in range(1, len(found.tracks)):
            try:
                with timer.stage("faces"):
                    clips = face_clips(found, index, model.config, options)
                result.analyses.append(analyze_clips(clips, model, options, progress, timer))
            except InputError as err:
                result.skipped[index] = str(err).removeprefix(f"{video_path}: ")
    return result
