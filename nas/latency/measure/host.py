"""This host's fingerprint, and whether a table or latency model was measured on a host like it.

A latency measured in onnxruntime depends on the CPU and on which kernels onnxruntime dispatches to on it: the
same network quantized to int8 runs slower than in fp32 on an AVX2 machine and faster on one with AVX-512 VNNI.
So everything measured on this host (``nas lut profile``, ``nas lut validate --calibrate``, ``nas lut adapt
--measure-here``) records :func:`fingerprint` as ``host_fingerprint``:

* ``cpu``: the CPU model name (Linux ``/proc/cpuinfo`` ``model name``, else ``Model`` / ``Hardware`` / implementer
  and part on ARM boards; macOS ``machdep.cpu.brand_string``; else ``platform.processor()``; ``unknown``);
* ``isa``: the instruction-set features onnxruntime's kernels (MLAS) dispatch on, sorted: x86 ``avx``, ``avx2``,
  ``fma``, ``f16c``, ``avx512f``, ``avx512bw``, ``avx512vl``, ``avx512_vnni``, ``avx512_bf16``, ``avx512_fp16``,
  ``avx_vnni``, ``avx_vnni_int8``, ``amx_tile``, ``amx_int8``, ``amx_bf16``; ARM ``asimd`` (NEON), ``asimddp``
  (dot product), ``i8mm``, ``sve``, ``sve2``, ``asimdhp``, ``bf16`` (macOS: the ``hw.optional`` names holding
  those words); None where the OS does not say;
* ``machine`` (``x86_64``, ``aarch64``, ...), ``logical_cores``, ``threads`` (the onnxruntime threads the
  measurement used), ``onnxruntime`` (its version), ``os`` (system and kernel release).

:func:`host_match` says whether a table's or model's metadata describes this host: ``yes`` / ``no`` (its
fingerprint compared with this host's on CPU model, ISA set, onnxruntime version, and whether this host has the
cores for the threads it used; kernel builds and core counts do not count), ``unknown`` (measured by this
project's protocol but recording no fingerprint, as the shipped ``x86-2vcpu``; or measured elsewhere on a host
nobody named), or ``n/a`` (a published table of another device, a model fitted from measurements the user says
were taken on another host, or a fingerprint of another machine architecture: an ``aarch64`` board's table used
on an ``x86_64`` laptop describes the board, not a wrong guess about the laptop). :func:`host_warning` is the one
line ``nas search``, ``nas lut predict`` and ``nas export`` print for ``no`` and ``unknown`` (via
:class:`HostMismatchWarning`, raised by :func:`nas.latency.load.load`).
"""
from __future__ import annotations

import functools
import os
import platform
import re
import subprocess

UNKNOWN = "unknown"
X86_ISA = ("avx", "avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512vl", "avx512_vnni", "avx512_bf16",
           "avx512_fp16", "avx_vnni", "avx_vnni_int8", "amx_tile", "amx_int8", "amx_bf16")
ARM_ISA = ("asimd", "asimddp", "i8mm", "sve", "sve2", "asimdhp", "bf16")
_MAC_WORDS = ("avx", "amx", "vnni", "dotprod", "i8mm", "sve", "neon", "asimd", "bf16", "fp16")
COMPARED = ("cpu", "isa", "onnxruntime", "threads")  # what makes two hosts' latencies differ


class HostMismatchWarning(UserWarning):
    """A latency table or model measured by this project on another host (or recording none) is used here."""


# --------------------------------------------------------------------------------------------------------
# this host
# --------------------------------------------------------------------------------------------------------
def fingerprint(threads: int) -> dict:
    """This host's fingerprint (see the module docstring) for a measurement with ``threads`` onnxruntime threads."""
    cpu, isa = _cpu()
    return {"cpu": cpu, "isa": None if isa is None else list(isa), "machine": platform.machine() or UNKNOWN,
            "logical_cores": os.cpu_count() or 0, "threads": int(threads), "onnxruntime": onnxruntime_version(),
            "os": f"{platform.system()} {platform.release()}".strip() or UNKNOWN}


def describe(fp: dict | None) -> str:
    """One line naming a fingerprint's host: CPU, machine, the ISA features, threads, onnxruntime, OS."""
    if not fp:
        return UNKNOWN
    isa = "ISA not recorded" if fp.get("isa") is None else (" ".join(fp["isa"]) or "no AVX/NEON features")
    return (f"{fp.get('cpu', UNKNOWN)} ({fp.get('machine', UNKNOWN)}, {fp.get('logical_cores', '?')} logical cores; "
            f"{isa}), {fp.get('threads', '?')} thread(s), onnxruntime {fp.get('onnxruntime', UNKNOWN)}, "
            f"{fp.get('os', UNKNOWN)}")


@functools.lru_cache(maxsize=1)
def _cpu() -> tuple[str, tuple[str, ...] | None]:
    """(CPU model, ISA features) of this host; read once per process (it does not change while running)."""
    system = platform.system()
    if system == "Linux":
        try:
            with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as fh:
                return parse_cpuinfo(fh.read())
        except OSError:
            pass
    if system == "Darwin":
        return _sysctl()
    return platform.processor() or UNKNOWN, None


def parse_cpuinfo(text: str) -> tuple[str, tuple[str, ...] | None]:
    """(CPU model, the ISA features onnxruntime dispatches on) from the text of Linux ``/proc/cpuinfo``."""
    fields: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, val = line.partition(":")
        if sep:
            fields.setdefault(key.strip().lower(), val.strip())
    cpu = fields.get("model name") or fields.get("model") or fields.get("hardware") or ""
    if not cpu and "cpu implementer" in fields:  # ARM without a name: implementer and part numbers
        cpu = f"ARM implementer {fields['cpu implementer']} part {fields.get('cpu part', '?')}"
    flags = fields.get("flags") or fields.get("features")
    if flags is None:
        return cpu or platform.processor() or UNKNOWN, None
    have = set(flags.split())
    return cpu or platform.processor() or UNKNOWN, tuple(sorted(have & set(X86_ISA + ARM_ISA)))


def _sysctl() -> tuple[str, tuple[str, ...] | None]:
    try:
        out = subprocess.run(["sysctl", "-a"], capture_output=True, text=True, timeout=5).stdout
    except (OSError, subprocess.SubprocessError):
        return platform.processor() or UNKNOWN, None
    cpu = re.search(r"^machdep\.cpu\.brand_string:\s*(.+)$", out, re.M)
    isa = [m.group(1).lower() for m in re.finditer(r"^hw\.optional\.([\w.]+):\s*1\s*$", out, re.M)
           if any(w in m.group(1).lower() for w in _MAC_WORDS)]
    return (cpu.group(1).strip() if cpu else platform.processor() or UNKNOWN), tuple(sorted(isa))


def onnxruntime_version() -> str:
    """The installed onnxruntime's version, from the package metadata (no import), else ``unknown``."""
    from importlib.metadata import PackageNotFoundError, version

    for dist in ("onnxruntime", "onnxruntime-gpu", "onnxruntime-openvino", "onnxruntime-directml"):
        try:
            return version(dist)
        except PackageNotFoundError:
            continue
    return UNKNOWN


# --------------------------------------------------------------------------------------------------------
# comparing
# --------------------------------------------------------------------------------------------------------
def differences(recorded: dict, here: dict) -> list[str]:
    """What differs between a recorded fingerprint and this host's, in the terms that change latencies (CPU
    model, ISA set, onnxruntime version, threads beyond this host's cores); a field either side does not know
    counts as different. Kernel release and core counts are not compared."""
    out = []
    for key in ("cpu", "onnxruntime"):
        a, b = recorded.get(key), here.get(key)
        if a in (None, UNKNOWN) or a != b:
            out.append(f"{key} {a or UNKNOWN} vs {b or UNKNOWN} here")
    a, b = recorded.get("isa"), here.get("isa")
    if a is None or b is None:
        out.append("ISA features not recorded" if a is None else "ISA features unknown here")
    elif set(a) != set(b):
        only_there, only_here = sorted(set(a) - set(b)), sorted(set(b) - set(a))
        out.append("ISA " + "; ".join(p for p in (f"only there: {' '.join(only_there)}" if only_there else "",
                                                    f"only here: {' '.join(only_here)}" if only_here else "") if p))
    threads, cores = int(recorded.get("threads") or 1), int(here.get("logical_cores") or 0)
    if cores and threads > cores:
        out.append(f"measured with {threads} threads, this host has {cores} logical cores")
    return out


def profiled_by_project(meta: dict) -> bool:
    """Whether metadata describes a host this project measured (a fingerprint, a profiler ``reference_ms``, a
    table's ``provenance.host``) rather than a published device, or a model fitted from measurements taken
    elsewhere."""
    if meta.get("host_fingerprint"):
        return True
    return meta.get("kind") != "transferred" and bool(meta.get("reference_ms")
                                                      or (meta.get("provenance") or {}).get("host"))


def host_match(meta: dict, here: dict | None = None) -> tuple[str, list[str]]:
    """(``yes`` / ``no`` / ``unknown`` / ``n/a``, the differences) for a table's metadata or a transferred
    model's document (see the module docstring); ``here`` defaults to this host's fingerprint."""
    fp = meta.get("host_fingerprint")
    if fp:
        here = here or fingerprint(int(fp.get("threads") or 1))
        if fp.get("machine") not in (None, UNKNOWN) and fp.get("machine") != here.get("machine"):
            return "n/a", [f"measured on {fp.get('machine')}, this host is {here.get('machine')}"]
        diff = differences(fp, here)
        return ("no" if diff else "yes"), diff
    if str(meta.get("host", "")).strip() not in ("", UNKNOWN):  # measured elsewhere, on the host the user named
        return "n/a", []
    if profiled_by_project(meta) or str(meta.get("host", "")).strip() == UNKNOWN:
        return UNKNOWN, ["no host fingerprint recorded"]
    return "n/a", []


def host_warning(meta: dict, *, device: str, spaces: list[str], here: dict | None = None) -> str | None:
    """The one-line warning for using ``device`` (a table or model with metadata ``meta``) on this host, or None
    when it matches or describes another device. Names the command that adapts it to this host."""
    status, diff = host_match(meta, here)
    if not (status == "no" or (status == UNKNOWN and profiled_by_project(meta))):
        return None
    space = spaces[0] if len(spaces) == 1 else "SPACE"
    why = (f"was measured on another host ({'; '.join(diff)})" if status == "no" else
           "records no host fingerprint (CPU model, ISA features, onnxruntime version)")
    return (f"latency table '{device}' {why}: its latencies may not be this host's; adapt it to this host with "
            f"`nas lut adapt --space {space} --from {device} --measure-here 20 --device-name {device}-here` and "
            f"use --device {device}-here")
