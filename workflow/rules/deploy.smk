# Deployment of each final model (config export.onnx): ONNX export (batch norm folded) checked against
# PyTorch on the model-input test split; with export.quantize: int8, a statically quantized copy
# calibrated on the validation split and compared with fp32 on the test split; then CPU latency of
# PyTorch and ONNX Runtime (fp32, int8). The report embeds the JSONs.


rule export_onnx:
    input:
        checkpoint=f"{RESULTS}/runs/{{model}}/final/best.pt",
        data=lambda wc: stage_files(model_input_stage())["test"],
    output:
        onnx=f"{RESULTS}/runs/{{model}}/final/model.onnx",
        check=f"{RESULTS}/runs/{{model}}/final/onnx_check.json",
    log:
        f"{RESULTS}/logs/export_onnx/{{model}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/export_onnx/{{model}}.tsv"
    conda:
        "../../envs/deploy.yaml"
    threads: 2
    params:
        opset=lambda wc: config["export"]["opset"],
    shell:
        "ferflow export-onnx --checkpoint {input.checkpoint} --data {input.data} --out {output.onnx}"
        " --check-out {output.check} --opset {params.opset} > {log} 2>&1"


rule quantize_onnx:
    input:
        onnx=f"{RESULTS}/runs/{{model}}/final/model.onnx",
        calibration=lambda wc: stage_files(model_input_stage())["val"],
        data=lambda wc: stage_files(model_input_stage())["test"],
    output:
        onnx=f"{RESULTS}/runs/{{model}}/final/model.int8.onnx",
        check=f"{RESULTS}/runs/{{model}}/final/int8_check.json",
    log:
        f"{RESULTS}/logs/quantize_onnx/{{model}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/quantize_onnx/{{model}}.tsv"
    conda:
        "../../envs/deploy.yaml"
    threads: config["export"]["threads"]
    params:
        images=lambda wc: config["export"]["calibration_images"],
        method=lambda wc: config["export"]["calibration_method"],
        threads=lambda wc: config["export"]["threads"],
    shell:
        "ferflow quantize --onnx {input.onnx} --calibration {input.calibration} --data {input.data} --out {output.onnx}"
        " --check-out {output.check} --calibration-images {params.images} --method {params.method}"
        " --threads {params.threads} > {log} 2>&1"


rule latency:
    input:
        unpack(
            lambda wc: (
                {
                    f: f"{RESULTS}/runs/{wc.model}/final/{n}"
                    for f, n in (("int8", "model.int8.onnx"), ("int8_check", "int8_check.json"))
                }
                if config["export"]["quantize"]
                else {}
            )
        ),
        checkpoint=f"{RESULTS}/runs/{{model}}/final/best.pt",
        onnx=f"{RESULTS}/runs/{{model}}/final/model.onnx",
    output:
        f"{RESULTS}/runs/{{model}}/final/latency.json",
    log:
        f"{RESULTS}/logs/latency/{{model}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/latency/{{model}}.tsv"
    conda:
        "../../envs/deploy.yaml"
    threads: config["export"]["threads"]
    params:
        batch_sizes=lambda wc: " ".join(str(b) for b in config["export"]["latency_batch_sizes"]),
        repeats=lambda wc: config["export"]["latency_repeats"],
        threads=lambda wc: config["export"]["threads"],
        min_seconds=lambda wc: config["export"]["latency_min_seconds"],
        int8=lambda wc, input: (
            f"--int8-onnx {input.int8} --int8-check {input.int8_check}" if "int8" in input.keys() else ""
        ),
    shell:
        "ferflow latency --checkpoint {input.checkpoint} --onnx {input.onnx} {params.int8} --out {output}"
        " --batch-sizes {params.batch_sizes} --repeats {params.repeats} --min-seconds {params.min_seconds}"
        " --threads {params.threads} > {log} 2>&1"


TARGETS.append(
    lambda: [
        f"{run_dir(m, e)}/{name}"
        for m, e in deployed_runs()
        for name in ("model.onnx", "onnx_check.json", "latency.json")
        + (("model.int8.onnx", "int8_check.json") if config["export"]["quantize"] else ())
    ]
)
