"""The video job: a video file in, a verdict with its manipulated segments, maps and outputs out.

``options`` (how to cut and explain: ``PipelineOptions``) -> ``run`` (faces, clips, explanations:
``analyze_video``) -> ``analysis`` (the typed result: ``VideoAnalysis``, with ``segments``) ->
``heatmap_video`` and ``report`` (the explained video, the JSON report, the maps file).  ``faces``
runs the job for every face track; ``scan`` runs it over folders of videos.  Names resolve on
first use: the command line reads the options without loading torch.
"""

import lazy_loader

__getattr__, __dir__, __all__ = lazy_loader.attach(
    __name__,
    submodules=["analysis", "faces", "heatmap_video", "options", "report", "run", "scan", "segments", "timing"],
    submod_attrs={
        "analysis": ["VideoAnalysis"],
        "faces": ["FaceAnalyses", "analyze_every_face"],
        "heatmap_video": ["render_video"],
        "options": ["OptionError", "PipelineOptions"],
        "report": ["build_report", "write_maps", "write_report"],
        "run": ["ModelOutputError", "StageProgressFn", "analyze_clips", "analyze_video", "find_face_clips"],
        "segments": ["Segment", "find_segments"],
        "timing": ["StageTimer"],
    },
)
