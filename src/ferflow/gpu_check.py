"""Whether CUDA can train here, with nothing but torch imported: benchmarks/gpu_study.sh asks before it installs
ferflow's other dependencies, and the CUDA smoke test skips (or fails, under ``FERFLOW_REQUIRE_CUDA=1``) on it."""

from __future__ import annotations


def cuda_problem() -> str | None:
    """Why CUDA cannot train here, in one line (a CPU-only torch build, no GPU or driver, a wheel built for
    another CUDA or GPU), or None where a kernel runs on the first GPU."""
    import torch

    if not torch.cuda.is_available():
        if torch.version.cuda:
            return f"CUDA unavailable: torch {torch.__version__} (CUDA {torch.version.cuda}) finds no GPU or driver"
        return f"CUDA unavailable: torch {torch.__version__} is a CPU-only build"
    try:
        (torch.ones(2, device="cuda") * 2).sum().item()
    except RuntimeError as err:  # e.g. "no kernel image is available for execution on the device"
        return f"CUDA unusable on {torch.cuda.get_device_name(0)}: {str(err).splitlines()[0]}"
    return None


if __name__ == "__main__":
    problem = cuda_problem()
    if problem:
        raise SystemExit(problem)
