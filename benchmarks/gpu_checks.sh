#!/usr/bin/env bash
# Every check that needs a GPU, in one run that fits a lent machine's 10-minute command (about 8
# minutes on one H100): the CUDA tests (the GPU path's maps and scores against the CPU's, MTCNN on
# the device), the detector's throughput there, and bench_gpu's full run with its profile.
#
#     bash benchmarks/gpu_checks.sh OUT        # then copy OUT into benchmarks/results/gpu_<card>/
set -u
out=${1:?usage: bash benchmarks/gpu_checks.sh OUT}
mkdir -p "$out"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv > "$out/card.csv" 2>&1
status=0
python -m pytest -q -rs tests/test_gpu_parity.py tests/test_mtcnn_torch.py > "$out/cuda_tests.txt" 2>&1 || status=1
tail -n 3 "$out/cuda_tests.txt"
python benchmarks/bench_detector.py --device cuda --batches 1 8 32 --out "$out/detector_cuda.json" \
    > "$out/detector_cuda.md" 2>&1 || status=1
python benchmarks/bench_gpu.py --out "$out/gpu" --time-limit 360 || status=1
exit $status
