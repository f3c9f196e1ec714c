# Data stages after acquisition: AffectNet injection into train (R/data/affectnet), offline class
# balancing by augmentation (R/data/balanced), grayscale → 3 channels (R/data/rgb). Each stage reads the
# previous one's files, so a changed setting reruns only that stage and what follows.


rule affectnet:
    input:
        **stage_files("raw"),
    output:
        **stage_files("affectnet"),
    log:
        f"{RESULTS}/logs/affectnet/affectnet.log",
    benchmark:
        f"{RESULTS}/benchmarks/affectnet/affectnet.tsv"
    conda:
        "../../envs/data.yaml"
    threads: 2
    params:
        source=lambda wc: config["affectnet"]["source"],
        sha256=lambda wc: f"--sha256 {config['affectnet']['sha256']}" if config["affectnet"]["sha256"] else "",
        synthetic=lambda wc: (
            f"--synthetic-per-class {config['affectnet']['synthetic_per_class']}"
            if config["affectnet"]["source"] == "synthetic"
            else ""
        ),
        classes=lambda wc: " ".join(config["affectnet"]["classes"]),
        label_policy=lambda wc: config["affectnet"]["label_policy"],
        max_per_class=lambda wc: (
            f"--max-per-class {config['affectnet']['max_per_class']}" if config["affectnet"]["max_per_class"] else ""
        ),
        seed=lambda wc: config["seed"],
        in_dir=lambda wc: stage_dir("raw"),
        out_dir=lambda wc: stage_dir("affectnet"),
    shell:
        "ferflow affectnet --in-dir {params.in_dir} --out {params.out_dir} --source {params.source:q}"
        " --classes {params.classes} --label-policy {params.label_policy} {params.max_per_class}"
        " {params.sha256} {params.synthetic} --seed {params.seed} --workers {threads} --cache-dir resources/downloads > {log} 2>&1"


rule balance:
    input:
        **stage_files(before_balance_stage()),
    output:
        **stage_files("balanced"),
    log:
        f"{RESULTS}/logs/balance/balance.log",
    benchmark:
        f"{RESULTS}/benchmarks/balance/balance.tsv"
    conda:
        "../../envs/data.yaml"
    threads: 2
    params:
        min_per_class=lambda wc: config["augment"]["min_per_class"],
        rotation=lambda wc: config["augment"]["rotation"],
        shift=lambda wc: config["augment"]["shift"],
        zoom=lambda wc: config["augment"]["zoom"],
        flip=lambda wc: "--horizontal-flip" if config["augment"]["horizontal_flip"] else "--no-horizontal-flip",
        seed=lambda wc: config["seed"],
        in_dir=lambda wc: stage_dir(before_balance_stage()),
        out_dir=lambda wc: stage_dir("balanced"),
    shell:
        "ferflow balance --in-dir {params.in_dir} --out {params.out_dir}"
        " --min-per-class {params.min_per_class} --rotation {params.rotation} --shift {params.shift}"
        " --zoom {params.zoom} {params.flip} --seed {params.seed} --threads {threads} > {log} 2>&1"


rule rgb:
    input:
        **stage_files("balanced"),
    output:
        **stage_files("rgb"),
    log:
        f"{RESULTS}/logs/rgb/rgb.log",
    benchmark:
        f"{RESULTS}/benchmarks/rgb/rgb.tsv"
    conda:
        "../../envs/data.yaml"
    params:
        in_dir=lambda wc: stage_dir("balanced"),
        out_dir=lambda wc: stage_dir("rgb"),
    shell:
        "ferflow rgb --in-dir {params.in_dir} --out {params.out_dir} > {log} 2>&1"


TARGETS.append(lambda: [stage_files(model_input_stage())["summary"]])
