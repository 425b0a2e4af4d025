"""What this machine can do fast: CPU model and flags, native bfloat16, TensorFlow's oneDNN, GPUs.

Machines differ between users (and between CI runs): a Xeon with AMX matrix units
runs bf16 convolutions faster than fp32, a CPU without native bf16 emulates them, far
slower (benchmarks/results.md measures bf16 on the machine it names). ``choose_precision`` turns ``--precision auto`` into fp32 or bf16 from
these facts and says why. Nothing here imports a framework unless asked about a GPU.

>>> choose_precision("auto", "torch", cpu=CpuInfo("example", frozenset({"avx2"}), "x86_64")).precision
'fp32'
"""

from __future__ import annotations

import functools
import os
import platform
import subprocess
import warnings
from dataclasses import dataclass

from .errors import CnnspecWarning

PRECISIONS = ("auto", "fp32", "bf16")

# x86 flags (/proc/cpuinfo names) that mean the CPU computes bf16 itself rather than emulating it
BF16_DOT_FLAGS = ("avx512_bf16",)  # bf16 dot-product instructions (Cooper Lake, Zen 4/5)
BF16_MATRIX_FLAGS = ("amx_bf16",)  # AMX tile units (Sapphire Rapids and newer)
# TensorFlow turns oneDNN on by default only where it pays (RFC 400): AVX-512 VNNI/BF16, AVX-VNNI or AMX
ONEDNN_DEFAULT_FLAGS = ("avx512_vnni", "avx512_bf16", "avx_vnni", "amx_bf16", "amx_int8", "amx_tile")
REPORTED_FLAGS = (
    "avx2",
    "fma",
    "avx512f",
    "avx512_vnni",
    "avx512_bf16",
    "avx512_fp16",
    "amx_tile",
    "amx_bf16",
    "amx_int8",
    "asimd",
    "bf16",
    "sve",
    "i8mm",
)


class PrecisionWarning(CnnspecWarning):
    """bf16 asked for where the hardware (or TensorFlow's kernels) only emulate it."""


@dataclass(frozen=True)
class CpuInfo:
    model: str
    flags: frozenset[str]
    machine: str

    @property
    def native_bf16(self) -> bool:
        """bf16 arithmetic in hardware: x86 avx512_bf16/amx_bf16, Arm's BF16 extension."""
        return any(flag in self.flags for flag in (*BF16_DOT_FLAGS, *BF16_MATRIX_FLAGS, "bf16"))

    @property
    def bf16_matrix_units(self) -> bool:
        return any(flag in self.flags for flag in BF16_MATRIX_FLAGS)

    def reported_flags(self) -> list[str]:
        return [flag for flag in REPORTED_FLAGS if flag in self.flags]


@functools.lru_cache(maxsize=1)
def cpu_info() -> CpuInfo:
    """The CPU's model name and feature flags (Linux /proc/cpuinfo; macOS sysctl; else what platform knows)."""
    machine = platform.machine().lower()
    model, flags = "", set()
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as cpuinfo:
            for line in cpuinfo:
                key, _, value = line.partition(":")
                key = key.strip().lower()
                if key in ("model name", "cpu model") and not model:
                    model = value.strip()
                elif key in ("flags", "features"):
                    flags.update(value.split())
    except OSError:
        if platform.system() == "Darwin":
            model, flags = _darwin_cpu()
    return CpuInfo(model or platform.processor() or machine, frozenset(flags), machine)


def _darwin_cpu() -> tuple[str, set[str]]:
    def sysctl(name: str) -> str:
        try:
            return subprocess.run(["sysctl", "-n", name], capture_output=True, text=True, timeout=5).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return ""

    flags = {"bf16"} if sysctl("hw.optional.arm.FEAT_BF16") == "1" else set()
    return sysctl("machdep.cpu.brand_string"), flags


def tensorflow_uses_onednn(cpu: CpuInfo | None = None) -> bool:
    """Whether TensorFlow's oneDNN kernels run here: ``TF_ENABLE_ONEDNN_OPTS`` when set, else TF's own default."""
    cpu = cpu or cpu_info()
    setting = os.environ.get("TF_ENABLE_ONEDNN_OPTS", "").strip().lower()
    if setting in ("0", "false", "no", "off"):
        return False
    if setting in ("1", "true", "yes", "on"):
        return cpu.machine in ("x86_64", "amd64") or cpu.machine.startswith("aarch64")
    return cpu.machine in ("x86_64", "amd64") and any(flag in cpu.flags for flag in ONEDNN_DEFAULT_FLAGS)


@dataclass(frozen=True)
class PrecisionChoice:
    requested: str
    precision: str  # fp32 or bf16
    reason: str
    native: bool  # bf16 is computed in hardware here (for this backend)


def choose_precision(requested: str, backend: str, cpu: CpuInfo | None = None) -> PrecisionChoice:
    """fp32 or bf16 for training ``backend`` on this CPU, and why.

    ``auto`` picks bf16 only where it is native *and* measured faster: CPUs with bf16
    matrix units (AMX), where torch and Keras trained mnist_cnn faster than fp32 (the
    AMX Xeon run of benchmarks/results.md, 2026-11-23, in its history; the committed run
    names its own machine, and shows emulated bf16 far slower there). bf16 dot-product instructions alone (avx512_bf16 without AMX) were
    measured no faster than fp32 channels-last, so ``auto`` keeps fp32 there.
    Keras computes bf16 natively only through TensorFlow's oneDNN kernels.
    """
    if requested not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {requested!r}")
    cpu = cpu or cpu_info()
    native, why_not = (
        cpu.native_bf16,
        "this CPU has no native bf16 (no avx512_bf16, amx_bf16 or Arm BF16): it is emulated in software, slower than fp32",
    )
    if native and backend == "keras" and not tensorflow_uses_onednn(cpu):
        native = False
        why_not = (
            "TensorFlow's oneDNN kernels are off here (TF_ENABLE_ONEDNN_OPTS=0, or TF's default on this CPU), "
            "so Keras emulates bf16 in software, slower than fp32"
        )
    if requested == "fp32":
        return PrecisionChoice(requested, "fp32", "asked for fp32", native)
    if requested == "bf16":
        if native:
            return PrecisionChoice(requested, "bf16", "asked for bf16; native on this CPU", native)
        return PrecisionChoice(requested, "bf16", f"asked for bf16, but {why_not}", native)
    if not native:
        return PrecisionChoice(requested, "fp32", f"auto: fp32, because {why_not}", native)
    if cpu.bf16_matrix_units:
        return PrecisionChoice(
            requested, "bf16", "auto: bf16, because this CPU has bf16 matrix units (amx_bf16)", native
        )
    return PrecisionChoice(
        requested,
        "fp32",
        "auto: fp32; this CPU has bf16 dot products but no bf16 matrix units (AMX), where bf16 trained no faster",
        native,
    )


def warn_if_emulated(choice: PrecisionChoice) -> None:
    """An explicit bf16 where it is only emulated: say so once, with the reason."""
    if choice.precision == "bf16" and not choice.native:
        warnings.warn(
            f"--precision bf16: {choice.reason.removeprefix('asked for bf16, but ')}; "
            "training will be much slower than fp32 (use --precision auto or fp32)",
            PrecisionWarning,
            stacklevel=3,
        )


def gpu_description() -> str | None:
    """The CUDA GPU torch can use here, with its compute capability; None without one (or without torch)."""
    try:
        import torch
    except ImportError:
        return None
    if not torch.cuda.is_available():
        return None
    names = []
    for index in range(torch.cuda.device_count()):
        major, minor = torch.cuda.get_device_capability(index)
        names.append(f"{torch.cuda.get_device_name(index)} (compute capability {major}.{minor})")
    return "; ".join(names)


def describe() -> dict[str, object]:
    """The facts a benchmark result depends on, for results.md and run settings."""
    cpu = cpu_info()
    return {
        "cpu": cpu.model,
        "machine": cpu.machine,
        "cores": os.cpu_count(),
        "flags": cpu.reported_flags(),
        "native_bf16": cpu.native_bf16,
        "bf16_matrix_units": cpu.bf16_matrix_units,
        "tensorflow_onednn": tensorflow_uses_onednn(cpu),
    }
