"""From video files and data sets to face clips: video I/O, faces, clips, readers, cache, training material.

Modules, in the order data flows through them:
``video`` (PyAV reading/writing, ``containers``) -> ``detectors``/``tracking``/``faces`` (detectors,
tracks, crops) -> ``clips`` (face clips of a video, model input) -> ``datasets`` (data-set readers,
datasets over the cache and pseudo-fake pairs) -> ``preprocess``/``cache`` (the cache).  Beside them:
``pseudofake`` (self-blended fakes), ``face_swap`` (cross-identity blends, Face X-ray's recipe) with
``landmarks`` (468-point face mesh, MediaPipe's model run by OpenCV), ``degrade`` (quality degradations), ``material`` (real faces that
packages ship), ``media`` and ``demo_video`` (generated test videos), ``synthetic`` (random clips).
Names resolve on first use, so a module that needs only ``containers`` loads neither PyAV nor OpenCV.
"""

import lazy_loader

__getattr__, __dir__, __all__ = lazy_loader.attach(
    __name__,
    submodules=['background', 'cache', 'clips', 'codecs', 'containers', 'datasets', 'degrade', 'demo_video', 'detectors', 'face_swap', 'faces', 'landmarks', 'material', 'media', 'preprocess', 'pseudofake', 'synthetic', 'tracking', 'video'],
    submod_attrs={
        "clips": ["VideoClips", "clip_windows", "extract_face_clips", "normalize_clip", "video_score"],
        "face_swap": ["Donor", "choose_donor", "swap_clip"],
        "faces": ["FaceTrack", "create_detector", "detect_faces", "track_faces"],
        "landmarks": ["FaceLandmarker", "Landmarks"],
        "media": ["face_image", "make_face_video"],
        "pseudofake": ["make_pseudofake_clip", "self_blend_clip"],
        "video": ["VideoReader", "VideoWriter", "write_video"],
    },
)
