"""Install PyTorch into the running interpreter's environment, the right build for this machine.

* A machine with an NVIDIA GPU (``nvidia-smi -L`` lists one) gets the normal wheel from the
  package index (a CUDA build).
* A machine without one gets a CPU build, never a multi-GB CUDA wheel: first a local
  ``torch-*+cpu`` wheel for this Python from pip's configured ``find-links`` folders, else
  ``torch==$SUMDUN_TORCH_VERSION`` (default 2.13.0) from PyTorch's CPU index.

Overrides: ``SUMDUN_TORCH_SPEC`` (a full pip requirement, e.g. ``torch==2.5.1``) installs exactly
that from the configured indexes; ``SUMDUN_TORCH_CPU_INDEX`` replaces the CPU index URL.
An already installed torch is kept. Standard library only: this runs before anything else.
It installs through the environment's ``uv`` when there is one (the Makefile's setup installs it
unless ``SUMDUN_NO_UV`` is set), else through pip.
"""
from __future__ import annotations

import glob
import importlib.metadata
import os
import shutil
import subprocess
import sys

CPU_VERSION = os.environ.get("SUMDUN_TORCH_VERSION", "2.13.0")
CPU_INDEX = os.environ.get("SUMDUN_TORCH_CPU_INDEX", "https://download.pytorch.org/whl/cpu")


def pip(*args: str) -> None:
    """``pip install ARGS`` into this interpreter's environment, through uv when the
    environment has it (the Makefile installs it first: the same packages, several times
    faster)."""
    uv = os.path.join(os.path.dirname(sys.executable), "uv")
    if os.access(uv, os.X_OK):
        cmd = [uv, "pip", "install", "--python", sys.executable, *args]
    else:
        cmd = [sys.executable, "-m", "pip", "install", *args]
    print("+", " ".join(cmd), flush=True)
    subprocess.check_call(cmd)


def has_nvidia_gpu() -> bool:
    exe = shutil.which("nvidia-smi")
    if exe is None:
        return False
    try:
        out = subprocess.run([exe, "-L"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return out.returncode == 0 and "GPU" in out.stdout


def find_links_dirs() -> list[str]:
    """Folders named by pip's ``find-links`` setting (environment and pip config files)."""
    values = [os.environ.get("PIP_FIND_LINKS", "")]
    try:
        out = subprocess.run([sys.executable, "-m", "pip", "config", "list"],
                             capture_output=True, text=True, timeout=60).stdout
    except (OSError, subprocess.TimeoutExpired):
        out = ""
    for line in out.splitlines():
        key, _, value = line.partition("=")
        if key.strip().endswith("find-links"):
            values.append(value.strip().strip("'\""))
    dirs = []
    for value in values:
        for item in value.split():
            path = item[len("file://"):] if item.startswith("file://") else item
            if os.path.isdir(path):
                dirs.append(path)
    return dirs


def local_cpu_wheel() -> str | None:
    tag = f"cp{sys.version_info.major}{sys.version_info.minor}"
    for folder in find_links_dirs():
        hits = sorted(glob.glob(os.path.join(folder, f"torch-{CPU_VERSION}+cpu-{tag}-*.whl")))
        if hits:
            return hits[-1]
    return None


def main() -> int:
    try:
        print(f"torch {importlib.metadata.version('torch')} already installed; keeping it")
        return 0
    except importlib.metadata.PackageNotFoundError:
        pass
    spec = os.environ.get("SUMDUN_TORCH_SPEC")
    if spec:
        pip(spec)
    elif has_nvidia_gpu():
        print("NVIDIA GPU found: installing the standard (CUDA) torch wheel")
        pip("torch>=2.1")
    else:
        wheel = local_cpu_wheel()
        if wheel:
            print(f"no GPU: installing the local CPU wheel {wheel}")
            pip(wheel)
        else:
            print(f"no GPU: installing torch=={CPU_VERSION} from the CPU index {CPU_INDEX}")
            pip(f"torch=={CPU_VERSION}", "--index-url", CPU_INDEX,
                "--extra-index-url", "https://pypi.org/simple")
    return 0


if __name__ == "__main__":
    sys.exit(main())
