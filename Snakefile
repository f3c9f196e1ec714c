# ferflow: compact facial emotion recognition, one Snakemake DAG.
#   snakemake --cores 8 --resources gpu=1                          # the study on FER2013
#   snakemake --cores 2 --configfile workflow/presets/demo.yaml    # the synthetic demo
from snakemake.utils import min_version

min_version("9.0")


configfile: "config.yaml"


include: "workflow/rules/common.smk"


validate_config(config, "workflow/schemas/config.schema.yaml")


wildcard_constraints:
    model=r"[A-Za-z0-9]+",
    experiment=r"[A-Za-z0-9][A-Za-z0-9_.-]*",


include: "workflow/rules/acquire.smk"
include: "workflow/rules/preprocess.smk"
include: "workflow/rules/datafigures.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/evaluate.smk"
include: "workflow/rules/report.smk"
include: "workflow/rules/deploy.smk"


report: "workflow/report/workflow.rst"


rule all:
    input:
        all_targets(),
    default_target: True
