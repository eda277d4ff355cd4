"""Mutation check: each deliberate breakage of the explanation code must turn a test red.

Every mutant edits one line of a fresh copy of the package, then runs the tests that guard that
line against the copy; the check fails unless every mutant is caught.  A control run first checks
that the same tests pass on the unmodified copy (so a failing test cannot "catch" everything), and a
mutant whose line is no longer in the code fails the check too: refactor the code, update it here.

Two sets: ``explain`` (``MUTANTS``, the default, run by tests/test_mutations.py in the test suite)
breaks the explanation and judging code; ``faults`` (``FAULT_MUTANTS``, run by hand: a few minutes)
removes once each fix of the docs/faults.md rows on hostile files and interrupted runs (results:
benchmarks/results/fault_mutations.md).

    python tests/mutation_check.py                  # all mutants of the explanation code
    python tests/mutation_check.py -k lrp           # the mutants whose name contains "lrp"
    python tests/mutation_check.py --set faults -v  # each fix of docs/faults.md removed once
    python tests/mutation_check.py --set performance -v  # each pass made to decode again (issue 25)
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Mutant:
    name: str
    path: str  # relative to the repository root
    old: str
    new: str
    tests: tuple[str, ...]


MUTANTS = (
    # -- LRP: every rule, the read-out and the account
    Mutant("lrp-attention-weights-carry-relevance", "istvt_explain/models/layers.py",
           "q, k = q.detach(), k.detach()", "q, k = q, k",
           ("tests/test_explain_lrp.py::test_lrp_equals_the_frozen_gate_network_token_by_token",)),
    Mutant("lrp-layer-norm-scale-varies", "istvt_explain/models/layers.py",
           "y = centred / std.detach()", "y = centred / std",
           ("tests/test_explain_lrp.py::test_lrp_equals_the_frozen_gate_network_token_by_token",)),
    Mutant("lrp-gelu-gradient-not-identity-rule", "istvt_explain/models/layers.py",
           "return _IdentityRule.apply(x, super().forward) if self.lrp else super().forward(x)",
           "return super().forward(x)",
           ("tests/test_explain_lrp.py::test_lrp_equals_the_frozen_gate_network_token_by_token",)),
    Mutant("lrp-map-includes-positions-and-class-tokens", "istvt_explain/attribution/lrp.py",
           'content = (grad * parts["content"]).sum(dim=-1)[:, 1:, 1:]',
           "content = (grad * upcast(embedded)).sum(dim=-1)[:, 1:, 1:]",
           ("tests/test_explain_lrp.py::test_the_account_adds_up_to_the_score_and_the_map_is_the_patch_content",)),
    Mutant("lrp-bias-shares-dropped", "istvt_explain/attribution/lrp.py",
           "shares.update({f\"bias:{n}\": v for n, v in account.bias_shares(",
           "shares.update({f\"bias:{n}\": 0 * v for n, v in account.bias_shares(",
           ("tests/test_explain_lrp.py::test_lrp_equals_the_frozen_gate_network_token_by_token",)),
    # -- batching: a target stays with its clip across batches
    Mutant("batch-targets-misaligned", "istvt_explain/attribution/batching.py",
           "target=per_clip[first:last] if per_clip is not None else target",
           "target=per_clip[:last - first] if per_clip is not None else target",
           ("tests/test_explain_methods.py::test_explain_batches_keeps_each_target_with_its_clip",)),
    # -- the judge
    Mutant("pointing-map-transposed", "istvt_explain/evaluate/explanations/localisation.py",
           "m = pixel_map.detach().double().cpu().numpy()",
           "m = pixel_map.detach().double().cpu().transpose(-1, -2).numpy()",
           ("tests/test_judging.py::test_pointing_reads_rows_as_rows_on_an_asymmetric_mask",)),
    Mutant("sanity-without-repeatability", "istvt_explain/evaluate/explanations/criteria.py",
           'margins={"repeats": repeat - REPEAT_THRESHOLD, "holds_under_nudge": steady - REPEAT_THRESHOLD,',
           "margins={",
           ("tests/test_judging.py::test_fresh_noise_fails_sanity_because_it_does_not_repeat",)),
    Mutant("pointing-against-chance-only", "istvt_explain/evaluate/explanations/criteria.py",
           'result.margins = {"over_centre_prior": table["pointing_game"] - table["centre_prior"],\n'
           '                          "over_mask_prior": table["pointing_game"] - table["mask_prior"]}',
           'result.margins = {"over_chance": table["pointing_game"] - table["pointing_chance"]}',
           ("tests/test_judging.py::test_the_centre_prior_cannot_beat_itself_where_faces_are_centred",)),
    Mutant("bootstrap-resamples-clips-not-people", "istvt_explain/evaluate/statistics.py",
           "labels = np.arange(x.size) if groups is None else np.asarray(list(groups), dtype=object)",
           "labels = np.arange(x.size)",
           ("tests/test_judging.py::test_people_weigh_the_same_and_the_bootstrap_resamples_people",)),
    Mutant("no-holm-correction", "istvt_explain/evaluate/statistics.py",
           "if p > alpha / (m - i):", "if p > alpha:",
           ("tests/test_judging.py::test_holm_steps_down_and_leaves_unasked_questions_out",)),
    Mutant("verdict-passes-on-any-margin", "istvt_explain/evaluate/explanations/judge.py",
           '"pass" if all(passed[key] for key in keys) else "fail"',
           '"pass" if any(passed[key] for key in keys) else "fail"',
           ("tests/test_judging.py::test_the_centre_prior_fails_sanity_and_pointing",)),
    Mutant("deletion-gain-sign-flipped", "istvt_explain/evaluate/explanations/criteria.py",
           "gain = self.sign * (aucs - random)", "gain = -self.sign * (aucs - random)",
           ("tests/test_judging.py::test_the_judge_passes_a_faithful_oracle", "tests/test_judging.py::test_the_judge_fails_the_inverse_oracle")),
    Mutant("imputation-leaves-the-removed-pixels", "istvt_explain/evaluate/explanations/imputation.py",
           "    return torch.where(known, frames, solution)\n", "    return frames\n",
           ("tests/test_judging.py::test_linear_imputation_solves_road_equations_and_keeps_known_pixels",)),
    Mutant("tie-break-on-an-absolute-scale", "istvt_explain/evaluate/explanations/temporal.py",
           "scale = span if span > 0 else max(float(values.abs().max()), 1e-300)", "scale = 1.0",
           ("tests/test_judging.py::test_ties_are_broken_relative_to_the_maps_own_scale",)),
    Mutant("temporal-top-and-bottom-swapped", "istvt_explain/evaluate/explanations/temporal.py",
           "return order[:k].tolist(), order[-k:].tolist()", "return order[-k:].tolist(), order[:k].tolist()",
           ("tests/test_judging.py::test_frame_removal_table_covers_every_subset_and_top_and_bottom_pick_the_extremes",)),
    Mutant("sanity-compares-a-map-with-itself", "istvt_explain/evaluate/explanations/sanity.py",
           "cascading.append(_compare(label, original, final))",
           "cascading.append(_compare(label, original, original))",
           ("tests/test_judging.py::test_sanity_passes_a_model_map_and_fails_an_input_only_map",)),
    Mutant("pointing-game-counts-a-flat-map", "istvt_explain/evaluate/explanations/localisation.py",
           "if top.mean() > FLAT_SHARE:", "if False:",
           ("tests/test_judging.py::test_a_flat_map_is_neither_a_hit_nor_a_miss",)),
    Mutant("sanity-uses-the-signed-correlation", "istvt_explain/evaluate/explanations/sanity.py",
           "return float(abs(spearmanr(x, y).statistic))", "return float(spearmanr(x, y).statistic)",
           ("tests/test_judging.py::test_similarities_ignore_the_sign_and_see_flat_maps",)),
    # -- the other methods
    Mutant("integrated-gradients-return-zeros", "istvt_explain/attribution/captum_methods.py",
           'return attr, {"delta": delta.detach()}', 'return torch.zeros_like(attr), {"delta": delta.detach()}',
           ("tests/test_explain_methods.py::test_integrated_gradients_add_up_to_the_score_difference",)),
    Mutant("rollout-ignores-the-attention", "istvt_explain/attribution/attention_methods.py",
           "r = _propagate_class_row(blocks, keep=0.5, mix=0.5)",
           "r = _propagate_class_row([(torch.ones_like(a) / a.shape[-1], torch.ones_like(b) / b.shape[-1]) "
           "for a, b in blocks], keep=0.5, mix=0.5)",
           ("tests/test_explain_references.py::test_rollout_equals_the_dense_product_of_the_captured_attention",)),
    Mutant("frame-curve-sums-the-class-column", "istvt_explain/attribution/propagation.py",
           "return patches.reshape(b, rows - 1, grid, grid), patches.sum(dim=-1)",
           "return patches.reshape(b, rows - 1, grid, grid), r[:, 1:, :].sum(dim=-1)",
           ("tests/test_explain_methods.py::test_frame_importance_is_the_mass_of_the_frames_patches",)),
    Mutant("raw-attention-reads-unused-rows", "istvt_explain/attribution/attention_methods.py",
           "patches = paths[:, 1:, 1:]", "patches = spatial[:, 1:, 0, 1:]",
           ("tests/test_explain_methods.py::test_raw_attention_reads_the_last_block_paths_the_logit_uses",)),
)


# Each fix of docs/faults.md (hostile files and folders, interrupted runs) removed once, with the test
# that its row names.  Run by hand (``--set faults``), not in the test suite: several of these tests
# start processes and kill them.
FAULT_MUTANTS = (
    # -- scan: interrupted, failing and full-disk runs
    Mutant("scan-row-appended-only-at-the-end", "istvt_explain/pipeline/scan/runner.py",
           "append_row(folder, row)  # on disk now: a kill loses only the videos in flight", "pass",
           ("tests/test_faults.py::test_a_scan_killed_halfway_leaves_every_finished_record_readable",)),
    Mutant("scan-keeps-each-failed-videos-exception", "istvt_explain/pipeline/scan/runner.py",
           "message = _error_message(video, err)  # the message only: no traceback kept alive",
           'message = _error_message(video, err); _scan_one.__dict__.setdefault("kept", []).append(err)',
           ("tests/test_faults.py::test_a_method_that_raises_costs_only_its_video",)),
    Mutant("scan-full-disk-is-a-traceback", "istvt_explain/pipeline/scan/runner.py",
           "    except OSError as err:\n        raise InputError(f\"{folder.root}: cannot write the results",
           "    except () as err:\n        raise InputError(f\"{folder.root}: cannot write the results",
           ("tests/test_faults.py::test_a_full_disk_ends_the_scan_in_one_line_with_nothing_half_written",)),
    Mutant("scan-thumbnail-left-without-its-report", "istvt_explain/pipeline/scan/runner.py",
           "        folder.thumb_path(key).unlink(missing_ok=True)\n        raise\n", "        raise\n",
           ("tests/test_faults.py::test_a_full_disk_ends_the_scan_in_one_line_with_nothing_half_written",)),
    Mutant("scan-opens-hostile-entries", "istvt_explain/pipeline/scan/runner.py",
           "    if problem is not None:\n        raise InputError(problem)", "    if False:\n        raise InputError(problem)",
           ("tests/test_faults.py::test_hostile_entries_of_a_scanned_folder_are_error_rows",)),
    Mutant("scan-non-utf8-name-not-escaped", "istvt_explain/pipeline/scan/discovery.py",
           'return raw.decode("utf-8", "backslashreplace")', "return text",
           ("tests/test_faults.py::test_hostile_entries_of_a_scanned_folder_are_error_rows",)),
    Mutant("scan-workers-outlive-their-parent", "istvt_explain/pipeline/scan/runner.py",
           "    exit_with_parent(parent)\n", "    pass\n",
           ("tests/test_faults.py::test_scan_workers_end_with_their_parent_however_it_ends",)),
    Mutant("scan-sigterm-not-ctrl-c", "istvt_explain/cli/scan.py",
           "    from ..data._files import sigterm_as_interrupt\n",
           "    from contextlib import nullcontext as sigterm_as_interrupt\n",
           ("tests/test_faults.py::test_sigterm_stops_a_scan_as_ctrl_c_does",)),
    # -- a method that raises, or returns broken maps
    Mutant("method-exception-escapes-unnamed", "istvt_explain/pipeline/run.py",
           "except Exception as err:  # noqa: BLE001 - a plugin's bug, or a built-in's fault: that video's error",
           "except () as err:",
           ("tests/test_faults.py::test_the_command_line_gives_one_line_for_a_method_that_raises",)),
    Mutant("method-maps-unchecked", "istvt_explain/attribution/base.py",
           "        check_method_maps(self.name, spatial, temporal, logits, clips.shape[0], clips.shape[1])\n", "",
           ("tests/test_faults.py::test_broken_maps_of_a_plugin_are_one_clear_error",)),
    # -- crafted checkpoints
    Mutant("checkpoint-temperature-unbounded", "istvt_explain/models/limits.py",
           "if not _is_number(value, integer=False) or not low <= value <= high:",
           "if not _is_number(value, integer=False):",
           ("tests/test_faults.py::test_a_crafted_checkpoint_is_refused_from_its_header[temperature 1e-300]",)),
    Mutant("checkpoint-header-size-unbounded", "istvt_explain/models/checkpoint_file.py",
           "            if length > MAX_HEADER_BYTES:", "            if False:",
           ("tests/test_faults.py::test_a_crafted_checkpoint_is_refused_from_its_header"
            "[a million empty tensors (58 MB header)]",)),
    Mutant("checkpoint-tensor-count-unbounded", "istvt_explain/models/checkpoint_file.py",
           "    if len(table) > MAX_TENSORS:", "    if False:",
           ("tests/test_faults.py::test_a_crafted_checkpoint_is_refused_from_its_header"
            "[20,000 empty tensors under the byte limit]",)),
    Mutant("checkpoint-config-unbounded", "istvt_explain/models/limits.py",
           "        if not low <= value <= high:\n            raise ValueError(f\"model config field",
           "        if False:\n            raise ValueError(f\"model config field",
           ("tests/test_faults.py::test_a_crafted_checkpoint_is_refused_from_its_header[mlp_ratio 2000]",)),
    # -- the main command: SIGTERM, and what a killed run left
    Mutant("main-sigterm-not-ctrl-c", "istvt_explain/cli/explain_video.py",
           "    from ..data._files import sigterm_as_interrupt\n",
           "    from contextlib import nullcontext as sigterm_as_interrupt\n",
           ("tests/test_faults.py::test_sigterm_stops_the_main_command_as_ctrl_c_does",)),
    Mutant("main-stale-temporaries-kept", "istvt_explain/cli/staging.py",
           "        remove_stale_parts(parent, stale_temporaries(final.name), self.started)\n", "",
           ("tests/test_faults.py::test_stale_temporaries_of_a_killed_main_command_are_removed_at_the_next_run",)),
    Mutant("main-removes-a-living-runs-temporaries", "istvt_explain/data/_files.py",
           "if info.st_mtime >= before or written_by_a_living_process(part):", "if info.st_mtime >= before:",
           ("tests/test_faults.py::test_an_older_temporary_goes_unless_the_process_that_writes_it_still_runs",
            "tests/test_faults.py::test_stale_temporaries_of_a_killed_main_command_are_removed_at_the_next_run")),
    Mutant("forked-worker-names-itself-as-its-parent", "istvt_explain/data/_files.py",
           "    return _writer_tag(os.getpid())  # keyed by pid: a forked worker must not inherit its parent's tag",
           '    return writer_tag.__dict__.setdefault("tag", _writer_tag(os.getpid()))',
           ("tests/test_faults.py::test_a_forked_worker_names_itself_not_its_parent_in_its_temporaries",)),
    # -- checkpoints and caches that are broken, not crafted (the older rows)
    Mutant("non-finite-weights-loaded", "istvt_explain/models/weights.py",
           "    if bad:\n        raise CheckpointError(f\"{path}: {len(bad)} weight tensor(s)",
           "    if False:\n        raise CheckpointError(f\"{path}: {len(bad)} weight tensor(s)",
           ("tests/test_faults.py::test_non_finite_weights_are_refused_at_load",)),
    Mutant("pickles-loaded-with-their-code", "istvt_explain/models/weights.py",
           'return torch.load(path, map_location="cpu", weights_only=True)',
           'return torch.load(path, map_location="cpu", weights_only=False)',
           ("tests/test_faults.py::test_refused_pickles_give_one_complete_sentence_and_no_warning",)),
    Mutant("incomplete-cache-entry-counts-as-cached", "istvt_explain/data/cache.py",
           "    return entry_problem(video_dir(cache_dir, key), image_size) is None",
           "    return video_dir(cache_dir, key).is_dir()",
           ("tests/test_faults.py::test_an_incomplete_cache_entry_is_rebuilt",)),
    Mutant("train-overwrites-a-run-without-resume", "istvt_explain/cli/train.py",
           "    if resume or force or not (out / STATE_FILE).is_file():", "    if True:",
           ("tests/test_train.py::test_a_fresh_run_over_a_folder_holding_a_run_is_refused_without_resume_or_force",)),
    # -- the material cache
    Mutant("material-member-hash-unchecked", "istvt_explain/data/material/archives.py",
           "    if found is not None and found[1] == expected:", "    if found is not None:",
           ("tests/test_material_archives.py::test_a_planted_file_in_the_material_cache_is_never_used",)),
    # -- a variable-frame-rate video: the clock, the report's times, the written video's times
    Mutant("vfr-clock-ignores-the-timestamps", "istvt_explain/data/clock.py",
           "if count == 0 or any(t is None for t in self._times):", "if True:",
           ("tests/test_faults.py::test_a_variable_frame_rate_video_keeps_its_timestamps",)),
    Mutant("vfr-report-times-are-index-over-fps", "istvt_explain/pipeline/analysis.py",
           "if self.clock is not None and len(self.clock.times) == self.num_frames:", "if False:",
           ("tests/test_faults.py::test_a_variable_frame_rate_video_keeps_its_timestamps",)),
    Mutant("vfr-video-written-at-a-constant-rate", "istvt_explain/pipeline/heatmap_video.py",
           "timed = clock is not None and clock.variable and len(clock.times) == total", "timed = False",
           ("tests/test_faults.py::test_a_variable_frame_rate_video_keeps_its_timestamps",)),
    # -- benchmarks/bench_gpu.py
    Mutant("bench-gpu-smoke-needs-cuda", "benchmarks/bench_gpu.py",
           "    if not available and name is None and smoke:", "    if False:",
           ("tests/test_bench_gpu.py::test_smoke_without_a_device_falls_back_to_the_cpu_in_one_line",)),
)
PERFORMANCE_MUTANTS = (
    # -- one decode per video (issue 25): each pass that could decode again must not
    Mutant("crops-decode-again", "istvt_explain/data/clips.py",
           "    if kept is not None and kept.holds(found.num_frames):", "    if False:",
           ("tests/test_single_decode.py::test_the_command_decodes_each_frame_once",)),
    Mutant("render-decodes-again", "istvt_explain/pipeline/heatmap_video.py",
           "    if frames is not None and frames.holds(analysis.num_frames):", "    if False:",
           ("tests/test_single_decode.py::test_the_command_decodes_each_frame_once",)),
    Mutant("store-ignores-its-budget", "istvt_explain/data/frame_store.py",
           "        if (self._count + 1) * self.frame_bytes > self.budget:", "        if False:",
           ("tests/test_single_decode.py::test_a_video_over_the_budget_is_decoded_again_with_the_same_result",)),
    Mutant("full-disk-while-keeping-raises", "istvt_explain/data/frame_store.py",
           "        except OSError as err:  # a full disk costs a second decode, never the analysis",
           "        except ZeroDivisionError as err:",
           ("tests/test_single_decode.py::test_a_full_disk_while_keeping_costs_a_second_decode_not_the_analysis",)),
    Mutant("batched-detections-out-of-order", "istvt_explain/data/detectors.py",
           "        for slot, found in zip(slots, detector.detect_batch(batch), strict=True):",
           "        for slot, found in zip(slots[::-1], detector.detect_batch(batch), strict=True):",
           ("tests/test_mtcnn_torch.py::test_the_video_job_finds_the_same_faces_with_the_batched_torch_detector",)),
    Mutant("thumbnail-decodes-from-the-start", "istvt_explain/data/video.py",
           "        if pts is not None and 0 <= index < len(pts):", "        if False:",
           ("tests/test_data_video.py::test_read_frame_seeks_by_the_frames_own_pts_and_gets_exactly_that_frame",)),
    Mutant("clips-alone-decode-again", "istvt_explain/data/clips.py",
           "    with frames_kept(keep, keep_frames, frames_folder) as kept:",
           "    with frames_kept(keep, False, frames_folder) as kept:",
           ("tests/test_single_decode.py::test_preprocessing_and_hard_samples_decode_each_video_once",)),
)
MUTANT_SETS = {"explain": MUTANTS, "faults": FAULT_MUTANTS, "performance": PERFORMANCE_MUTANTS}


def copy_project(target: Path) -> None:
    """The package, its tests and the benchmark scripts (some tests run them; their results stay out)."""
    for name in ("istvt_explain", "tests", "benchmarks"):
        shutil.copytree(ROOT / name, target / name,
                        ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "results"))
    shutil.copy2(ROOT / "pyproject.toml", target / "pyproject.toml")


TIMEOUT = 900
"""Seconds one run of the tests may take: a mutant that makes a test hang is caught, not waited on."""


def run_tests(copy: Path, tests: tuple[str, ...]) -> subprocess.CompletedProcess:
    """The tests against ``copy`` (its package first on the path), stopping at the first failure;
    a run past ``TIMEOUT`` fails (return code 124, "timed out" in its output)."""
    env = {**os.environ, "PYTHONPATH": str(copy), "PYTHONDONTWRITEBYTECODE": "1"}
    command = [sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", *tests]
    try:
        return subprocess.run(command, cwd=copy, env=env, capture_output=True, text=True, timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        return subprocess.CompletedProcess(command, 124, f"E   timed out after {TIMEOUT} s\n", "")


def apply(copy: Path, mutant: Mutant) -> None:
    path = copy / mutant.path
    text = path.read_text()
    count = text.count(mutant.old)
    if count != 1:
        raise SystemExit(f"mutant {mutant.name}: its line occurs {count} times in {mutant.path} "
                         "(the code changed: update tests/mutation_check.py)")
    path.write_text(text.replace(mutant.old, mutant.new))


def _summary(stdout: str) -> list[str]:
    """pytest's short summary lines (which test failed, and the first line of why)."""
    return [line for line in stdout.splitlines() if line.startswith(("FAILED", "ERROR", "E "))][:4]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--set", choices=MUTANT_SETS, default="explain",
                        help="explain: the explanation and judging code (default); faults: the fixes of docs/faults.md")
    parser.add_argument("-k", default="", help="only the mutants whose name contains this")
    parser.add_argument("-v", action="store_true", help="show how each mutant was caught (pytest's summary)")
    args = parser.parse_args(argv)
    mutants = [m for m in MUTANT_SETS[args.set] if args.k in m.name]
    if not mutants:  # else the control run would be pytest without test ids: the whole suite
        print(f"no mutant of the {args.set!r} set has {args.k!r} in its name", file=sys.stderr)
        return 1
    with tempfile.TemporaryDirectory(prefix="istvt-mutants-") as tmp:
        control = Path(tmp) / "control"
        copy_project(control)
        probe = subprocess.run([sys.executable, "-c", "import istvt_explain; print(istvt_explain.__file__)"],
                               cwd=control, env={**os.environ, "PYTHONPATH": str(control)}, capture_output=True,
                               text=True)
        if not probe.stdout.strip().startswith(str(control)):
            print(f"the copy is not the package under test: {probe.stdout.strip() or probe.stderr}", file=sys.stderr)
            return 1
        every_test = tuple(dict.fromkeys(t for m in mutants for t in m.tests))
        done = run_tests(control, every_test)
        if done.returncode != 0:
            print("control run failed: the guarding tests do not pass on the unmodified code\n" + done.stdout[-3000:],
                  file=sys.stderr)
            return 1
        missed = []
        for mutant in mutants:
            copy = Path(tmp) / mutant.name
            copy_project(copy)
            apply(copy, mutant)
            start = time.perf_counter()
            result = run_tests(copy, mutant.tests)
            caught = result.returncode != 0
            print(f"{'caught' if caught else 'MISSED'}  {mutant.name}  ({time.perf_counter() - start:.0f} s)",
                  flush=True)
            if not caught:
                missed.append(mutant.name)
            elif args.v:
                print("    " + "\n    ".join(_summary(result.stdout)))
            shutil.rmtree(copy)
    if missed:
        print(f"{len(missed)} of {len(mutants)} mutants survived: {', '.join(missed)}", file=sys.stderr)
        return 1
    print(f"all {len(mutants)} mutants caught")
    return 0


if __name__ == "__main__":
    sys.exit(main())
