"""A local sweep's Ray listens on the loopback address only, and the token it generates is private."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys

import pytest

from tests.conftest import ROOT

PROBE = r"""
import json, sys
import psutil
from search.ray_session import start_ray

start_ray(None, 1)  # what `python -m search.run SPEC` does without --address
import ray

try:
    ray.get(ray.remote(lambda: 1).remote())  # a worker process too
    me = psutil.Process()
    listening = []
    for proc in [me, *me.children(recursive=True)]:
        try:
            for conn in proc.net_connections(kind="inet"):
                if conn.status == psutil.CONN_LISTEN:
                    listening.append([proc.name(), conn.laddr.ip, conn.laddr.port])
        except psutil.Error:
            pass
    print(json.dumps(listening))
finally:
    ray.shutdown()
"""


@pytest.mark.e2e
def test_a_local_sweeps_ray_listens_on_loopback_only_without_any_variable(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}  # no RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER
    env["HOME"] = str(tmp_path)  # a machine that has no Ray token yet
    proc = subprocess.run([sys.executable, "-c", PROBE], cwd=ROOT, env=env, capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stderr[-3000:]
    listening = json.loads(proc.stdout.strip().splitlines()[-1])
    names = {name for name, _, _ in listening}
    assert any("gcs_server" in n for n in names) and any("raylet" in n for n in names), listening
    assert all(ip in ("127.0.0.1", "::ffff:127.0.0.1", "::1") for _, ip, _ in listening), listening
    token = tmp_path / ".ray" / "auth_token"  # Ray generates one for a new local cluster (token auth on by default)
    assert token.exists() and stat.S_IMODE(token.stat().st_mode) == 0o600
