"""Video reading and writing (PyAV), and every bad-input case of the reader."""

from __future__ import annotations

from fractions import Fraction
from types import SimpleNamespace

import av
import numpy as np
import pytest
from e2e_support import frame_times, variable_rate_video

from istvt_explain.data.clock import FrameTimes
from istvt_explain.data.video import VideoReader, VideoWriter, write_video
from istvt_explain.errors import InputError


def _frames(count: int, width: int, height: int) -> list[np.ndarray]:
    y, x = np.mgrid[0:height, 0:width]
    base = np.stack([x * 255 // width, y * 255 // height, (x + y) * 127 // (width + height)], -1).astype(np.uint8)
    return [np.roll(base, 3 * t, axis=1) for t in range(count)]


def _raw_video(path, frames, *, codec="ffv1", pix_fmt="bgr0", fps=10, rotation=None):
    """A video in another codec/pixel format than ours (odd sizes, grayscale, rotation)."""
    height, width = frames[0].shape[:2]
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, pix_fmt
        if rotation is not None:
            stream.set_display_rotation(rotation)
        for frame in frames:
            fmt = "gray" if frame.ndim == 2 else "rgb24"
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format=fmt)):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def test_write_and_read_round_trip(tmp_path):
    frames = _frames(12, 64, 48)
    path = write_video(tmp_path / "v.mp4", frames, fps=12.5, crf=10)
    reader = VideoReader(path)
    assert (reader.width, reader.height, reader.frame_count, reader.rotation) == (64, 48, 12, 0)
    assert reader.fps == pytest.approx(12.5)
    decoded = list(reader)
    assert len(decoded) == 12 and decoded[0].dtype == np.uint8 and decoded[0].shape == (48, 64, 3)
    assert np.abs(decoded[5].astype(int) - frames[5]).mean() < 12  # lossy, but the same picture
    picked = reader.read_frames([7, 2, 7])
    assert picked.shape == (3, 48, 64, 3) and np.array_equal(picked[0], decoded[7])
    with av.open(str(path)) as container:  # what browsers need
        stream = container.streams.video[0]
        assert stream.codec_context.name == "h264" and stream.codec_context.pix_fmt == "yuv420p"
    with pytest.raises(InputError, match="only 12 frames"):
        reader.read_frames([40])


def test_writer_pads_odd_sizes_and_leaves_nothing_on_error(tmp_path):
    path = tmp_path / "odd.mp4"
    with VideoWriter(path, 10, 33, 21) as writer:
        for frame in _frames(3, 33, 21):
            writer.write(frame)
    assert (VideoReader(path).width, VideoReader(path).height) == (34, 22)
    before = path.read_bytes()
    with pytest.raises(RuntimeError), VideoWriter(path, 10, 33, 21) as writer:
        writer.write(_frames(1, 33, 21)[0])
        raise RuntimeError("stop")
    assert path.read_bytes() == before  # the old file is untouched
    assert sorted(p.name for p in tmp_path.iterdir()) == ["odd.mp4"]  # no temporary left
    with pytest.raises(ValueError, match="does not fit"), VideoWriter(tmp_path / "x.mp4", 10, 32, 20) as writer:
        writer.write(np.zeros((10, 10, 3), np.uint8))
    assert not (tmp_path / "x.mp4").exists()


def test_rotated_grey_and_odd_sized_videos_decode_upright_as_rgb(tmp_path):
    frame = np.zeros((20, 40, 3), np.uint8)
    frame[:5, :5] = 255  # a marker in the top-left corner
    rotated = VideoReader(_raw_video(tmp_path / "rot.mkv", [frame] * 3, rotation=90))
    assert rotated.rotation == 90 and (rotated.width, rotated.height) == (20, 40)
    first = next(iter(rotated))
    assert first.shape == (40, 20, 3) and first[-5:, :5].mean() > 200  # turned counter-clockwise

    gray = [np.full((31, 45), 10 * t, np.uint8) for t in range(4)]
    reader = VideoReader(_raw_video(tmp_path / "gray.mkv", gray, pix_fmt="gray"))
    decoded = list(reader)
    assert (reader.width, reader.height) == (45, 31) and decoded[2].shape == (31, 45, 3)
    assert abs(int(decoded[2][5, 5, 0]) - 20) <= 2


def _faststart(path, count=20):
    """An MP4 with its index first: cut short, it still opens, and decodes fewer frames."""
    with av.open(str(path), "w", options={"movflags": "faststart"}) as container:
        stream = container.add_stream("libx264", rate=10)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        rng = np.random.default_rng(0)
        for _ in range(count):
            frame = av.VideoFrame.from_ndarray(rng.integers(0, 255, (48, 64, 3), dtype=np.uint8), format="rgb24")
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


@pytest.mark.parametrize("case", ["missing", "directory", "empty", "text", "image", "truncated",
                                  "truncated-faststart", "huge", "audio-only"])
def test_bad_inputs_name_the_file(tmp_path, case):
    path = tmp_path / f"{case}.mp4"
    kwargs = {}
    if case == "directory":
        path.mkdir()
    elif case == "empty":
        path.touch()
    elif case == "text":
        path.write_text("this is not a video\n" * 50)
    elif case == "image":
        import cv2

        path = tmp_path / "picture.png"
        cv2.imwrite(str(path), np.zeros((16, 16, 3), np.uint8))
    elif case == "truncated":
        full = write_video(tmp_path / "full.mp4", _frames(10, 64, 48), fps=10)
        path.write_bytes(full.read_bytes()[: full.stat().st_size // 3])
    elif case == "truncated-faststart":
        full = _faststart(tmp_path / "full.mp4")
        path.write_bytes(full.read_bytes()[: full.stat().st_size // 2])
    elif case == "audio-only":
        path = tmp_path / "sound.wav"
        with av.open(str(path), "w") as container:
            stream = container.add_stream("pcm_s16le", rate=8000)
            frame = av.AudioFrame.from_ndarray(np.zeros((1, 800), np.int16), format="s16", layout="mono")
            frame.sample_rate = 8000
            for packet in stream.encode(frame):
                container.mux(packet)
            for packet in stream.encode():
                container.mux(packet)
    elif case == "huge":
        write_video(path, _frames(2, 64, 48), fps=10)
        kwargs = {"max_pixels": 1000}
    with pytest.raises(InputError) as err:
        list(VideoReader(path, **kwargs))
    message = str(err.value)
    assert str(path) in message and "\n" not in message


def _clock(path):
    """The clock of one pass over ``path``, as the face pass records it."""
    reader = VideoReader(path)
    recorder = FrameTimes(reader.fps)
    for frame in reader.frames():
        recorder.add(frame)
    return recorder.clock()


def test_times_come_from_the_timestamps_of_a_variable_rate_video(tmp_path):
    times_ms = [0, 40, 80, 300, 340, 900, 940, 980]
    path = variable_rate_video(tmp_path / "vfr.mkv", _frames(8, 64, 48), times_ms, last_ms=60)
    clock = _clock(path)
    assert clock.variable and clock.source == "pts"
    np.testing.assert_allclose(clock.times, np.array(times_ms) / 1000, atol=1e-9)
    assert clock.duration == pytest.approx(1.04) and clock.fps == pytest.approx(8 / 1.04)


def test_a_constant_rate_video_keeps_index_over_fps_exactly(tmp_path):
    """Matroska rounds 29.97 fps timestamps to milliseconds: the times stay index / fps, as always."""
    path = _raw_video(tmp_path / "ntsc.mkv", _frames(30, 32, 16), fps=Fraction(30000, 1001))
    clock = _clock(path)
    assert not clock.variable and clock.source == "pts" and clock.fps == pytest.approx(30000 / 1001)
    assert np.array_equal(clock.times, np.arange(30) / clock.fps) and clock.duration == 30 / clock.fps


def _fake_frames(times, base=Fraction(1, 1000)):
    return [SimpleNamespace(time=t, time_base=base, duration=0) for t in times]


@pytest.mark.parametrize("times", [[0.0, None, 0.08], [0.0, 0.04, 0.04, 0.12], [0.0, 0.5, 0.3],
                                   [0.0, 0.04, 1e9]], ids=["no-pts", "repeated", "backwards", "huge-gap"])
def test_a_stream_without_a_usable_clock_falls_back_to_index_over_fps(times):
    recorder = FrameTimes(25.0)
    for frame in _fake_frames(times):
        recorder.add(frame)
    clock = recorder.clock()
    assert clock.source == "index/fps" and not clock.variable
    assert np.array_equal(clock.times, np.arange(len(times)) / 25.0)


@pytest.mark.parametrize("name", ["timed.mp4", "timed.mkv", "timed.mov"])
def test_the_writer_shows_each_frame_at_its_time_and_the_last_until_the_end(tmp_path, name):
    times = [0.0, 0.04, 0.3, 0.34, 1.0]
    with VideoWriter(tmp_path / name, 5, 64, 48, times=times, duration=1.25) as writer:
        for frame in _frames(5, 64, 48):
            writer.write(frame)
    written, shown, played = frame_times(tmp_path / name)
    np.testing.assert_allclose(written, times, atol=1e-6)
    assert shown == pytest.approx(1.25) and played == pytest.approx(1.25)
    with pytest.raises(ValueError, match="only 1 times"), VideoWriter(tmp_path / "x.mp4", 5, 64, 48, times=[0.0]) as w:
        w.write(_frames(1, 64, 48)[0])
        w.write(_frames(1, 64, 48)[0])
    assert not (tmp_path / "x.mp4").exists()
    with pytest.raises(ValueError, match="increasing"):
        VideoWriter(tmp_path / "y.mp4", 5, 64, 48, times=[0.0, 0.0])


def _h264_with_short_gops(path, frames, *, gop: int = 8, fps: int = 25):
    """H.264 with B-frames and a key frame every ``gop`` frames: frames decode out of order."""
    height, width = frames[0].shape[:2]
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.codec_context.gop_size = gop
        stream.codec_context.options = {"bf": "2", "keyint_min": str(gop), "sc_threshold": "0"}
        for frame in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def test_read_frame_seeks_by_the_frames_own_pts_and_gets_exactly_that_frame(tmp_path, monkeypatch):
    """The scan's thumbnail: one frame near the end without decoding every frame before it."""
    path = _h264_with_short_gops(tmp_path / "gops.mp4", _frames(64, 96, 64))
    reader = VideoReader(path)
    times = reader.frame_times()
    every = []
    for frame in reader.frames():
        times.add(frame)
        every.append(reader.to_rgb(frame))
    clock = times.clock()
    assert clock.pts is not None and len(clock.pts) == 64
    decoded = [0]
    original = av.container.InputContainer.decode

    def counting(self, *args, **kwargs):
        for frame in original(self, *args, **kwargs):
            decoded[0] += 1
            yield frame

    monkeypatch.setattr(av.container.InputContainer, "decode", counting)
    for index in (63, 40, 0, 17, 55, 8):
        decoded[0] = 0
        np.testing.assert_array_equal(reader.read_frame(index, clock.pts), every[index])
        assert decoded[0] <= 8 + 3, f"frame {index}: {decoded[0]} frames decoded"  # one GOP (+ reordering)
    np.testing.assert_array_equal(reader.read_frame(50), every[50])  # no pts: from the start, the same frame
    wrong = clock.pts.copy()
    wrong[30] += 1  # a pts no frame has: not found by seeking, read from the start instead
    np.testing.assert_array_equal(reader.read_frame(30, wrong), every[30])
