"""ferflow: compact facial emotion recognition as a Snakemake pipeline."""

__version__ = "0.1.0"
