"""Video reading and writing (PyAV), and every bad-input case of the reader."""

from __future__ import annotations

import av
import numpy as np
import pytest

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
