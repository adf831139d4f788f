"""What machine a benchmark ran on, for its JSON (the CPU model matters: the same 2-core
VM type has come with CPUs whose speed differs 2-3x for these workloads)."""
from __future__ import annotations

import os
import platform
import resource


def cpu_model() -> str:
    """``model name`` from /proc/cpuinfo with its family/model numbers, e.g. ``AMD EPYC (family 25, model 1)``;
    ``platform.processor()`` elsewhere."""
    info: dict[str, str] = {}
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if not line.strip():
                    break                       # the first CPU is enough
                key, _, val = line.partition(":")
                info[key.strip()] = val.strip()
    except OSError:
        pass
    name = info.get("model name") or platform.processor() or platform.machine()
    if "cpu family" in info and "model" in info:
        name += f" (family {info['cpu family']}, model {info['model']})"
    return name


def machine() -> dict[str, object]:
    return {"cpus": os.cpu_count(), "cpu": cpu_model(), "python": platform.python_version(),
            "platform": platform.platform()}


def cpu_seconds() -> float:
    """CPU time (user + system) of this process and its reaped children (the pool workers)."""
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def steal_seconds() -> float:
    """Machine-wide CPU time the hypervisor gave to other guests (``steal`` in /proc/stat), 0 if unknown."""
    try:
        with open("/proc/stat") as f:
            fields = f.readline().split()
        return int(fields[8]) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return 0.0


def loadavg() -> list[float]:
    """The 1, 5 and 15-minute load averages, rounded."""
    return [round(x, 2) for x in os.getloadavg()]
