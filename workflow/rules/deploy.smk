# Deployment of each final model (config export.onnx): ONNX export checked against PyTorch on the
# model-input test split, then CPU latency of PyTorch and ONNX Runtime. The report embeds both JSONs.


rule export_onnx:
    input:
        checkpoint=f"{RESULTS}/runs/{{model}}/final/best.pt",
        data=lambda wc: stage_files(model_input_stage())["test"],
    output:
        onnx=f"{RESULTS}/runs/{{model}}/final/model.onnx",
        check=f"{RESULTS}/runs/{{model}}/final/onnx_check.json",
    params:
        opset=lambda wc: config["export"]["opset"],
    log:
        f"{RESULTS}/logs/export_onnx/{{model}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/export_onnx/{{model}}.tsv"
    threads: 2
    conda:
        "../../envs/deploy.yaml"
    shell:
        "ferflow export-onnx --checkpoint {input.checkpoint} --data {input.data} --out {output.onnx}"
        " --check-out {output.check} --opset {params.opset} > {log} 2>&1"


rule latency:
    input:
        checkpoint=f"{RESULTS}/runs/{{model}}/final/best.pt",
        onnx=f"{RESULTS}/runs/{{model}}/final/model.onnx",
    output:
        f"{RESULTS}/runs/{{model}}/final/latency.json",
    params:
        batch_sizes=lambda wc: " ".join(str(b) for b in config["export"]["latency_batch_sizes"]),
        repeats=lambda wc: config["export"]["latency_repeats"],
        threads=lambda wc: config["export"]["threads"],
    log:
        f"{RESULTS}/logs/latency/{{model}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/latency/{{model}}.tsv"
    threads: config["export"]["threads"]
    conda:
        "../../envs/deploy.yaml"
    shell:
        "ferflow latency --checkpoint {input.checkpoint} --onnx {input.onnx} --out {output}"
        " --batch-sizes {params.batch_sizes} --repeats {params.repeats} --threads {params.threads} > {log} 2>&1"


TARGETS.append(
    lambda: [
        f"{run_dir(m, e)}/{name}"
        for m, e in deployed_runs()
        for name in ("model.onnx", "onnx_check.json", "latency.json")
    ]
)
