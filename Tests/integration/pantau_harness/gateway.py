"""The gateway binary under test: located via PANTAU_BIN, run as `pantau run --config FILE`."""

from __future__ import annotations

import os
import subprocess

from .procs import kill, repo_root, terminate

EX_CONFIG = 78  # sysexits.h EX_CONFIG: what `pantau check-config` and `pantau run` exit with on a bad config


def binary_path() -> str:
    return os.path.abspath(os.environ.get("PANTAU_BIN") or os.path.join(repo_root(), ".build", "debug", "pantau"))


def binary_missing_reason() -> str | None:
    """Why the gateway tests cannot run, or None when the binary is there."""
    path = binary_path()
    if not os.path.isfile(path) or not os.access(path, os.X_OK):
        return f"gateway binary not found at {path} (build it with `swift build` or set PANTAU_BIN)"
    return None


class GatewayProcess:
    """One `pantau run` process with its config in `workdir` and stderr captured to `workdir/gateway.log`."""

    def __init__(self, workdir: str, config_text: str, env: dict[str, str] | None = None, name: str = "gateway"):
        self.workdir = workdir
        self.config_path = os.path.join(workdir, f"{name}.yaml")
        self.log_path = os.path.join(workdir, f"{name}.log")
        self.env = dict(os.environ, **(env or {}))
        self.proc: subprocess.Popen | None = None
        with open(self.config_path, "w", encoding="utf-8") as f:
            f.write(config_text)

    def start(self) -> "GatewayProcess":
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [binary_path(), "run", "--config", self.config_path],
            stdin=subprocess.DEVNULL, stdout=log, stderr=log, env=self.env, cwd=self.workdir,
        )
        log.close()
        return self

    def stop(self, grace: float = 10.0) -> int | None:
        """SIGTERM and wait (the graceful path: flush, publish offline, exit 0); SIGKILL after `grace`."""
        return terminate(self.proc, grace=grace)

    def kill(self) -> int | None:
        return kill(self.proc)

    def restart(self) -> "GatewayProcess":
        self.stop()
        return self.start()

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    @property
    def returncode(self) -> int | None:
        return None if self.proc is None else self.proc.poll()

    def logs(self) -> str:
        try:
            with open(self.log_path, encoding="utf-8", errors="replace") as f:
                return f.read()
        except FileNotFoundError:
            return ""


def check_config(config_path: str, cwd: str | None = None, timeout: float = 30.0) -> subprocess.CompletedProcess:
    """Runs `pantau check-config FILE`; stdout and stderr are both kept (diagnostics may go to either)."""
    return subprocess.run(
        [binary_path(), "check-config", config_path], capture_output=True, text=True, timeout=timeout,
        stdin=subprocess.DEVNULL, cwd=cwd,
    )
