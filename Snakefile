# ferflow: compact facial emotion recognition, one Snakemake DAG.
#   snakemake --cores 8 --resources gpu=1                          # the study on FER2013
#   snakemake --cores 2 --configfile workflow/presets/demo.yaml    # the synthetic demo
from snakemake.exceptions import WorkflowError
from snakemake.utils import min_version, validate

min_version("9.0")


configfile: "config.yaml"


def config_error(exc):
    """One line naming the offending config key of a schema validation error."""
    err = exc.__context__  # the jsonschema ValidationError that validate() wrapped
    if not hasattr(err, "absolute_path"):
        return str(exc)
    path = ".".join(map(str, err.absolute_path))
    if err.validator == "additionalProperties":
        unknown = sorted(set(err.instance) - set(err.schema.get("properties", {})))
        return f"unknown config key {'.'.join(filter(None, [path, unknown[0]]))} (allowed: {', '.join(err.schema.get('properties', {}))})"
    return f"invalid config key {path or '(top level)'}: {err.message}"


try:
    validate(config, "workflow/schemas/config.schema.yaml")
except WorkflowError as exc:
    raise WorkflowError(config_error(exc)) from None


include: "workflow/rules/common.smk"
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
