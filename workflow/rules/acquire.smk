# Acquisition: the dataset from its source (Kaggle, URL, local archive or folder, or the embedded
# synthetic faces) into R/data/raw/{train,val,test}.npz + summary.json; val carved from train.


rule download:
    output:
        **stage_files("raw"),
    log:
        f"{RESULTS}/logs/download/download.log",
    benchmark:
        f"{RESULTS}/benchmarks/download/download.tsv"
    conda:
        "../../envs/data.yaml"
    params:
        source=lambda wc: config["dataset"]["source"],
        sha256=lambda wc: f"--sha256 {config['dataset']['sha256']}" if config["dataset"]["sha256"] else "",
        synthetic=lambda wc: (
            "--synthetic-train {train} --synthetic-test {test}".format(**config["dataset"]["synthetic"])
            if config["dataset"]["source"] == "synthetic"
            else ""
        ),
        val_fraction=lambda wc: config["dataset"]["val_fraction"],
        test_split=lambda wc: config["dataset"]["test_split"],
        seed=lambda wc: config["seed"],
        out_dir=lambda wc: stage_dir("raw"),
    shell:
        "ferflow download --source {params.source:q} {params.sha256} {params.synthetic}"
        " --val-fraction {params.val_fraction} --test-split {params.test_split} --seed {params.seed}"
        " --cache-dir resources/downloads --out {params.out_dir} > {log} 2>&1"


TARGETS.append(lambda: [stage_files("raw")["summary"]])
