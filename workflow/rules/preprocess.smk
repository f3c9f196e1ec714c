# Data stages after acquisition: AffectNet injection into train (R/data/affectnet), offline class
# balancing by augmentation (R/data/balanced), grayscale → 3 channels (R/data/rgb). Each stage reads the
# previous one's files, so a changed setting reruns only that stage and what follows.


rule affectnet:
    input:
        **stage_files("raw"),
    output:
        **stage_files("affectnet"),
    log:
        L.log("affectnet"),
    benchmark:
        L.benchmark("affectnet")
    conda:
        "../../envs/data.yaml"
    threads: config["threads"]
    params:
        source=lambda wc: config["affectnet"]["source"],
        settings=lambda wc: settings_json("affectnet"),
        seed=lambda wc: config["seed"],
        in_dir=lambda wc: stage_dir("raw"),
        out_dir=lambda wc: stage_dir("affectnet"),
    shell:
        "ferflow affectnet --in-dir {params.in_dir} --out {params.out_dir} --source {params.source:q}"
        " --settings {params.settings:q} --seed {params.seed} --workers {threads}"
        " --cache-dir resources/downloads > {log} 2>&1"


rule balance:
    input:
        **stage_files(before_balance_stage()),
    output:
        **stage_files("balanced"),
    log:
        L.log("balance"),
    benchmark:
        L.benchmark("balance")
    conda:
        "../../envs/data.yaml"
    threads: config["threads"]
    params:
        settings=lambda wc: settings_json("balance"),
        seed=lambda wc: config["seed"],
        in_dir=lambda wc: stage_dir(before_balance_stage()),
        out_dir=lambda wc: stage_dir("balanced"),
    shell:
        "ferflow balance --in-dir {params.in_dir} --out {params.out_dir} --settings {params.settings:q}"
        " --seed {params.seed} --threads {threads} > {log} 2>&1"


rule rgb:
    input:
        **stage_files("balanced"),
    output:
        **stage_files("rgb"),
    log:
        L.log("rgb"),
    benchmark:
        L.benchmark("rgb")
    conda:
        "../../envs/data.yaml"
    params:
        in_dir=lambda wc: stage_dir("balanced"),
        out_dir=lambda wc: stage_dir("rgb"),
    shell:
        "ferflow rgb --in-dir {params.in_dir} --out {params.out_dir} > {log} 2>&1"


TARGETS.append(lambda: [stage_files(model_input_stage())["summary"]])
