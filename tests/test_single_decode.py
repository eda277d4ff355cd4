"""One decode per video: the face pass keeps its frames (``data.frame_store``) for the crops and the render.

Frames decoded are counted at the one place every pass decodes (``VideoReader.frames``); the
outputs of the kept-frames path must be exactly those of decoding again.
"""

from __future__ import annotations

import errno
import shutil
from pathlib import Path

import numpy as np
import pytest
from e2e_support import probe, tiny_weights

from istvt_explain.analysis.hard_samples import (
    ClipScore,
    clips_from_videos,
    explain_hard_samples,
    rank_hard_samples,
)
from istvt_explain.cli import main
from istvt_explain.data import frame_store
from istvt_explain.data.cache import CacheSettings, open_cache
from istvt_explain.data.clips import extract_face_clips
from istvt_explain.data.datasets.entry import VideoEntry
from istvt_explain.data.frame_store import DecodedFrames
from istvt_explain.data.preprocess import process_video
from istvt_explain.data.video import VideoReader
from istvt_explain.pipeline import PipelineOptions, analyze_video
from istvt_explain.pipeline.heatmap_video import render_video


@pytest.fixture
def decoded_count(monkeypatch) -> list[int]:
    """[frames decoded so far], counted in ``VideoReader.frames`` (the probe's first frame aside)."""
    count = [0]
    original = VideoReader.frames

    def counting(self):
        for frame in original(self):
            count[0] += 1
            yield frame

    monkeypatch.setattr(VideoReader, "frames", counting)
    return count


@pytest.fixture(scope="module")
def weights(tmp_path_factory) -> Path:
    return tiny_weights(tmp_path_factory.mktemp("weights") / "tiny.safetensors")


@pytest.fixture(scope="module")
def model(weights):
    import istvt_explain as ie

    return ie.load_model(weights)


@pytest.mark.parametrize("face", ["0", "all"])
def test_the_command_decodes_each_frame_once(decoded_count, weights, two_face_video, tmp_path: Path,
                                             face: str) -> None:
    """The face pass, the crops of every face and the explained video: one decode of the file."""
    out, report = tmp_path / "out.mp4", tmp_path / "report.json"
    code = main([str(two_face_video.path), "--weights", str(weights), "--out", str(out), "--json", str(report),
                 "--face", face, "--method", "rollout", "--quiet"])
    assert code == 0 and out.exists()
    frames = len(two_face_video.boxes)
    assert decoded_count[0] == frames, f"{decoded_count[0]} frames decoded for a video of {frames}"
    assert probe(out)["frames"] == frames


def test_kept_frames_give_exactly_what_decoding_again_gives(decoded_count, model, face_video, tmp_path: Path) -> None:
    """The analysis and every composed picture of the explained video are identical both ways.

    The composed pictures (``keep_frames``), not the H.264 file, are compared: x264's output for the
    same pictures is not always byte-identical from one encode to the next within a long-running
    process (seen after the scan tests), whatever fed it.
    """
    options = PipelineOptions(method="rollout")
    again = analyze_video(face_video.path, model, PipelineOptions(method="rollout", keep_frames=False))
    frames = decoded_count[0] // 2
    assert decoded_count[0] == 2 * frames  # the old way: the face pass, then the crops' pass
    pictures_again = render_video(again, tmp_path / "again.mp4", keep_frames=range(frames))
    decoded_count[0] = 0
    with DecodedFrames() as kept:
        once = analyze_video(face_video.path, model, options, keep=kept)
        assert kept.complete and len(kept) == frames
        pictures_once = render_video(once, tmp_path / "once.mp4", frames=kept, keep_frames=range(frames))
    assert decoded_count[0] == frames
    for name in ("clip_probability", "frame_maps", "boxes", "frame_probability", "frame_importance"):
        np.testing.assert_array_equal(getattr(once, name), getattr(again, name), err_msg=name)
    assert sorted(pictures_once) == sorted(pictures_again) == list(range(frames))
    for index in range(frames):
        np.testing.assert_array_equal(pictures_once[index], pictures_again[index], err_msg=f"picture {index}")
    assert probe(tmp_path / "once.mp4")["frames"] == probe(tmp_path / "again.mp4")["frames"] == frames


def test_clips_alone_decode_once_and_match_decoding_again(decoded_count, face_video) -> None:
    """``extract_face_clips`` (preprocessing, hard samples, the material) keeps its frames for its crops."""
    frames = len(face_video.boxes)
    again = extract_face_clips(face_video.path, image_size=64, frames=6, keep_frames=False)
    assert decoded_count[0] == 2 * frames
    decoded_count[0] = 0
    once = extract_face_clips(face_video.path, image_size=64, frames=6)
    assert decoded_count[0] == frames
    np.testing.assert_array_equal(once.crops, again.crops)
    np.testing.assert_array_equal(once.frame_indices, again.frame_indices)


def test_preprocessing_and_hard_samples_decode_each_video_once(decoded_count, face_video, tmp_path: Path) -> None:
    frames = len(face_video.boxes)
    settings = CacheSettings(image_size=64, frames=6, detector="mtcnn")
    cache = open_cache(tmp_path / "cache", settings)
    entry = VideoEntry(path=face_video.path, label=0, video_id="face", dataset="toy", manipulation="original")
    assert process_video(entry, cache, settings)[1] == "done"
    assert decoded_count[0] == frames
    assert [p.name for p in cache.iterdir() if p.name.startswith("tmp")] == []  # the store left nothing

    decoded_count[0] = 0
    load = clips_from_videos(64, 6)
    first, second = (ClipScore(id=f"face:{i}", video=str(face_video.path), clip=i, label=0, probability=0.5)
                     for i in (0, 1))
    assert load(first).shape == load(second).shape == (6, 64, 64, 3)
    assert decoded_count[0] == frames


def test_hard_samples_of_many_videos_decode_each_once_and_hold_only_the_last(decoded_count, model, face_video,
                                                                              tmp_path: Path) -> None:
    """Ranked clips interleave their videos; loading them video by video decodes each once, holding one."""
    frames = len(face_video.boxes)
    videos = [tmp_path / f"video{i}.mp4" for i in range(3)]
    for video in videos:
        shutil.copyfile(face_video.path, video)
    # Scores that put the videos' clips in turn in every ranking: video0 clip 0, video1 clip 0, ...
    probabilities = iter(np.linspace(0.95, 0.55, 6))
    scores = [ClipScore(id=f"{video.stem}:{clip}", video=str(video), clip=clip, label=0,
                        probability=float(next(probabilities))) for clip in (0, 1) for video in videos]
    hard = rank_hard_samples(scores, top=6)
    order = [s.video for s in hard.selected(6)]
    assert sum(a != b for a, b in zip(order, order[1:], strict=False)) > len(videos) - 1  # not grouped by video
    size, length = model.config.image_size, model.config.frames
    source = clips_from_videos(size, length, keep_videos=1)
    samples = explain_hard_samples(model, hard, source, methods=("rollout",), limit=6)
    assert decoded_count[0] == 3 * frames, f"{decoded_count[0] // frames} decodes of 3 videos"
    assert len(source.videos_kept) == 1
    reference = extract_face_clips(face_video.path, image_size=size, frames=length)
    assert [s.score.id for s in samples] == [s.id for s in hard.selected(6)]  # the ranking's order is kept
    for sample in samples:
        np.testing.assert_array_equal(sample.frames, reference.clips[sample.score.clip], err_msg=sample.score.id)


def test_a_video_over_the_budget_is_decoded_again_with_the_same_result(decoded_count, model, face_video) -> None:
    options = PipelineOptions(method="rollout")
    with DecodedFrames(budget=5 * 320 * 240 * 3) as kept:  # five frames' worth
        small = analyze_video(face_video.path, model, options, keep=kept)
        assert not kept.complete and "allowed" in kept.reason
    assert decoded_count[0] == 2 * small.num_frames
    decoded_count[0] = 0
    with DecodedFrames(budget=5 * 320 * 240 * 3) as kept:  # a container that hides its frame count
        kept.start((240, 320), expected_frames=0)
        for _ in range(5):
            kept.append(np.zeros((240, 320, 3), np.uint8))
        kept.append(np.zeros((240, 320, 3), np.uint8))
        assert not kept.keeping and "longer than" in kept.reason and len(kept) == 0


def test_a_full_disk_while_keeping_costs_a_second_decode_not_the_analysis(decoded_count, model, face_video,
                                                                          monkeypatch) -> None:
    writes = [0]

    class FullDisk:
        def __init__(self, inner) -> None:
            self.inner = inner

        def write(self, data):
            writes[0] += 1
            if writes[0] > 3:
                raise OSError(errno.ENOSPC, "No space left on device")
            return self.inner.write(data)

        def __getattr__(self, name):
            return getattr(self.inner, name)

    real = frame_store.tempfile.TemporaryFile
    monkeypatch.setattr(frame_store.tempfile, "TemporaryFile", lambda **kw: FullDisk(real(**kw)))
    with DecodedFrames() as kept:
        result = analyze_video(face_video.path, model, PipelineOptions(method="rollout"), keep=kept)
        assert not kept.complete and "No space left" in kept.reason
    assert decoded_count[0] == 2 * result.num_frames and len(result.frame_indices) > 0


def test_kept_frames_read_back_exactly_in_any_order(tmp_path: Path) -> None:
    rng = np.random.default_rng(7)
    frames = rng.integers(0, 256, (9, 37, 53, 3), dtype=np.uint8)  # odd sizes: no alignment luck
    with DecodedFrames(folder=tmp_path) as kept:
        kept.start((37, 53), expected_frames=9)
        for frame in frames:
            kept.append(frame)
        assert kept.keeping and not kept.complete
        kept.finish()
        assert kept.complete and len(kept) == 9
        for index in rng.permutation(9):
            np.testing.assert_array_equal(kept.read(int(index)), frames[index])
        np.testing.assert_array_equal(np.stack(list(kept)), frames)
        with pytest.raises(IndexError):
            kept.read(9)
        assert list(tmp_path.iterdir()) == []  # an anonymous file: nothing to leave behind
    assert not kept.complete and len(kept) == 0


def test_a_wrong_frame_stops_the_keeping_and_a_store_keeps_one_video(tmp_path: Path) -> None:
    with DecodedFrames(folder=tmp_path) as kept:
        kept.start((4, 6))
        kept.append(np.zeros((4, 6, 3), np.uint8))
        kept.append(np.zeros((6, 4, 3), np.uint8))
        kept.finish()
        assert not kept.complete and "shape" in kept.reason
        with pytest.raises(RuntimeError):
            kept.start((4, 6))


def test_a_ram_file_system_gets_a_small_budget(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(frame_store, "memory_backed", lambda folder: True)
    assert frame_store.store_budget(tmp_path) <= frame_store.MEMORY_BACKED_BUDGET
    monkeypatch.setattr(frame_store, "memory_backed", lambda folder: False)
    free = frame_store.shutil.disk_usage(tmp_path).free
    assert frame_store.store_budget(tmp_path) == min(frame_store.DEFAULT_BUDGET, free // 4)


def test_memory_backed_reads_the_mount_table(tmp_path: Path, monkeypatch) -> None:
    table = "proc /proc proc rw 0 0\n/dev/sda1 / ext4 rw 0 0\ntmpfs /dev/shm tmpfs rw 0 0\n" \
            f"tmpfs {tmp_path}/ram\\040disk tmpfs rw 0 0\n"
    mounts = tmp_path / "mounts"
    mounts.write_text(table)
    real_path = frame_store.Path

    def fake_path(p, *rest):
        return mounts if str(p) == "/proc/self/mounts" else real_path(p, *rest)

    monkeypatch.setattr(frame_store, "Path", fake_path)
    (tmp_path / "ram disk" / "inner").mkdir(parents=True)
    assert frame_store.memory_backed(tmp_path / "ram disk" / "inner")
    assert not frame_store.memory_backed(tmp_path)
    assert frame_store.memory_backed("/dev/shm")
    assert not frame_store.memory_backed("/dev/shmx")
