# ferflow: compact facial emotion recognition, one Snakemake DAG.
#   snakemake --cores 8 --resources gpu=1                          # the study on FER2013
#   snakemake --cores 2 --configfile workflow/presets/demo.yaml    # the synthetic demo
import os
import shutil
import sys

from snakemake.exceptions import WorkflowError
from snakemake.utils import min_version

min_version("9.0")


envvars:
    "PATH",


# The rules call `ferflow`: look for it next to this Snakemake's Python first, so that `.venv/bin/snakemake`
# works without activating the venv (jobs, local or Slurm, parse this file again and inherit PATH).
BIN = os.path.dirname(sys.executable)
if os.environ.get("PATH", "").split(os.pathsep)[0] != BIN:
    os.environ["PATH"] = os.pathsep.join([BIN, os.environ.get("PATH", "")])
if shutil.which("ferflow") is None:
    raise WorkflowError(f"ferflow is not installed next to {sys.executable}: run `make install` (or pip install -e .)")


configfile: "config.yaml"


include: "workflow/rules/common.smk"


validate_config(config, str(SCHEMA_PATH))


wildcard_constraints:
    model=r"[A-Za-z0-9]+",
    experiment=r"[A-Za-z0-9][A-Za-z0-9_.-]*",
    seed=r"\d+",


include: "workflow/rules/acquire.smk"
include: "workflow/rules/preprocess.smk"
include: "workflow/rules/datafigures.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/evaluate.smk"
include: "workflow/rules/report.smk"
include: "workflow/rules/deploy.smk"
include: "workflow/rules/predict.smk"


report: "workflow/report/workflow.rst"


rule all:
    default_target: True
    input:
        all_targets(),
