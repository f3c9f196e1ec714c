"""The tiny study on a real Slurm cluster, through a test profile built on workflow/profiles/slurm; GPU placement
on a node with two GPUs; and, without a cluster, the GPU and CPU requests a dry run plans.

Needs a reachable Slurm cluster with an idle node offering a GPU GRES (two GPUs for the placement test):
`.ci/slurm-up.sh` (run by `.ci/run`, as root) starts a single-node one on localhost with two stand-in GPUs,
so the train jobs' `gpu=1` request stays real. Elsewhere the tests skip, unless FERFLOW_REQUIRE_SLURM=1 (set
by `.ci/run` once the cluster is up) turns the skip into a failure.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml

from conftest import REPO, bin_path, copy_workflow
from ferflow import checkpoint
from ferflow.layout import TIME_FIGURE
from ferflow.report.tables import GROUP_COLUMNS
from ferflow.storage import load_split, read_json

pytestmark = pytest.mark.slurm

RESULTS = "results/tiny"
TIMEOUT_S = 2400  # a guard against hangs: the run takes 5-10 min on 2 shared cores (22 jobs, mostly one at a time)
POLL_S = 5
# Slurm's record of each job; Comment last (free text). BatchFlag=1: submitted with sbatch.
SQUEUE_FIELDS = "JobID:|,Name:|,State:|,BatchFlag:|,tres-per-job:|,cpus-per-task:|,StartTime:|,EndTime:|,Comment:"


def _run(*cmd: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, text=True, capture_output=True, timeout=30)


def _slurm_unavailable() -> str | None:
    """Why the test cannot run here, or None."""
    hint = "start a local cluster with `.ci/slurm-up.sh` (as root)"
    for tool in ("sbatch", "squeue", "sinfo"):
        if shutil.which(tool) is None:
            return f"Slurm not installed ({tool} not found): {hint}"
    try:
        nodes = _run("sinfo", "--noheader", "--Node", "--format=%N %T %G")
    except subprocess.TimeoutExpired:
        return f"Slurm controller not answering (sinfo timed out): {hint}"
    if nodes.returncode != 0:
        return f"Slurm controller not reachable ({nodes.stderr.strip()}): {hint}"
    rows = [line.split() for line in nodes.stdout.splitlines() if line.strip()]
    if not any(state in ("idle", "mixed") and "gpu" in gres for _, state, gres in rows):
        return f"no idle Slurm node with a GPU GRES (sinfo: {nodes.stdout.strip() or 'no nodes'}): {hint}"
    return None


def _default_partition() -> str:
    """The cluster's default partition (marked * by sinfo), else its first one."""
    partitions = _run("sinfo", "--noheader", "--format=%P").stdout.split()
    default = [p.rstrip("*") for p in partitions if p.endswith("*")]
    return (default or partitions)[0]


def _test_profile(dest: Path, cpus_per_gpu: int | None = None) -> Path:
    """workflow/profiles/slurm with what a small test cluster needs (each override explained); ``cpus_per_gpu``
    replaces the GPU jobs' CPU request (their threads), so that two of them fit a small node."""
    profile = yaml.safe_load((REPO / "workflow/profiles/slurm/config.yaml").read_text())
    profile.update(
        {
            "slurm-status-command": "squeue",  # no slurmdbd: sacct cannot answer
            "slurm-init-seconds-before-status-checks": 2,  # seconds-long jobs: poll early
            "slurm-keep-successful-logs": True,  # the per-job logs Slurm wrote, kept for the checks
            "max-threads": 2,  # the node's CPUs; same thread counts as the local run
        }
    )
    defaults = profile["default-resources"]
    defaults.pop("slurm_account", None)  # a test cluster has no accounts
    defaults.update(slurm_partition=_default_partition(), mem_mb=1000, runtime=30)
    profile["set-resources"]["train"].update(mem_mb=2000, runtime=30)
    if cpus_per_gpu is not None:
        profile["set-resources"]["train"]["cpus_per_gpu"] = cpus_per_gpu
    dest.mkdir(parents=True)
    (dest / "config.yaml").write_text(yaml.safe_dump(profile, sort_keys=False))
    return dest


def _observe(seen: dict[str, dict]) -> None:
    """Record every job Slurm still knows (finished jobs stay listed for MinJobAge, 300 s by default)."""
    try:
        out = _run("squeue", "--states=all", "--noheader", "--Format", SQUEUE_FIELDS).stdout
    except subprocess.TimeoutExpired:
        return  # a busy controller: the next poll catches up
    for line in out.splitlines():
        jobid, name, state, batch, tres, cpus, start, end, comment = (part.strip() for part in line.split("|", 8))
        record = seen.setdefault(
            jobid,
            {"name": name, "batch": batch, "tres": tres, "cpus_per_task": cpus, "comment": comment, "states": set()},
        )
        record["states"].add(state)
        record.update(start=start, end=end)  # the last seen: the real end once the job has finished


def _run_id(log: str) -> str | None:
    """The plugin's ID of the run: the name of all its Slurm jobs."""
    found = re.search(r"SLURM run ID: (\S+)", log)
    return found.group(1) if found else None


def _stop(proc: subprocess.Popen[str], log_path: Path) -> None:
    """Stop snakemake and cancel the Slurm jobs of its run."""
    proc.kill()
    proc.wait()
    run_id = _run_id(log_path.read_text())
    if run_id:
        _run("scancel", "--name", run_id)


def _require_slurm(gpus: int = 1) -> None:
    """Skip (or fail, under FERFLOW_REQUIRE_SLURM=1) without a cluster whose idle node has ``gpus`` GPUs."""
    reason = _slurm_unavailable()
    if not reason and gpus > 1:
        gres = _run("sinfo", "--noheader", "--Node", "--format=%G").stdout
        if not any(int(n) >= gpus for n in re.findall(r"gpu(?::\w+)*:(\d+)", gres)):
            reason = f"no Slurm node with {gpus} GPUs (sinfo: {gres.strip()})"
    if reason:
        if os.environ.get("FERFLOW_REQUIRE_SLURM") == "1":
            pytest.fail(f"FERFLOW_REQUIRE_SLURM=1 but {reason}")
        pytest.skip(reason)


def _snakemake_on_slurm(workdir: Path, profile: Path, *args: str) -> tuple[str, dict[str, dict]]:
    """Run the tiny preset (plus ``args``) with ``profile`` until snakemake ends: (its log, Slurm's records)."""
    cmd = [bin_path("snakemake"), "--profile", str(profile), "--configfile", "workflow/presets/tiny.yaml", *args]
    venv_bin = Path(sys.executable).parent  # left off PATH: the Snakefile finds ferflow, as after .venv/bin/snakemake
    path = os.pathsep.join(p for p in os.environ["PATH"].split(os.pathsep) if Path(p) != venv_bin)
    env = {**os.environ, "PATH": path}
    log_path = workdir / "snakemake.log"
    seen: dict[str, dict] = {}
    with log_path.open("w") as log:
        proc = subprocess.Popen(cmd, cwd=workdir, env=env, stdout=log, stderr=subprocess.STDOUT, text=True)
        deadline = time.monotonic() + TIMEOUT_S
        try:
            while proc.poll() is None:
                if time.monotonic() > deadline:
                    pytest.fail(
                        f"snakemake on Slurm still running after {TIMEOUT_S} s:\n{log_path.read_text()[-4000:]}"
                    )
                _observe(seen)
                time.sleep(POLL_S)
        finally:
            if proc.poll() is None:  # the test failed or was interrupted: leave no run behind
                _stop(proc, log_path)
    _observe(seen)
    text = log_path.read_text()
    assert proc.returncode == 0, f"{' '.join(cmd)} failed ({proc.returncode}):\n{text[-8000:]}"
    run_id = _run_id(text)  # Slurm still lists an earlier run's jobs (MinJobAge): keep this run's
    return text, {jobid: record for jobid, record in seen.items() if record["name"] == run_id}


@pytest.fixture(scope="module")
def slurm_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str, dict[str, dict]]:
    """The tiny study run through Slurm: (workdir, snakemake's log, Slurm's records by job id)."""
    _require_slurm()
    workdir = copy_workflow(tmp_path_factory.mktemp("slurm"))
    return workdir, *_snakemake_on_slurm(workdir, _test_profile(workdir / "profile"))


def test_every_job_went_through_sbatch(slurm_run: tuple[Path, str, dict[str, dict]]) -> None:
    _, log, seen = slurm_run
    run_id = _run_id(log)
    submitted = dict(re.findall(r"has been submitted with SLURM jobid (\d+) \(log: (.+?)\)\.", log))
    # Snakemake announces each job as "rule X:" (sent to Slurm) or "localrule X:" (run in place).
    announced = Counter(re.findall(r"^(?:rule|checkpoint) (\w+):$", log, flags=re.M))
    assert announced, "snakemake ran no job through Slurm"
    assert len(submitted) == sum(announced.values())
    missing = sorted(set(submitted) - set(seen))
    assert not missing, f"Slurm has no record of jobs {missing}"

    rules: Counter[str] = Counter()
    for jobid, slurm_log in submitted.items():
        record = seen[jobid]
        assert record["name"] == run_id, record
        assert record["batch"] == "1", f"job {jobid} was not a batch (sbatch) job: {record}"
        assert "COMPLETED" in record["states"], f"job {jobid} never completed: {record}"
        assert Path(slurm_log).is_file() and Path(slurm_log).stem == jobid  # Slurm's --output %j.log
        rule = re.fullmatch(r"rule_(\w+?)(_wildcards_.*)?", record["comment"]).group(1)
        rules[rule] += 1
        # train and search (device auto) ask for one GPU (sbatch --gpus=1); data, evaluation and report jobs for none
        assert record["tres"] == ("gres:gpu:1" if rule in ("train", "search") else "N/A"), (rule, record)
    assert rules == announced  # Slurm's records name exactly the rules snakemake ran
    assert rules["train"] >= 2  # the sweep experiment and the final run


def _planned_training(
    workdir: Path, *configfiles: str, rules: str = "train|search", target: tuple[str, ...] = ()
) -> list[dict[str, str]]:
    """The resources of the jobs of ``rules`` (default: the training jobs) that a dry run with the Slurm profile
    plans (no cluster needed)."""
    cmd = [bin_path("snakemake"), "-n", "--profile", "workflow/profiles/slurm", "--cores", "4"]
    cmd += ["--configfile", "workflow/presets/tiny.yaml", *configfiles, *target]
    proc = subprocess.run(cmd, cwd=workdir, text=True, capture_output=True)
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-4000:]
    planned = re.findall(rf"^rule ({rules}):\n(?: {{4}}.*\n)*? {{4}}resources: (.*)$", log, flags=re.M)
    return [{"rule": rule, **dict(item.split("=", 1) for item in resources.split(", "))} for rule, resources in planned]


class PlannedJob:
    """A planned job as the Slurm plugin reads it (``job.resources.get``)."""

    def __init__(self, resources: dict[str, str]) -> None:
        self.resources = resources


@pytest.mark.parametrize("device", ["cpu", "auto"])
def test_training_jobs_ask_for_a_gpu_only_where_they_may_use_one(tmp_path: Path, device: str) -> None:
    """device cpu (a CPU-only cluster): no GPU, the threads as --cpus-per-task, the CPU partition; auto or cuda:
    --gpus=<model>:1, the threads as --cpus-per-gpu (the Slurm plugin passes --cpus-per-task when it is non-zero,
    else --cpus-per-gpu) and the GPU partition. train and search alike, with the profile's memory and walltime."""
    from snakemake_executor_plugin_slurm.utils import set_gres_string

    workdir = copy_workflow(tmp_path)
    slurm = {"partition": "cpuq", "gpu_partition": "gpuq", "gpu_model": "a100"}
    (workdir / "device.yaml").write_text(yaml.safe_dump({"train": {"device": device}, "slurm": slurm}))
    jobs = _planned_training(workdir, "device.yaml")
    rules = Counter(job["rule"] for job in jobs)
    assert rules.keys() == {"train", "search"} and rules["train"] >= 4, rules  # 2 seeds x (sweeps, final)
    threads = str(yaml.safe_load((REPO / "workflow/presets/tiny.yaml").read_text())["train"]["threads"])
    profile = yaml.safe_load((REPO / "workflow/profiles/slurm/config.yaml").read_text())["set-resources"]["train"]
    cpu, gpu = (
        {"gpu": "0", "cpus_per_task": threads, "cpus_per_gpu": "0", "slurm_partition": "cpuq"},
        {"gpu": "1", "cpus_per_task": "0", "cpus_per_gpu": threads, "slurm_partition": "gpuq", "gpu_model": "a100"},
    )
    for job in jobs:
        expected = cpu if device == "cpu" else gpu
        assert {key: job.get(key) for key in expected} == expected and job["device"] == device, job
        assert job["mem_mb"] == str(profile["mem_mb"]) and job["runtime"] == str(profile["runtime"]), job
        gres = set_gres_string(PlannedJob({k: int(v) if v.isdigit() else v for k, v in job.items() if k != "rule"}))
        assert gres == ("" if device == "cpu" else " --gpus=a100:1"), (gres, job)
    # without config `slurm`, the rules set no partition or GPU type: the profile's default partition applies
    (workdir / "device.yaml").write_text(yaml.safe_dump({"train": {"device": device}}))
    for job in _planned_training(workdir, "device.yaml"):
        assert "slurm_partition" not in job and "gpu_model" not in job, job


@pytest.mark.parametrize("device", ["cpu", "auto"])
def test_video_jobs_ask_for_a_gpu_only_where_they_may_use_one(tmp_path: Path, device: str) -> None:
    """`ferflow predict --device auto` opens a CUDA context where there is a GPU: its job holds `gpu` like a
    training job (and the GPU partition), under videos.device cpu neither."""
    workdir = copy_workflow(tmp_path)
    (workdir / "clips").mkdir()
    for name in ("a", "b"):
        (workdir / "clips" / f"{name}.mp4").write_bytes(b"")  # planned, never read
    overlay = {"videos": {"folder": "clips", "device": device}, "slurm": {"gpu_partition": "gpuq"}}
    (workdir / "videos.yaml").write_text(yaml.safe_dump(overlay))
    jobs = _planned_training(workdir, "videos.yaml", rules="predict_video", target=("--", "videos"))
    assert len(jobs) == 2, jobs
    for job in jobs:
        assert job["device"] == device and job["gpu"] == ("0" if device == "cpu" else "1"), job
        assert job.get("slurm_partition") == (None if device == "cpu" else "gpuq"), job


SWEEP = "adam_lr3_dropout0"  # the tiny preset's sweep experiment
ASSIGNED = re.compile(r"Slurm job (\d+) was given GPU (\S+), CUDA_VISIBLE_DEVICES=(\S+), but this run trains on cpu")


@pytest.fixture(scope="module")
def slurm_gpu_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str, dict[str, dict]]:
    """Two trainings that ask for a GPU each (the sweep experiment's two seeds, device auto) and one under
    device cpu (the final of seed 1), through Slurm on a node with two GPUs: (workdir, log, Slurm's records)."""
    _require_slurm(gpus=2)
    workdir = copy_workflow(tmp_path_factory.mktemp("slurm-gpu"))
    overlay = {"train": {"max_train_batches": 2}, "models": {"resnet": {"final": {"epochs": 1, "device": "cpu"}}}}
    (workdir / "placement.yaml").write_text(yaml.safe_dump(overlay))
    profile = _test_profile(workdir / "profile", cpus_per_gpu=1)  # two GPU jobs of 2 threads fit 2 CPUs
    # The GPU pair first, on an empty node: queued beside them, the CPU job's two CPUs could hold one back.
    logs, seen = [], {}
    for runs in ([(SWEEP, 1), (SWEEP, 2)], [("final", 1)]):
        targets = [f"{RESULTS}/runs/resnet/{experiment}/seed{seed}/history.csv" for experiment, seed in runs]
        log, records = _snakemake_on_slurm(workdir, profile, "placement.yaml", "--", *targets)
        logs.append(log)
        seen.update(records)
    return workdir, "\n".join(logs), seen


def test_gpu_jobs_run_at_once_each_on_the_gpu_slurm_gave_it(slurm_gpu_run: tuple[Path, str, dict[str, dict]]) -> None:
    """Two gpu=1 trainings share the node at the same time, each seeing its own CUDA_VISIBLE_DEVICES; no GPU slot
    serialises them. On the stand-in GPUs they train on the CPU and say so in their logs."""
    workdir, _, seen = slurm_gpu_run
    trains = {jobid: r for jobid, r in seen.items() if r["comment"].startswith("rule_train_")}
    gpu_jobs = {jobid: r for jobid, r in trains.items() if "_final_" not in r["comment"]}
    assert len(gpu_jobs) == 2, trains
    for record in gpu_jobs.values():
        assert record["tres"] == "gres:gpu:1" and "COMPLETED" in record["states"], record
    starts, ends = [r["start"] for r in gpu_jobs.values()], [r["end"] for r in gpu_jobs.values()]
    assert max(starts) < min(ends), f"the two GPU trainings did not overlap: {gpu_jobs}"  # ISO times sort as text
    given = {}
    for seed in (1, 2):
        log = (workdir / RESULTS / "runs/resnet" / SWEEP / f"seed{seed}/train.log").read_text()
        found = ASSIGNED.search(log)
        assert found, log
        jobid, _, visible = found.groups()
        assert jobid in gpu_jobs and "slot" not in log, log
        given[jobid] = visible
    assert sorted(given.values()) == ["0", "1"] and given.keys() == gpu_jobs.keys(), given


CLAIM = """
import os, sys
import torch
from ferflow import device
visible = [gpu for gpu in os.environ.get("CUDA_VISIBLE_DEVICES", "").split(",") if gpu]
torch.cuda.device_count = lambda: len(visible)  # the stand-in GPUs: as many CUDA devices as Slurm gave the job
device.gpu_uuids = lambda count: [f"stand-in-{visible[i]}" for i in range(count)]
print(device.claim_cuda_device(timeout=0)[2])
"""


def test_claim_cuda_device_in_a_slurm_job_claims_a_slot_only_beside_other_gpus(tmp_path: Path) -> None:
    """The slot path inside real Slurm jobs (the stand-in GPUs cannot train, so the trainings above never reach it):
    a job given one GPU trains on it without a slot; one given two claims a slot among them."""
    _require_slurm(gpus=2)
    script = tmp_path / "claim.py"
    script.write_text(CLAIM)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path), "FERFLOW_GPU_LOCK_DIR": str(tmp_path / "locks")}
    placements = {}
    for gpus in (1, 2):
        out = tmp_path / f"gpus{gpus}.out"
        cmd = ["sbatch", "--wait", f"--gpus={gpus}", "--cpus-per-gpu=1", "--mem=500", f"--output={out}"]
        proc = subprocess.run([*cmd, "--wrap", f"{sys.executable} {script}"], env=env, text=True, capture_output=True)
        assert proc.returncode == 0, proc.stderr + (out.read_text() if out.exists() else "")
        placements[gpus] = out.read_text().strip().splitlines()[-1]
    assert re.fullmatch(r"Slurm job \d+ was given GPU \S+, CUDA_VISIBLE_DEVICES=\d: no GPU slot claimed", placements[1])
    assert re.fullmatch(
        rf"GPU slot {re.escape(str(tmp_path / 'locks'))}/gpu-stand-in-\d\.lock \(Slurm job \d+ was given .*\)",
        placements[2],
    ), placements


def test_a_cpu_training_asks_slurm_for_no_gpu(slurm_gpu_run: tuple[Path, str, dict[str, dict]]) -> None:
    workdir, _, seen = slurm_gpu_run
    finals = [r for r in seen.values() if r["comment"].startswith("rule_train_") and "_final_" in r["comment"]]
    assert len(finals) == 1 and "COMPLETED" in finals[0]["states"], finals
    assert finals[0]["tres"] == "N/A" and finals[0]["cpus_per_task"] == "2", finals  # --cpus-per-task=<threads>
    log = (workdir / RESULTS / "runs/resnet/final/seed1/train.log").read_text()
    assert "device cpu" in log and "was given GPU" not in log, log


def _files(root: Path) -> set[str]:
    """The files under ``root``; TensorBoard event files by folder (their names hold the time, host and pid)."""
    events = "events.out.tfevents"
    return {
        str(p.relative_to(root)) if not p.name.startswith(events) else str(p.parent.relative_to(root) / events)
        for p in root.rglob("*")
        if p.is_file()
    }


def _untimed_table(path: Path) -> list[list[str]]:
    """The cells of a table (CSV, or Markdown rows) without its measured times: the finals' batch-1 latency
    and the search trials' seconds."""
    sep, timed = (
        (",", {"latency_ms", "seconds"}) if path.suffix == ".csv" else ("|", {f" {GROUP_COLUMNS['latency_ms']} "})
    )
    rows = [line.split(sep) for line in path.read_text().splitlines()]
    header = next((row for row in rows if timed & set(row)), None)
    if header is None:
        return rows
    keep = [i for i, cell in enumerate(header) if cell not in timed]
    return [[row[i] for i in keep] if len(row) == len(header) else row for row in rows]


def _assert_same_output(rel: Path, a: Path, b: Path) -> bool:
    """Compare one output of the two runs by what it holds; False for outputs compared by presence only."""
    if rel.parts[0] in ("logs", "benchmarks") or rel.stem == TIME_FIGURE:
        return False  # wall-clock times and host details; the figure of scores against training minutes
    if rel.name == "history.csv":  # all but the wall-clock epoch_seconds
        x, y = pd.read_csv(a), pd.read_csv(b)
        assert list(x.columns) == list(y.columns), rel
        pd.testing.assert_frame_equal(
            x.drop(columns="epoch_seconds"), y.drop(columns="epoch_seconds"), check_exact=True
        )
    elif rel.parts[0] == "tables":  # all but measured times
        assert _untimed_table(a) == _untimed_table(b), rel
    elif rel.suffix in (".csv", ".png", ".onnx"):  # evaluation, t-SNE, figures, ONNX model
        assert a.read_bytes() == b.read_bytes(), rel
    elif rel.suffix == ".npz":
        x, y = load_split(a), load_split(b)
        assert np.array_equal(x.images, y.images) and np.array_equal(x.labels, y.labels), rel
        assert list(x.ids) == list(y.ids), rel
    elif rel.name in ("summary.json", "metrics.json"):
        assert read_json(a) == read_json(b), rel
    elif rel.name == "best.pt":
        x, y = checkpoint.read(a)["model"], checkpoint.read(b)["model"]
        assert x.keys() == y.keys() and all(torch.equal(x[k], y[k]) for k in x), rel
    elif rel.name == "onnx_check.json":  # ONNX Runtime's float error may vary with its threading
        x, y = read_json(a), read_json(b)
        assert {k: v for k, v in x.items() if not k.startswith("max_abs_diff")} == {
            k: v for k, v in y.items() if not k.startswith("max_abs_diff")
        }, rel
    elif rel.name == "latency.json":  # timings differ; what was measured does not
        x, y = read_json(a), read_json(b)
        assert x["threads"] == y["threads"], rel
        assert [(r["engine"], r["batch_size"]) for r in x["rows"]] == [
            (r["engine"], r["batch_size"]) for r in y["rows"]
        ], rel
    else:
        return False  # the report (it shows latency timings), resume state, train.log: presence only
    return True


def test_outputs_equal_a_local_run(slurm_run: tuple[Path, str, dict[str, dict]], tiny_run: Path) -> None:
    """Slurm changes where jobs run, not what they compute: the seeded stages give the same results.

    Compared exactly: the data stages (arrays and summaries), training histories (all but the
    wall-clock epoch_seconds), the trained weights (CPU training is seeded and both runs train
    with the preset's 2 threads), evaluation metrics and predictions; and byte for byte the t-SNE
    coordinates, the tables (but for their measured times), PNG figures (Agg writes no timestamps) and the
    ONNX model. Timings (latency.json values, benchmarks, epoch_seconds, the time-to-accuracy figure) and logs
    differ by nature; the report (it
    shows the latency timings), last.pt and train.log are checked for presence only.
    """
    local, remote = tiny_run / RESULTS, slurm_run[0] / RESULTS
    files = _files(local)
    assert files == _files(remote)
    compared = [rel for rel in map(Path, sorted(files)) if _assert_same_output(rel, local / rel, remote / rel)]
    names = {rel.name for rel in compared}
    assert {"summary.json", "history.csv", "best.pt", "metrics.json", "predictions.csv", "model.onnx"} <= names, names
