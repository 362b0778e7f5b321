"""The route README.md and book/intro.md give learners: `.venv/bin/jupyter lab` from the book's root.

The venv's own `jupyter lab` is started on a free loopback port with a token, asked for
/api/status (a bounded wait), asked to list book/ through the contents API, which must hold every
chapter in _toc.yml, and for the JupyterLab page itself, which must load jupyterlab-myst (pinned in
requirements.txt) so that the notebooks' MyST renders; then it is stopped. Nothing leaves the
machine: --no-browser, 127.0.0.1, and runtime files in a temporary folder."""

from __future__ import annotations

import json
import os
import secrets
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from booktools import toc_files

ROOT = Path(__file__).resolve().parents[2]
JUPYTER = Path(sys.executable).with_name("jupyter")  # the venv's, as the README says
START_TIMEOUT_S = 60


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get(url: str, token: str) -> tuple[int, bytes]:
    request = urllib.request.Request(url, headers={"Authorization": f"token {token}"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.status, response.read()


def toc_notebooks() -> set[str]:
    files = toc_files(ROOT)
    return {Path(f).name + ".ipynb" for f in files if (ROOT / f"{f}.ipynb").exists()}


@pytest.mark.notebooks
def test_documented_jupyter_lab_route_serves_the_book(tmp_path):
    readme = (ROOT / "README.md").read_text() + (ROOT / "book" / "intro.md").read_text()
    assert ".venv/bin/jupyter lab" in readme and "--allow-root" in readme
    assert JUPYTER.exists(), f"{JUPYTER} missing: jupyterlab belongs in requirements.txt"
    port, token = free_port(), secrets.token_hex(16)
    env = {**os.environ, "JUPYTER_RUNTIME_DIR": str(tmp_path / "runtime")}
    env.pop("JUPYTER_TOKEN", None)
    server = subprocess.Popen(
        [
            str(JUPYTER),
            "lab",
            "--no-browser",
            f"--port={port}",
            "--ip=127.0.0.1",
            f"--IdentityProvider.token={token}",
            f"--ServerApp.root_dir={ROOT}",
            "--ServerApp.port_retries=0",
            *(["--allow-root"] if os.geteuid() == 0 else []),  # as the README says for root
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline, status = time.monotonic() + START_TIMEOUT_S, None
        while time.monotonic() < deadline and server.poll() is None:
            try:
                status = json.loads(get(f"{base}/api/status", token)[1])
                break
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                time.sleep(0.5)
        if status is None:
            server.terminate()
            output = server.communicate(timeout=30)[0].decode(errors="replace")
            raise AssertionError(
                f"jupyter lab did not answer /api/status within {START_TIMEOUT_S} s "
                f"(exit code {server.poll()}):\n{output[-3000:]}"
            )
        listing = json.loads(get(f"{base}/api/contents/book", token)[1])
        names = {item["name"] for item in listing["content"]}
        assert toc_notebooks() <= names, f"missing from book/: {toc_notebooks() - names}"
        code, page = get(f"{base}/lab", token)
        assert code == 200 and b"JupyterLab" in page  # the lab interface, not only a server
        # MyST ({cite}, admonitions) renders in the lab: the pinned extension is served with the page
        assert b'"name": "jupyterlab-myst"' in page, (
            "jupyterlab-myst is not among the lab's extensions: reinstall requirements.txt"
        )
    finally:
        server.terminate()
        try:
            output = server.communicate(timeout=30)[0].decode(errors="replace")
        except subprocess.TimeoutExpired:
            server.kill()
            output = server.communicate()[0].decode(errors="replace")
    assert "Traceback" not in output, output[-3000:]
