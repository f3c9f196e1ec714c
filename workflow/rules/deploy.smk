# Deployment of each final model (config export.onnx): ONNX export (batch norm folded) checked against
# PyTorch on the model-input test split; with export.quantize: int8, a statically quantized copy
# calibrated on the validation split and compared with fp32 on the test split; then CPU latency of
# PyTorch and ONNX Runtime (fp32, int8). The report embeds the JSONs. Each command takes its config
# settings (ferflow.config.STAGE_SETTINGS) in one --settings argument.


rule export_onnx:
    input:
        checkpoint=L.deployed_file("{model}", "checkpoint"),
        data=lambda wc: stage_files(model_input_stage())["test"],
    output:
        onnx=L.deployed_file("{model}", "onnx"),
        check=L.deployed_file("{model}", "onnx_check"),
    log:
        L.log("export_onnx", "{model}"),
    benchmark:
        L.benchmark("export_onnx", "{model}")
    conda:
        "../../envs/deploy.yaml"
    threads: config["threads"]
    params:
        settings=lambda wc: settings_json("export-onnx"),
    shell:
        "ferflow export-onnx --checkpoint {input.checkpoint} --data {input.data} --out {output.onnx}"
        " --check-out {output.check} --settings {params.settings:q} > {log} 2>&1"


rule quantize_onnx:
    input:
        onnx=L.deployed_file("{model}", "onnx"),
        calibration=lambda wc: stage_files(model_input_stage())["val"],
        data=lambda wc: stage_files(model_input_stage())["test"],
    output:
        onnx=L.deployed_file("{model}", "int8"),
        check=L.deployed_file("{model}", "int8_check"),
    log:
        L.log("quantize_onnx", "{model}"),
    benchmark:
        L.benchmark("quantize_onnx", "{model}")
    conda:
        "../../envs/deploy.yaml"
    threads: config["export"]["threads"]
    params:
        settings=lambda wc: settings_json("quantize"),
    shell:
        "ferflow quantize --onnx {input.onnx} --calibration {input.calibration} --data {input.data} --out {output.onnx}"
        " --check-out {output.check} --settings {params.settings:q} > {log} 2>&1"


rule latency:
    input:
        unpack(
            lambda wc: (
                {w: L.deployed_file(wc.model, w) for w in ("int8", "int8_check")}
                if config["export"]["quantize"]
                else {}
            )
        ),
        checkpoint=L.deployed_file("{model}", "checkpoint"),
        onnx=L.deployed_file("{model}", "onnx"),
    output:
        L.deployed_file("{model}", "latency"),
    log:
        L.log("latency", "{model}"),
    benchmark:
        L.benchmark("latency", "{model}")
    conda:
        "../../envs/deploy.yaml"
    threads: config["export"]["threads"]
    params:
        settings=lambda wc: settings_json("latency"),
        int8=lambda wc, input: (
            f"--int8-onnx {input.int8} --int8-check {input.int8_check}" if "int8" in input.keys() else ""
        ),
    shell:
        "ferflow latency --checkpoint {input.checkpoint} --onnx {input.onnx} {params.int8} --out {output}"
        " --settings {params.settings:q} > {log} 2>&1"


TARGETS.append(
    lambda: [
        L.deployed_file(m, w)
        for m, _ in deployed_runs()
        for w in ("onnx", "onnx_check", "latency") + (("int8", "int8_check") if config["export"]["quantize"] else ())
    ]
)
