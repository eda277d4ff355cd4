"""From video files and data sets to face clips: video I/O, faces, clips, readers, cache, pseudo-fakes.

Modules, in the order data flows through them:
``video`` (PyAV reading/writing) -> ``faces`` (detectors, tracks, crops) -> ``clips`` (face clips of
a video, model input) -> ``datasets`` (data-set readers, datasets over the cache) ->
``preprocess``/``cache`` (the cache) ; ``pseudofake`` (self-blended fakes), ``media`` (test faces).
"""

from .clips import VideoClips, clip_windows, extract_face_clips, normalize_clip, video_score
from .faces import FaceTrack, create_detector, detect_faces, track_faces
from .media import face_image, make_face_video
from .pseudofake import make_pseudofake_clip
from .video import VideoReader, VideoWriter, write_video

__all__ = [
    "FaceTrack", "VideoClips", "VideoReader", "VideoWriter", "clip_windows", "create_detector", "detect_faces",
    "extract_face_clips", "face_image", "make_face_video", "make_pseudofake_clip", "normalize_clip",
    "track_faces", "video_score", "write_video",
]
