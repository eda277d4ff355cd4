"""Option choices the command line shows in its help, copied from the library so that parsing the
options imports nothing heavy (torch, OpenCV): ``--help`` answers at once.

``tests/test_cli_help.py`` checks every copy against the library it stands for.
"""

from __future__ import annotations

PRESETS = ("paper", "small", "tiny")  # models.available_presets()
DATASETS = ("celebdf", "dfdc", "ffpp", "folder")  # sorted(data.datasets.READERS)
FFPP_COMPRESSIONS = ("raw", "c23", "c40")  # data.datasets.ffpp.COMPRESSIONS
FFPP_MANIPULATIONS = ("Deepfakes", "Face2Face", "FaceSwap", "NeuralTextures", "FaceShifter",
                      "DeepFakeDetection")  # data.datasets.ffpp.MANIPULATIONS
PERTURBATIONS = ("jpeg", "blur", "noise", "downscale", "brightness", "contrast", "drop_frames",
                 "shuffle_frames")  # analysis.perturbations.available_perturbations()
PRECISIONS = ("auto", "fp32", "bf16", "fp16")  # precision.PRECISIONS
CROP_MARGIN = 1.25  # data.faces.CROP_MARGIN
