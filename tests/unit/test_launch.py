"""The tests' fork server (``support.launch``, ``support.zygote``) runs a vir command as
a process of its own, as ``python -m`` would: its working directory, environment,
umask, standard streams, exit code and signals. And vir reads no setting at import,
which is what lets the server import vir before it knows a command's environment."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from support import launch

pytestmark = [
    pytest.mark.skipif(not launch.forking(), reason="VIR_TEST_LAUNCH=exec"),
    pytest.mark.sqlite_only("the test launcher: no database of its own"),
]


def test_a_vir_command_gets_its_own_streams_environment_and_exit_code(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("VIR_")}
    done = launch.run([sys.executable, "-m", "vir.cli", "--help"], cwd=tmp_path, env=env)
    assert done.returncode == 0 and done.stdout.startswith("usage: vir"), done.stderr
    assert done.stderr == ""  # no warning of runpy's about the preloaded module

    refused = launch.run([sys.executable, "-m", "vir.cli", "no-such-command"], env=env)
    assert refused.returncode == 2 and "invalid choice" in refused.stderr
    assert refused.stdout == ""

    # Settings come from the command's environment, not the server's: an index whose
    # database URL the environment names, refused for its scheme.
    bad = env | {"VIR_DATABASE_URL": "mysql://nowhere/vir"}
    failed = launch.run([sys.executable, "-m", "vir.cli", "org", "list"], cwd=tmp_path, env=bad)
    assert failed.returncode != 0
    assert "VIR_DATABASE_URL" in failed.stderr or "database" in failed.stderr.lower()


def test_the_forked_command_matches_a_fresh_interpreter(tmp_path: Path) -> None:
    """The same command, forked and executed afresh: the same output and exit code."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("VIR_")}
    env["VIR_DATABASE_URL"] = f"sqlite:///{tmp_path / 'vir.db'}"
    tmp_path.chmod(0o700)
    args = [sys.executable, "-m", "vir.cli", "db", "upgrade"]
    forked = launch.run(args, cwd=tmp_path, env=env)
    fresh = subprocess.run(args, cwd=tmp_path, env=env, capture_output=True, text=True)
    assert (forked.returncode, forked.stdout) == (fresh.returncode, fresh.stdout)
    listed = [sys.executable, "-m", "vir.cli", "org", "list"]
    forked = launch.run(listed, cwd=tmp_path, env=env)
    fresh = subprocess.run(listed, cwd=tmp_path, env=env, capture_output=True, text=True)
    assert (forked.returncode, forked.stdout, forked.stderr) == (
        fresh.returncode,
        fresh.stdout,
        fresh.stderr,
    )


def test_umask_working_directory_and_signals(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("VIR_")}
    env["VIR_DATABASE_URL"] = f"sqlite:///{tmp_path / 'db' / 'vir.db'}"
    done = launch.run(
        [sys.executable, "-m", "vir.cli", "keys", "init", "--keys-dir", "keys"],
        cwd=tmp_path,
        env=env,
    )
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "keys").is_dir()  # relative to the command's working directory
    upgraded = launch.run([sys.executable, "-m", "vir.cli", "db", "upgrade"], env=env)
    assert upgraded.returncode == 0, upgraded.stderr

    # A command that waits (for its standard input) has the umask and working directory
    # of the test that started it, and ends by a signal: the code is minus the signal's
    # number, as subprocess reports it.
    old = os.umask(0o027)
    try:
        with (tmp_path / "deceased.log").open("wb") as out:
            waiting = launch.popen(
                [sys.executable, "-m", "vir.cli", "person", "deceased"],
                cwd=tmp_path,
                env=env,
                stdin=subprocess.PIPE,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
    finally:
        os.umask(old)
    status = Path(f"/proc/{waiting.pid}/status").read_text()
    assert "\nUmask:\t0027\n" in status
    assert Path(f"/proc/{waiting.pid}/cwd").resolve() == tmp_path.resolve()
    assert waiting.poll() is None
    with pytest.raises(subprocess.TimeoutExpired):
        waiting.wait(timeout=0.2)
    waiting.send_signal(signal.SIGKILL)
    assert waiting.wait(timeout=30) == -signal.SIGKILL
    assert waiting.poll() == -signal.SIGKILL
    assert waiting.stdin is not None
    waiting.stdin.close()


def test_vir_reads_no_setting_when_imported() -> None:
    """Import every vir module in a fresh interpreter whose environment records who reads
    it: no vir module may read a VIR_ variable before a command runs. (A library that
    copies the whole environment at import, as wsgiref does, gets each child's own from
    the fork server.)"""
    program = """
import importlib, os, pkgutil, sys
import vir
package = os.path.dirname(vir.__file__)
read = set()
def reader():
    frame = sys._getframe(2)
    while frame and frame.f_code.co_filename.endswith(("os.py", "_collections_abc.py", "<string>")):
        frame = frame.f_back
    return frame.f_code.co_filename if frame else ""
class Recording(type(os.environ)):
    def __getitem__(self, key):
        if reader().startswith(package):
            read.add(key)
        return super().__getitem__(key)
    def __contains__(self, key):
        if reader().startswith(package):
            read.add(key)
        return super().__contains__(key)
os.environ = Recording(os.environ._data, os.environ.encodekey, os.environ.decodekey,
                       os.environ.encodevalue, os.environ.decodevalue)
for module in pkgutil.walk_packages(vir.__path__, "vir."):
    if module.name.endswith("__main__") or module.name.startswith("vir.store.migrations"):
        continue
    importlib.import_module(module.name)
os.environ["VIR_PROBE"] = "1"
assert "VIR_PROBE" in os.environ and "VIR_PROBE" not in read  # the test's own reads
print(sorted(k for k in read if k.startswith("VIR_")))
"""
    env = os.environ | {"VIR_CLIENT_CA": "probe", "VIR_PORT": "1"}
    done = subprocess.run(
        [sys.executable, "-c", program], env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]", done.stdout


def test_a_command_with_another_pythonpath_imports_that_code(tmp_path: Path) -> None:
    """The bench runs another checkout's vir with ``PYTHONPATH`` (harness.design_env);
    the fork server's preloaded vir would answer instead, so such a command is executed
    afresh, for ``run`` and ``popen`` alike."""
    other = tmp_path / "vir"
    other.mkdir()
    (other / "__init__.py").write_text("")
    (other / "cli.py").write_text("print('the other checkout')\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("VIR_")}
    env["PYTHONPATH"] = str(tmp_path)
    args = [sys.executable, "-m", "vir.cli", "--help"]
    elsewhere = tmp_path / "elsewhere"  # python -m looks in the working directory first
    elsewhere.mkdir()
    assert launch.run(args, cwd=elsewhere, env=env).stdout == "the other checkout\n"
    process = launch.popen(args, cwd=elsewhere, env=env, stdout=subprocess.PIPE)
    out, _ = process.communicate(timeout=60)
    assert out == b"the other checkout\n"
