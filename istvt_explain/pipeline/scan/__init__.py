"""Scan many videos: one JSON report and one thumbnail each, a results table and an HTML index; resumable.

``discovery`` (which files) -> ``runner`` (the loop: faces in worker processes, clips of several videos
in shared model calls, one record per video) -> ``results`` (the folder that is the scan's whole state,
and the table rebuilt from it).
"""

import lazy_loader

__getattr__, __dir__, __all__ = lazy_loader.attach(
    __name__,
    submodules=["discovery", "results", "runner"],
    submod_attrs={
        "discovery": ["VIDEO_EXTENSIONS", "find_videos", "video_key"],
        "results": ["CSV_COLUMNS", "ResultsFolder", "ScanRow", "row_from_record", "write_index", "write_table"],
        "runner": ["scan_videos"],
    },
)
