"""Docker-specific behaviour: container hardening flags, transports, lifecycle, sweeping."""

from __future__ import annotations

import json
import os
import subprocess

import pytest

from tests.sandbox.conftest import IMAGE
from toolgym.sandbox import Backend
from toolgym.sandbox.docker import DockerBackend, sweep_containers

pytestmark = pytest.mark.docker


def inspect(name: str) -> dict:
    out = subprocess.run(["docker", "inspect", name], capture_output=True, text=True, check=True)
    return json.loads(out.stdout)[0]


def test_containers_are_locked_down(docker_backend: Backend) -> None:
    with docker_backend.acquire() as sandbox:
        info = inspect(sandbox._conn.name)
    host = info["HostConfig"]
    assert host["NetworkMode"] == "none"
    assert host["ReadonlyRootfs"] is True
    assert host["CapDrop"] == ["ALL"]
    assert "no-new-privileges" in host["SecurityOpt"]
    assert host["Memory"] == 512 * 1024**2 and host["MemorySwap"] == host["Memory"]
    assert host["PidsLimit"] == 128
    assert host["NanoCpus"] == 10**9
    assert info["Config"]["User"] == "65534:65534"
    assert info["Config"]["Labels"]["toolgym.sandbox"] == "1"
    # The rest of the documented `docker run` flags, as the Engine API client sets them.
    assert host["Privileged"] is False and host["AutoRemove"] is True
    assert host["LogConfig"]["Type"] == "none"
    assert host["Ulimits"] == [{"Name": "core", "Hard": 0, "Soft": 0}]
    assert host["Tmpfs"] == {"/tmp": "rw,nosuid,nodev,size=64m,mode=1777"}
    assert host["Binds"] and all(bind.endswith(":ro") for bind in host["Binds"])
    assert info["Config"]["WorkingDir"] == "/tmp"


def test_code_runs_unprivileged_without_capabilities(docker_backend: Backend) -> None:
    code = "import os\nstatus = open('/proc/self/status').read()\nprint(os.getuid(), status.split('CapEff:')[1].split()[0])"
    assert docker_backend.run(code).stdout == "65534 0000000000000000\n"


def test_root_filesystem_is_read_only(docker_backend: Backend) -> None:
    result = docker_backend.run("open('/opt/x', 'w')")
    assert "Read-only file system" in result.stderr


def test_stdio_transport_works_too() -> None:
    with DockerBackend(image=IMAGE, pool_size=1, transport="stdio") as backend:
        assert backend.run("print(6 * 7)").stdout == "42\n"
        with backend.acquire() as sandbox:
            sandbox.run("open('f', 'w').write('kept')")
            assert sandbox.run("print(open('f').read())").stdout == "kept\n"


def test_container_removed_from_outside_is_replaced(docker_backend: Backend) -> None:
    with docker_backend.acquire() as sandbox:
        name = sandbox._conn.name
        subprocess.run(["docker", "rm", "-f", name], capture_output=True, check=True)
        result = sandbox.run("print('back')")
        assert result.stdout == "back\n", result
        assert sandbox._conn.name != name
    assert docker_backend.run("print('pool ok')").stdout == "pool ok\n"


def test_close_removes_the_containers_and_sweep_spares_live_owners() -> None:
    backend = DockerBackend(image=IMAGE, pool_size=2)
    names = [c.name for c in backend._pool._all]
    assert len(names) == 2
    assert not set(names) & set(sweep_containers())  # owner (this process) is alive
    backend.close()
    listed = subprocess.run(
        ["docker", "ps", "-a", "--format", "{{.Names}}"], capture_output=True, text=True, check=True
    ).stdout.split()
    assert not set(names) & set(listed)


SOCKET_DIR = """
import os, socket
print(sorted(os.listdir("/run/toolgym")))
for attempt in ("write", "connect"):
    try:
        if attempt == "write":
            open("/run/toolgym/x", "w").write("x" * 1024)
        else:
            socket.socket(socket.AF_UNIX).connect("/run/toolgym/host.sock")
        print(attempt, "OK")
    except OSError as exc:
        print(attempt, type(exc).__name__, exc.strerror)
"""


def test_the_socket_dir_is_read_only_empty_and_dead(docker_backend: Backend) -> None:
    # The worker connected to the host's socket at start; the host then removed it. The mount
    # is read-only: the code can neither store files there (on the host disk, outliving the
    # episode and the 64 MB /tmp limit) nor connect to the host.
    with docker_backend.acquire() as sandbox:
        result = sandbox.run(SOCKET_DIR)
        host_dir = os.path.join(docker_backend._staging, sandbox._conn.name)
        on_host = os.listdir(host_dir)
        mounts = sandbox.run("print([l for l in open('/proc/mounts') if ' /run/toolgym ' in l])")
    assert result.stdout.splitlines() == [
        "[]",
        "write OSError Read-only file system",
        "connect FileNotFoundError No such file or directory",
    ], result
    assert on_host == []
    assert " ro," in mounts.stdout, mounts.stdout


def test_the_image_was_built_from_this_checkout() -> None:
    # setup_docker.sh rebuilds an image whose recipe label differs (CI runs it first), so the
    # image under test always bakes in this worker, Dockerfile and build recipe.
    from toolgym.sandbox.image import image_recipe, recipe_hash

    assert image_recipe(IMAGE) == recipe_hash()
    # Its own worker (nothing mounted over it) runs and is hardened.
    with DockerBackend(image=IMAGE, pool_size=1, mount_worker=False, transport="stdio") as backend:
        with backend.acquire() as sandbox:
            assert sandbox.run("print(6 * 7)").stdout == "42\n"
            conn = sandbox._conn
            assert conn.hello["hardening"] == {"dumpable": 0, "seccomp": True}
            assert conn.worker_pid is not None and conn.interference() is None


def test_a_stale_image_is_refused_when_its_own_worker_would_run() -> None:
    from toolgym.sandbox import SandboxUnavailable
    from toolgym.sandbox.image import RECIPE_LABEL

    stale = f"toolgym-sandbox-stale-test:{os.getpid()}"
    dockerfile = f"FROM {IMAGE}\nLABEL {RECIPE_LABEL}=0000000000000000\n"
    subprocess.run(["docker", "build", "-q", "-t", stale, "-"], input=dockerfile, text=True, check=True,
                   capture_output=True)  # fmt: skip
    try:
        with pytest.raises(SandboxUnavailable, match="rebuild it with `toolgym sandbox build"):
            DockerBackend(image=stale, mount_worker=False, transport="stdio", prestart=False)
        # With the current worker mounted over the stale one the image still serves.
        with DockerBackend(image=stale, pool_size=1) as backend:
            assert backend.run("print(2 * 3)").stdout == "6\n"
    finally:
        subprocess.run(["docker", "rmi", "-f", stale], capture_output=True, check=False)


def test_code_v0_runs_on_a_stale_image_with_the_current_worker_mounted() -> None:
    # Code-v0 checks Docker at construction; a stale image must not stop it (its own worker is
    # not used), or every env would break whenever worker.py changes before a rebuild.
    import gymnasium as gym

    import toolgym  # noqa: F401 - registers the envs
    from toolgym.sandbox.image import RECIPE_LABEL

    stale = f"toolgym-sandbox-stale-env-test:{os.getpid()}"
    dockerfile = f"FROM {IMAGE}\nLABEL {RECIPE_LABEL}=0000000000000000\n"
    subprocess.run(["docker", "build", "-q", "-t", stale, "-"], input=dockerfile, text=True, check=True,
                   capture_output=True)  # fmt: skip
    try:
        env = gym.make("ToolGym/Code-v0", sandbox="docker", sandbox_options={"image": stale, "pool_size": 1})
        env.reset(seed=0)
        action = '<tool_call>{"name": "run_python", "arguments": {"code": "print(6 * 7)"}}</tool_call>'
        obs, *_, info = env.step(action)
        env.close()
        assert info["error"] is None and "42" in obs, obs
    finally:
        subprocess.run(["docker", "rmi", "-f", stale], capture_output=True, check=False)


# --- the Engine API client (toolgym.sandbox.engine) ------------------------------------------


def test_socket_transport_needs_no_docker_cli(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    """Checking, starting, inspecting and removing containers go through the SDK: a machine
    without the ``docker`` command (PATH holds no docker) still runs sandboxes."""
    from toolgym.sandbox.image import docker_cli

    with monkeypatch.context() as patch:
        patch.setenv("PATH", str(tmp_path))
        assert docker_cli() is None
        with DockerBackend(image=IMAGE, pool_size=1) as backend:
            with backend.acquire() as sandbox:
                name = sandbox._conn.name
                assert sandbox.run("print(6 * 7)").stdout == "42\n"
    assert name not in _container_names()  # removed on close, without the CLI


def test_stdio_transport_without_cli_is_refused_in_one_line(
    monkeypatch: pytest.MonkeyPatch, tmp_path
) -> None:
    from toolgym.sandbox import SandboxUnavailable

    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(SandboxUnavailable, match="docker command-line client is not installed"):
        DockerBackend(image=IMAGE, pool_size=1, transport="stdio", prestart=False)


def test_docker_host_is_honoured(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    from toolgym.sandbox import SandboxUnavailable, engine
    from toolgym.sandbox.image import daemon_reachable

    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no-daemon.sock")
    engine.reset()
    try:
        ok, detail = daemon_reachable()
        assert not ok, detail
        with pytest.raises(SandboxUnavailable, match="Docker is not available"):
            DockerBackend(image=IMAGE, pool_size=1)
    finally:
        monkeypatch.delenv("DOCKER_HOST")
        engine.reset()
    assert daemon_reachable()[0]


def test_one_client_per_process(monkeypatch: pytest.MonkeyPatch) -> None:
    from toolgym.sandbox import engine

    first = engine.api()
    assert engine.api() is first
    real_pid = os.getpid()
    monkeypatch.setattr(os, "getpid", lambda: real_pid + 1)  # as a forked child sees it
    child = engine.api()
    assert child is not first
    monkeypatch.setattr(os, "getpid", lambda: real_pid)
    engine.reset()  # forget the "child's" client; the next call makes a fresh one here


def test_daemon_refusals_are_typed_errors_quoting_the_daemon() -> None:
    from toolgym.sandbox import SandboxError, SandboxUnavailable, engine

    with pytest.raises(SandboxError, match="could not inspect container x: .*[Nn]o such container") as info:
        engine.call("inspect container x", "inspect_container", "toolgym-no-such-container")
    assert not isinstance(info.value, SandboxUnavailable)
    assert engine.is_not_found(info.value.__cause__)


def test_run_options_reach_the_container_and_extra_args_need_stdio(tmp_path) -> None:
    from toolgym.core.errors import ConfigError

    with pytest.raises(ConfigError, match="extra_args .* only with transport='stdio'"):
        DockerBackend(image=IMAGE, pool_size=1, extra_args=["--cpuset-cpus", "0"])
    with pytest.raises(ConfigError, match="run_options apply only with transport='socket'"):
        DockerBackend(image=IMAGE, pool_size=1, transport="stdio", run_options={"cpuset_cpus": "0"})
    data = tmp_path / "data"
    data.mkdir()
    (data / "x.txt").write_text("shared")
    data.chmod(0o755)
    (data / "x.txt").chmod(0o644)
    options = {"cpuset_cpus": "0", "pids_limit": 64, "binds": {str(data): {"bind": "/data", "mode": "ro"}}}
    with DockerBackend(image=IMAGE, pool_size=1, run_options=options) as backend:
        with backend.acquire() as sandbox:
            host = inspect(sandbox._conn.name)["HostConfig"]
            assert sandbox.run("print(open('/data/x.txt').read())").stdout == "shared\n"
            assert "Read-only file system" in sandbox.run("open('/data/y', 'w')").stderr
    assert host["CpusetCpus"] == "0" and host["PidsLimit"] == 64
    assert len(host["Binds"]) == 3  # the worker, the socket dir and the extra one
    assert host["NetworkMode"] == "none" and host["ReadonlyRootfs"] is True  # the rest unchanged


def _container_names() -> list[str]:
    return subprocess.run(
        ["docker", "ps", "-a", "--format", "{{.Names}}"], capture_output=True, text=True, check=True
    ).stdout.split()


def test_daemon_gone_while_starting_a_container_is_a_sandbox_error(monkeypatch: pytest.MonkeyPatch) -> None:
    """Mid-run, a vanished daemon is a worker that could not start (the pool's SandboxError),
    not a configuration error."""
    from toolgym.sandbox import SandboxError, SandboxUnavailable, engine

    backend = DockerBackend(image=IMAGE, pool_size=1, prestart=False)
    try:

        def gone(what: str, *args: object, **kwargs: object) -> None:
            raise SandboxUnavailable(f"Docker could not {what}: connection refused")

        monkeypatch.setattr(engine, "call", gone)
        with pytest.raises(SandboxError, match="could not create container .*connection refused") as info:
            backend._start_worker()
        assert not isinstance(info.value, SandboxUnavailable)
    finally:
        monkeypatch.undo()
        backend.close()
