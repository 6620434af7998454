"""The CPU cores this process may run on: the default width of the encoder and of the gateway's scoring."""

from __future__ import annotations

import os


def usable_cores() -> int:
    """Cores in the process's affinity mask, which a container's CPU set narrows (unlike `os.cpu_count()`)."""
    return len(os.sched_getaffinity(0))
