"""Start a real ComfyUI server with this pack loaded, queue API graphs over HTTP and follow them
over the websocket. Shared by the tests, scripts/demo and scripts/serve; standard library and
websocket-client only.

The pack is loaded from the checkout itself: the server's base directory gets
``custom_nodes/comfyui_avits`` as a symlink to the repository root.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path
from typing import Callable

REPO = Path(__file__).resolve().parents[1]
PACK_NAME = "comfyui_avits"


def comfyui_dir() -> Path:
    """The ComfyUI tree of the environment scripts/env built (beside the venv .venv points at)."""
    if os.environ.get("AVITS_COMFYUI"):
        return Path(os.environ["AVITS_COMFYUI"])
    return (REPO / ".venv").resolve().parent / "ComfyUI"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ExecutionFailed(RuntimeError):
    """A queued prompt ended with an execution error (carries ComfyUI's error message)."""

    def __init__(self, message: str, details: dict):
        super().__init__(message)
        self.details = details


class ComfyServer:
    """A ComfyUI server process on 127.0.0.1 with its own base directory."""

    def __init__(self, base_dir: Path, port: int | None = None, extra_args: list[str] = (),
                 env: dict[str, str] | None = None):
        self.base = Path(base_dir)
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.extra_args = list(extra_args)
        self.env = dict(env or {})
        """Environment variables of the server process beside this one's."""
        self.log_path = self.base / "server.log"
        self.proc: subprocess.Popen | None = None
        self.client_id = uuid.uuid4().hex

    # --- process -----------------------------------------------------------------------------
    def prepare(self) -> None:
        for sub in ("custom_nodes", "models", "user", "input", "output", "temp"):
            (self.base / sub).mkdir(parents=True, exist_ok=True)
        link = self.base / "custom_nodes" / PACK_NAME
        if not link.is_symlink():
            link.symlink_to(REPO, target_is_directory=True)

    def command(self) -> list[str]:
        return [str(REPO / ".venv/bin/python"), str(comfyui_dir() / "main.py"), "--cpu", "--listen", "127.0.0.1",
                "--port", str(self.port), "--base-directory", str(self.base),
                "--database-url", f"sqlite:///{self.base / 'comfyui.db'}", "--disable-auto-launch",
                *self.extra_args]

    def start(self, timeout: float = 180, foreground: bool = False) -> None:
        self.prepare()
        if foreground:
            os.chdir(comfyui_dir())
            os.execv(self.command()[0], self.command())
        log = open(self.log_path, "ab")
        env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONUNBUFFERED": "1", **self.env}
        self.proc = subprocess.Popen(self.command(), cwd=comfyui_dir(), stdout=log,
                                     stderr=subprocess.STDOUT, env=env, start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"ComfyUI exited with code {self.proc.returncode}:\n{self.log_tail()}")
            try:
                self.get("/system_stats", timeout=2)
                return
            except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
                time.sleep(0.5)
        self.stop()
        raise RuntimeError(f"ComfyUI did not answer within {timeout} s:\n{self.log_tail()}")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def log_tail(self, lines: int = 60) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return "(no server log)"

    # --- HTTP ----------------------------------------------------------------------------------
    def get(self, path: str, timeout: float = 30):
        with urllib.request.urlopen(self.url + path, timeout=timeout) as r:
            body = r.read()
        return json.loads(body) if body else None

    def post(self, path: str, payload, timeout: float = 30):
        req = urllib.request.Request(self.url + path, data=json.dumps(payload).encode(),
                                     headers={"Content-Type": "application/json"}, method="POST")
        try:
            with urllib.request.urlopen(req, timeout=timeout) as r:
                body = r.read()
        except urllib.error.HTTPError as e:
            raise QueueRejected(e.code, json.loads(e.read() or b"null")) from None
        return json.loads(body) if body else None

    def queue(self, graph: dict) -> str:
        """POST /prompt; returns the prompt id. QueueRejected on a validation error, also when
        ComfyUI accepted the prompt but dropped some outputs for their node errors."""
        answer = self.post("/prompt", {"prompt": graph, "client_id": self.client_id})
        if answer.get("node_errors"):
            raise QueueRejected(200, answer)
        return answer["prompt_id"]

    def history(self, prompt_id: str) -> dict | None:
        return self.get(f"/history/{prompt_id}").get(prompt_id)

    def run(self, graph: dict, timeout: float = 300,
            on_progress: Callable[[dict], None] | None = None) -> dict:
        """Queue a graph, follow it over the websocket until it finishes, return its history
        entry. Raises ExecutionFailed with ComfyUI's message if a node fails."""
        import websocket  # websocket-client

        ws = websocket.create_connection(f"ws://127.0.0.1:{self.port}/ws?clientId={self.client_id}",
                                         timeout=timeout)
        try:
            prompt_id = self.queue(graph)
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                msg = ws.recv()
                if not isinstance(msg, str):
                    continue
                event = json.loads(msg)
                data = event.get("data", {})
                if data.get("prompt_id") not in (None, prompt_id):
                    continue
                if event["type"] == "progress" and on_progress:
                    on_progress(data)
                if event["type"] in ("execution_error", "execution_interrupted"):
                    break
                if event["type"] == "executing" and data.get("node") is None:
                    break
                if event["type"] == "execution_success":
                    break
            else:
                raise TimeoutError(f"prompt {prompt_id} did not finish in {timeout} s:\n{self.log_tail()}")
        finally:
            ws.close()
        return self.wait_history(prompt_id)

    def wait_history(self, prompt_id: str, timeout: float = 30) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            entry = self.history(prompt_id)
            if entry and entry.get("status", {}).get("completed") is not None:
                status = entry["status"]
                if status.get("status_str") == "error":
                    err = next((m[1] for m in status.get("messages", [])
                                if m[0] in ("execution_error", "execution_interrupted")), {})
                    raise ExecutionFailed(f"{err.get('node_type')}: "
                                          f"{err.get('exception_message', 'interrupted')}", entry)
                return entry
            time.sleep(0.2)
        raise TimeoutError(f"no history for {prompt_id}:\n{self.log_tail()}")


class QueueRejected(RuntimeError):
    """POST /prompt answered with an error (validation: missing node types, bad inputs)."""

    def __init__(self, code: int, body):
        super().__init__(f"HTTP {code}: {json.dumps(body)[:2000]}")
        self.code, self.body = code, body


if __name__ == "__main__":
    # comfyctl.py serve BASE_DIR PORT [ComfyUI flags...]: run the server in the foreground
    if len(sys.argv) < 4 or sys.argv[1] != "serve":
        sys.exit("usage: comfyctl.py serve BASE_DIR PORT [ComfyUI flags...]")
    ComfyServer(Path(sys.argv[2]), int(sys.argv[3]), sys.argv[4:]).start(foreground=True)
