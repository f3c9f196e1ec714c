# Acquisition: the dataset from its source (Kaggle, URL, local archive or folder, or the embedded
# synthetic faces) into R/data/raw/{train,val,test}.npz + summary.json; val carved from train.


rule download:
    output:
        **stage_files("raw"),
    log:
        L.log("download"),
    benchmark:
        L.benchmark("download")
    conda:
        "../../envs/data.yaml"
    params:
        source=lambda wc: config["dataset"]["source"],
        settings=lambda wc: settings_json("download"),
        seed=lambda wc: config["seed"],
        out_dir=lambda wc: stage_dir("raw"),
    shell:
        "ferflow download --source {params.source:q} --settings {params.settings:q} --seed {params.seed}"
        " --cache-dir resources/downloads --out {params.out_dir} > {log} 2>&1"


TARGETS.append(lambda: [stage_files("raw")["summary"]])
