"""The wheel works without the checkout: migrations, taxonomy and sample network ship inside it.

Issue 12: ``migrate`` and ``taxonomy`` once found their files from the checkout root, so an
installed wheel could neither migrate nor load the taxonomy. Here the wheel is built with
``uv build``, installed with its locked dependencies (``uv export`` of uv.lock; uv's cache makes
this a second or two, and nothing is fetched but from the configured package index) into a fresh
virtual environment in a temporary directory, and its own ``referral-net`` runs ``db upgrade``,
``areas load``, ``seed load`` and ``serve`` from a temporary working directory, on both backends.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

import httpx2 as httpx
import pytest

from tests.conftest import make_backend_settings, unavailable
from tests.served import served

pytestmark = pytest.mark.db

ROOT = Path(__file__).resolve().parents[1]
# Environment variables that could make the installed command import the checkout's code, or
# point it at another database, instead of what the test gives it.
_LEAKY_ENV = ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "PYTHONSTARTUP")


def _uv() -> Path | None:
    """The uv binary: the one uv runs us with, the one scripts/lib.sh installs, or the PATH's."""
    for candidate in (os.environ.get("UV"), ROOT / ".venv-tools/bin/uv", shutil.which("uv")):
        if candidate and Path(candidate).is_file():
            return Path(candidate)
    return None


def _clean_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """This process's environment without what would leak the checkout or another database."""
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in _LEAKY_ENV and not key.startswith("REFERRAL_NET_")
    }
    return {**env, **(extra or {})}


def _run(command: list[str], *, cwd: Path, env: Mapping[str, str], timeout: float = 600) -> str:
    """Run a command; on failure show its output in the assertion."""
    done = subprocess.run(
        command,
        cwd=cwd,
        env=dict(env),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert done.returncode == 0, f"{command} exited {done.returncode}:\n{done.stdout}{done.stderr}"
    return done.stdout


@pytest.fixture(scope="module")
def installed(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The ``bin`` folder of a fresh virtual environment holding the freshly built wheel."""
    uv = _uv()
    if uv is None:
        unavailable(request, "uv (to build and install the wheel)", FileNotFoundError("uv"))
        raise AssertionError("unreachable")
    base = tmp_path_factory.mktemp("wheel")
    env = _clean_env({"UV_PYTHON_DOWNLOADS": "never", "UV_NO_PROGRESS": "1"})

    def uv_run(*args: str, cwd: Path = base) -> None:
        _run([str(uv), *args, "--quiet"], cwd=cwd, env=env)

    dist, requirements, venv = base / "dist", base / "requirements.txt", base / "venv"
    uv_run("build", "--wheel", "--python", sys.executable, "--out-dir", str(dist), cwd=ROOT)
    (wheel,) = dist.glob("referral_net-*.whl")
    uv_run(
        *("export", "--frozen", "--no-dev", "--no-emit-project", "--no-hashes"),
        *("--output-file", str(requirements)),
        cwd=ROOT,
    )
    uv_run("venv", "--python", sys.executable, str(venv))
    python = str(venv / "bin/python")
    uv_run("pip", "install", "--python", python, "--requirement", str(requirements), str(wheel))
    return venv / "bin"


@pytest.fixture(params=["spatialite", "postgis"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh, empty database of each backend (a SpatiaLite file in the test's temp dir)."""
    backend = str(request.param)
    try:
        return make_backend_settings(backend, tmp_path, suffix="_wheel").database_url
    except Exception as exc:
        unavailable(request, backend, exc)
        raise


def test_the_installed_wheel_migrates_loads_and_serves(
    installed: Path, database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    workdir = tmp_path / "elsewhere"
    workdir.mkdir()
    env = _clean_env({"REFERRAL_NET_DATABASE_URL": database_url})
    cli = str(installed / "referral-net")

    # The package and its resources come from the new environment, not from the checkout.
    where = _run(
        [str(installed / "python"), "-c", _WHERE],
        cwd=workdir,
        env=env,
    ).split()
    site_packages = installed.parent / "lib"
    for path in where:
        assert Path(path).is_relative_to(site_packages), where
        assert not Path(path).is_relative_to(ROOT), where

    assert "database at head" in _run([cli, "db", "upgrade"], cwd=workdir, env=env)
    assert "22 departments and 340 municipalities" in _run(
        [cli, "areas", "load"], cwd=workdir, env=env
    )
    assert "37 organizations" in _run([cli, "seed", "load"], cwd=workdir, env=env)

    for key in _LEAKY_ENV:
        monkeypatch.delenv(key, raising=False)
    with served(
        database_url, workers=1, log=tmp_path / "server.log", cli=Path(cli), cwd=workdir
    ) as base:
        ready = httpx.get(f"{base}/ready", timeout=30)
        assert ready.status_code == 200, ready.text
        # The sample network, its taxonomy and the areas are there: a search near Quetzaltenango
        # in a seeded category finds services.
        found = httpx.get(
            f"{base}/api/v1/search",
            params={"near": "14.8347,-91.5181", "category": "protection", "limit": 1},
            timeout=60,
        )
        assert found.status_code == 200, found.text
        assert found.json()["total_items"] > 0


# Printed by the installed interpreter: where the package and its migrations and seeds are.
_WHERE = """
from referral_net import resources
import referral_net
print(referral_net.__file__)
for relative in ("migrations", "seed/taxonomy.json", "seed/sample_network.json"):
    print(resources.resource_path(relative))
"""
