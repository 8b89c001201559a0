"""A student's notebook kernel: start it, run cells with limits, stop it.

A :class:`KernelSession` owns one Jupyter kernel (started by an
:class:`dlcourse.sandbox.isolation.Sandbox`, or plainly) and executes cells with a
time limit and an output cap. The tests' requests reach it through
:class:`dlcourse.bridge.backends.KernelBackend`.
"""

from __future__ import annotations

import os
import queue
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
from jupyter_client import KernelManager

from ..bridge.errors import REPLY_LIMIT_BYTES, CellTimeout, KernelDied, no_reply, reply_too_large, unreadable_reply  # noqa: F401 (re-exported)


#: Stored outputs of one cell are cut here; the kernel may print more.
OUTPUT_LIMIT_BYTES = 200_000
#: Seconds a new kernel may take to import torch and the agent (not counted against any cell).
WARM_UP_TIMEOUT = 180
@dataclass
class CellRun:
    outputs: list = field(default_factory=list)
    status: str = "ok"  # ok | error | timeout | died
    error_name: str = ""
    error_value: str = ""
    truncated: bool = False
    seconds: float = 0.0
    reply_too_large: bool = False


class KernelSession:
    """One kernel for one notebook of one submission."""

    def __init__(self, workdir: Path, env: dict[str, str], sandbox=None, startup_timeout: float = 60):
        self.workdir = Path(workdir)
        self.sandbox = sandbox
        kernel_env = dict(os.environ)
        kernel_env.update(env)
        if sandbox is not None:
            self.manager = sandbox.kernel_manager(self.workdir)
            kernel_env = sandbox.environment(kernel_env)
        else:
            self.manager = KernelManager(kernel_name="python3")
        self._env = kernel_env
        self._startup_timeout = startup_timeout
        self.client = None
        self.timings: dict[str, float] = {}  # seconds: "start" (sandbox + kernel), "imports" (warm-up)

    def start(self) -> None:
        started = time.monotonic()
        self._log = tempfile.TemporaryFile()
        self.manager.start_kernel(extra_arguments=["--HistoryManager.hist_file=:memory:"], cwd=str(self.workdir),
                                  env=self._env, stdout=subprocess.DEVNULL, stderr=self._log)
        self.client = self.manager.client()
        self.client.start_channels()
        try:
            self.client.wait_for_ready(timeout=self._startup_timeout)
        except RuntimeError as error:
            self._log.seek(0)
            detail = self._log.read()[-1500:].decode(errors="replace")
            raise KernelDied(f"the kernel did not start: {error}\n{detail}") from error
        self.timings["start"] = time.monotonic() - started
        self._warm_up()
        self.timings["imports"] = time.monotonic() - started - self.timings["start"]

    def _warm_up(self) -> None:
        """Import torch and the agent before the student's first cell.

        The import takes seconds on a busy machine; counted against the first
        cell's limit it would time out a correct notebook, and an interrupt in
        the middle of ``import torch`` leaves torch half-imported. Nothing is
        bound in the student's namespace.
        """
        run = self.execute("__import__('dlcourse.bridge.agent')", timeout=max(self._startup_timeout, WARM_UP_TIMEOUT),
                           silent=True)
        if run.status in ("died", "timeout"):
            raise KernelDied(f"the kernel could not import torch and the grader's agent ({run.status})")

    def alive(self) -> bool:
        return self.manager.is_alive()

    def execute(self, source: str, timeout: float, *, silent: bool = False) -> CellRun:
        """Execute ``source``; collect its outputs (capped) until it finishes."""
        run = CellRun()
        started = time.monotonic()
        if not self.alive():
            run.status = "died"
            return run
        msg_id = self.client.execute(source, silent=silent, store_history=not silent, allow_stdin=False)
        deadline = started + timeout
        size = 0
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                run.status = "timeout"
                if not silent:
                    run.outputs.append(nbformat.v4.new_output(
                        "error", ename="TimeoutError", evalue=f"stopped by the grader after {timeout:.0f} s",
                        traceback=[f"TimeoutError: this cell ran longer than {timeout:.0f} s and was stopped"]))
                self._recover_after_timeout()
                break
            try:
                msg = self.client.get_iopub_msg(timeout=min(remaining, 1.0))
            except queue.Empty:
                if not self.alive():
                    run.status = "died"
                    break
                continue
            if msg["parent_header"].get("msg_id") != msg_id:
                continue
            kind = msg["msg_type"]
            if kind == "status":
                if msg["content"]["execution_state"] == "idle":
                    break
                continue
            if kind == "error":
                run.status = "error"
                run.error_name = msg["content"].get("ename", "")
                run.error_value = msg["content"].get("evalue", "")
            if kind not in ("stream", "display_data", "execute_result", "error"):
                continue
            output = nbformat.v4.output_from_msg(msg)
            from ..bridge import wire  # here: it imports torch, which a process that only runs kernels need not

            blob = output.get("data", {}).get(wire.REPLY_MIME_TYPE) if silent and kind == "display_data" else None
            if blob is not None:
                # A test's request: its reply does not count against the print limit
                # (tensors of a few hundred kB are common); the first one is kept.
                if len(blob) > REPLY_LIMIT_BYTES:
                    run.reply_too_large = True
                elif not any(wire.REPLY_MIME_TYPE in o.get("data", {}) for o in run.outputs):
                    run.outputs.append(output)
                continue
            size += _output_size(output)
            if size > OUTPUT_LIMIT_BYTES:
                run.truncated = True
                continue
            run.outputs.append(output)
        self._drain_shell()
        if run.truncated:
            run.outputs.append(nbformat.v4.new_output(
                "stream", name="stdout",
                text=f"\n[output cut by the grader after {OUTPUT_LIMIT_BYTES:,} bytes]\n"))
        run.seconds = time.monotonic() - started
        return run

    def _drain_shell(self) -> None:
        while True:
            try:
                self.client.get_shell_msg(timeout=0)
            except queue.Empty:
                return
            except Exception:
                return

    def _recover_after_timeout(self) -> None:
        """Interrupt a cell that ran too long; kill a kernel that ignores it."""
        try:
            self.manager.interrupt_kernel()
        except Exception:
            pass
        try:
            reply = self.client.execute("pass", silent=True, store_history=False)
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                msg = self.client.get_shell_msg(timeout=max(0.1, deadline - time.monotonic()))
                if msg["parent_header"].get("msg_id") == reply:
                    return
        except Exception:
            pass
        self.kill()

    def kill(self) -> None:
        try:
            self.manager.shutdown_kernel(now=True)
        except Exception:
            pass

    def shutdown(self) -> None:
        try:
            if self.client is not None:
                self.client.stop_channels()
        finally:
            self.kill()
            if getattr(self, "_log", None) is not None:
                self._log.close()
            if self.sandbox is not None:
                self.sandbox.cleanup()


def _output_size(output) -> int:
    if output.get("output_type") == "stream":
        return len(output.get("text", ""))
    if output.get("output_type") == "error":
        return sum(len(line) for line in output.get("traceback", []))
    return sum(len(str(value)) for value in output.get("data", {}).values())
