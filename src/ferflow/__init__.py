"""ferflow: compact facial emotion recognition as a Snakemake pipeline."""

__version__ = "0.3.0"
