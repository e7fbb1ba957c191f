"""JAX's persistent compilation cache for the command-line tools: a run compiles once per machine.

A training process spends most of its first seconds compiling (the train state, the step, the
sampler: 3 s of 11 for the default config's 1-iteration run, 20 s of 29 for dcgan, on a 2-core AMD EPYC;
bench/results/startup_*.txt). With the cache, a later process that compiles the same program loads
the executable XLA made the first time: the same machine code, so bitwise the same numbers.

Where: $GAN_JAX_CACHE_DIR, else $XDG_CACHE_HOME/gan_jax/xla, else ~/.cache/gan_jax/xla, in a folder
per CPU (its model name and instruction-set flags): XLA compiles for the CPU it runs on, and a home
folder shared by machines of several kinds must not hand one machine's code to another.
GAN_JAX_CACHE_DIR=off turns it off. A JAX cache already configured (JAX_COMPILATION_CACHE_DIR, or
jax.config) is left as it is. An unwritable folder only loses the speed-up. Entries: compilations of
at least 0.2 s, the whole cache kept under 2 GiB (least recently used dropped first; JAX locks the
folder while writing, so processes share it safely).
"""

from __future__ import annotations

import hashlib
import os

import jax

MAX_BYTES, MIN_COMPILE_SECONDS = 2 << 30, 0.2


def cache_dir() -> str | None:
    """The folder this machine's cache lives in (see the module docstring); None when turned off."""
    root = os.environ.get("GAN_JAX_CACHE_DIR")
    if root == "off":
        return None
    if not root:
        base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
        root = os.path.join(base, "gan_jax", "xla")
    return os.path.join(root, _cpu_fingerprint())


def enable() -> str | None:
    """Turn the cache on for this process (before its first compilation); returns its folder, or None
    when it is off, already configured otherwise, or not writable."""
    if jax.config.jax_compilation_cache_dir:
        return None
    path = cache_dir()
    if path is None:
        return None
    try:
        os.makedirs(path, exist_ok=True)
    except OSError:
        return None
    if not os.access(path, os.W_OK | os.X_OK):
        return None
    jax.config.update("jax_compilation_cache_dir", path)
    jax.config.update("jax_compilation_cache_max_size", MAX_BYTES)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", MIN_COMPILE_SECONDS)
    return path


def _cpu_fingerprint() -> str:
    """'cpu-' + 12 hex digits of the CPU's model name and flags (/proc/cpuinfo; the platform elsewhere)."""
    text = ""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                key = line.partition(":")[0].strip()
                if key in ("model name", "flags", "cpu family", "model", "Features", "CPU part"):
                    text += line
                if not line.strip() and text:
                    break  # the first processor's block is enough
    except OSError:
        import platform  # noqa: PLC0415

        text = f"{platform.machine()} {platform.processor()}"
    return "cpu-" + hashlib.sha256(text.encode()).hexdigest()[:12]
