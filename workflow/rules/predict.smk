# The batch-video target (config videos; `snakemake videos`, not part of `all`): `ferflow predict` on every
# video of videos.folder and videos.files, one job a video (cached, in parallel across --cores), writing its
# per-face CSV and plot; then `ferflow summarize-videos`, one row per face track, optionally smoothed. A video job
# under videos.device auto or cuda opens a CUDA context: it holds the resource `gpu` as training jobs do
# (gpu_resources, train_common.smk), so `--resources gpu=k` and Slurm count it.


include: "predict_common.smk"


rule predict_video:
    input:
        video=lambda wc: VIDEOS[wc.video],
        checkpoint=[config["videos"]["checkpoint"]] if config["videos"]["checkpoint"] else [],
    output:
        csv=L.video_file("{video}", "csv"),
        plot=L.video_file("{video}", "plot"),
    log:
        L.log("predict_video", "{video}"),
    benchmark:
        L.benchmark("predict_video", "{video}")
    wildcard_constraints:
        video=r"[^/]+",
    conda:
        "../../envs/report.yaml"
    threads: 1
    resources:
        **gpu_resources(lambda wc: config["videos"]["device"]),
    params:
        options=video_options(),
    shell:
        "ferflow predict {input.video:q} --csv {output.csv:q} --plot {output.plot:q} --threads {threads}"
        " --device {resources.device} {params.options} > {log:q} 2>&1"


rule summarize_videos:
    input:
        csvs=video_csvs,
    output:
        L.video_summary(),
    log:
        L.log("summarize_videos"),
    conda:
        "../../envs/report.yaml"
    params:
        settings=settings_json("summarize-videos"),
    shell:
        "ferflow summarize-videos {input.csvs:q} --out {output:q} --settings {params.settings:q} > {log:q} 2>&1"


rule videos:
    input:
        L.video_summary(),
