"""Child processes that do not outlive their parent (the Prefect server, extract workers)."""

from __future__ import annotations

import contextlib
import functools
import os
import signal
import sys
import threading
import time


def die_with_parent(kernel_signal: bool = True) -> None:
    """Exit when the parent process dies: a thread that watches the parent's pid (within a
    second) and, with ``kernel_signal`` on Linux, ``PR_SET_PDEATHSIG`` (at once; but the
    kernel sends it when the parent *thread* that started the child ends, so it is only for
    children started from a thread that lives as long as its process)."""
    parent = os.getppid()
    if kernel_signal and sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            import ctypes

            pr_set_pdeathsig = 1
            ctypes.CDLL("libc.so.6", use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)

    def watch() -> None:
        while True:
            if os.getppid() != parent:
                os._exit(0)
            time.sleep(1.0)

    threading.Thread(target=watch, daemon=True).start()
    if os.getppid() != parent:  # the parent died before the signal was armed
        os._exit(0)


@functools.cache
def _libc_trim():
    try:
        import ctypes

        return ctypes.CDLL("libc.so.6").malloc_trim
    except (OSError, AttributeError):  # not glibc
        return None


def release_memory() -> None:
    """Give the heap's free memory back to the system (glibc's ``malloc_trim``).

    A page's big buffers (the rendered image, the detectors' activations, ONNX Runtime
    frees them when a run ends) leave glibc with hundreds of MB free but still mapped,
    counted in the process's RSS until the next page reuses them: measured on an A4 scan,
    ~100 MB a worker. Called after each document; costs about a millisecond."""
    trim = _libc_trim()
    if trim is not None:
        trim(0)
