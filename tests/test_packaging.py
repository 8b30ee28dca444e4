"""The package as Python users install it: a wheel that carries the rules and the synthetic patients and
serves them from any folder, a lock that pins what CI and the image install, a second start that needs no
network, and a chart that is an optional extra."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import textwrap
import tomllib
import urllib.request
from collections.abc import Iterator
from importlib.metadata import version
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from support.fhir_server import free_port
from support.hooks import HOOKS_DIR, ROOT, rule_ids
from support.waiting import wait_for

PYTHON = Path(sys.executable)
DEV_SITE_PACKAGES = next(p for p in sys.path if p.endswith("site-packages") and p.startswith(sys.prefix))


def clean_env(**extra: str) -> dict[str, str]:
    """The environment without any of the service's settings, so defaults are what is tested."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CDS_") and k != "PYTHONPATH"}
    return {**env, **extra}


def get_json(url: str) -> object:
    with urllib.request.urlopen(url, timeout=5) as response:
        return json.load(response)


def answers(url: str, process: subprocess.Popen[str]) -> bool:
    assert process.poll() is None, "the service exited"
    urllib.request.urlopen(url, timeout=1).close()
    return True


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A fresh venv holding only the wheel built from this checkout; its dependencies (the very versions of
    the lock, installed in the development venv) are on its path, so the test needs no network."""
    work = tmp_path_factory.mktemp("wheel")
    build = subprocess.run(
        [PYTHON, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", work, ROOT],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert build.returncode == 0, build.stderr
    (wheel,) = work.glob("cds_service-*.whl")
    venv = work / "venv"
    subprocess.run([PYTHON, "-m", "venv", venv], check=True, timeout=120)
    site = next((venv / "lib").glob("python3.*/site-packages"))
    (site / "dependencies.pth").write_text(DEV_SITE_PACKAGES + "\n")
    subprocess.run(
        [venv / "bin/python", "-m", "pip", "install", "-q", "--no-deps", "--no-index", wheel],
        check=True,
        timeout=120,
    )
    outside = work / "elsewhere"
    outside.mkdir()
    yield outside
    shutil.rmtree(work, ignore_errors=True)


def run_installed(outside: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [outside.parent / "venv/bin/cds-service", *args],
        cwd=outside,
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_wheel_finds_its_bundled_rules_and_patients_inside_the_installed_package(installed: Path) -> None:
    probe = textwrap.dedent(
        """
        import json, cds_service
        from cds_service.config import Settings
        from cds_service.cli.cases import load_cases
        print(json.dumps({"package": cds_service.__file__, "rules": str(Settings().plandefinitions_dir),
                          "cases": len(load_cases())}))
        """
    )
    result = subprocess.run(
        [installed.parent / "venv/bin/python", "-c", probe],
        cwd=installed,
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    found = json.loads(result.stdout)
    venv = str(installed.parent / "venv")
    assert found["package"].startswith(venv) and found["rules"].startswith(venv)
    assert not found["rules"].startswith(str(ROOT))
    assert found["cases"] == len(list((ROOT / "fixtures/patients").glob("*.json")))


def test_the_wheel_carries_the_capture_app_and_the_libraries_it_was_built_with(installed: Path) -> None:
    source = ROOT / "cds_service/web/capture_app"
    (package,) = (installed.parent / "venv/lib").glob("python3*/site-packages/cds_service/web/capture_app")
    ours = sorted(p.name for p in source.iterdir() if p.suffix in {".html", ".js", ".css"})
    assert ours and sorted(p.name for p in package.iterdir() if p.is_file()) == ours

    def vendor(root: Path) -> list[str]:
        return sorted(p.relative_to(root).as_posix() for p in (root / "vendor").rglob("*") if p.is_file())

    assert "vendor/lforms/main.js" in vendor(source) and vendor(package) == vendor(source)


def test_the_installed_command_validates_and_evaluates_from_another_folder(installed: Path) -> None:
    validated = run_installed(installed, "validate")
    assert validated.returncode == 0, validated.stderr
    assert "7 plan definitions" in validated.stdout
    evaluated = run_installed(
        installed, "evaluate", str(HOOKS_DIR / "order-sign.json"), "--now", "2026-11-01"
    )
    assert evaluated.returncode == 0, evaluated.stderr
    assert rule_ids(json.loads(evaluated.stdout)) == [("REV-NOT-MET", "warning")]


def test_the_installed_service_serves_the_bundled_rules(installed: Path) -> None:
    port = free_port()
    process = subprocess.Popen(
        [installed.parent / "venv/bin/cds-service", "serve", "--dev", "--port", str(port)],
        cwd=installed,
        env=clean_env(CDS_LOG_FORMAT="text"),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        wait_for(lambda: answers(f"{base}/healthz", process), timeout=60, ignoring=(OSError,))
        discovery = get_json(f"{base}/cds-services")
        assert isinstance(discovery, dict)
        assert [s["hook"] for s in discovery["services"]] == ["patient-view", "order-select", "order-sign"]
        request = urllib.request.Request(
            f"{base}/cds-services/postfusion-pain-order-sign",
            data=(HOOKS_DIR / "order-sign.json").read_bytes(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            cards = json.load(response)["cards"]
        assert {card["source"]["topic"]["code"] for card in cards} >= {"REV-NOT-MET"}
    finally:
        process.send_signal(signal.SIGTERM)
        process.communicate(timeout=30)
    assert (installed / "data" / "feedback.sqlite3").is_file()  # the store is made where it was started


@pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("unshare") is None, reason="cutting the network needs root and unshare"
)
def test_a_second_start_works_with_the_network_cut_off(tmp_path: Path) -> None:
    """In a network namespace with only loopback, `scripts/serve.sh` starts (it installs nothing: .venv is
    complete) and answers; the test suite itself was started by the same bootstrap, so .venv is current."""
    port = free_port()
    script = textwrap.dedent(
        f"""
        set -e
        ip link set lo up
        ! {PYTHON} -c 'import socket; socket.create_connection(("pypi.org", 443), timeout=2)' 2>/dev/null
        ./scripts/serve.sh --dev --port {port} &
        {PYTHON} - <<'EOF'
        import sys, time, urllib.request
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                urllib.request.urlopen("http://127.0.0.1:{port}/readyz", timeout=1)
                sys.exit(0)
            except OSError:
                time.sleep(0.05)
        sys.exit("not serving")
        EOF
        kill %1
        wait
        """
    )
    env = clean_env(CDS_DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path / 'cds.sqlite3'}", CDS_RELOAD="false")
    result = subprocess.run(
        ["unshare", "--net", "bash", "-c", script],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode in (0, 143), result.stdout + result.stderr  # 143: serve stopped by the kill
    assert "bootstrap: installing" not in result.stderr


def _pins(path: Path) -> dict[str, str]:
    """name -> version of every `name==version` line of a lock file that applies to this interpreter (a
    universal lock may pin another version for other Pythons or platforms)."""
    pins = {}
    for line in path.read_text().splitlines():
        if "==" in line and not line.startswith((" ", "#")):
            requirement = Requirement(line.rstrip(" \\"))
            if requirement.marker is None or requirement.marker.evaluate():
                (specifier,) = requirement.specifier
                pins[canonicalize_name(requirement.name)] = specifier.version
    return pins


def _declared(extras: list[str]) -> set[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    lines = project["dependencies"] + [d for extra in extras for d in project["optional-dependencies"][extra]]
    return {canonicalize_name(Requirement(line).name) for line in lines}


def test_the_locks_pin_every_declared_dependency_at_one_version() -> None:
    service = _pins(ROOT / "requirements/service.txt")
    dev = _pins(ROOT / "requirements/dev.txt")
    assert _declared([]) <= set(service)
    assert _declared(["test", "report"]) | {"setuptools"} <= set(dev)
    assert "matplotlib" not in service  # the chart is an extra; the image does not carry it
    assert {name: dev[name] for name in service} == service
    for lock in ("service.txt", "dev.txt"):
        text = (ROOT / "requirements" / lock).read_text()
        pinned = re.findall(r"^\S+==", text, re.M)
        hashed = re.findall(r"^\S+==[^\n]*\\\n\s+--hash=sha256:[0-9a-f]{64}", text, re.M)
        assert len(hashed) == len(pinned), lock


def test_the_development_venv_runs_exactly_the_locked_versions() -> None:
    for name, pinned in _pins(ROOT / "requirements/dev.txt").items():
        assert version(name) == pinned, name


NO_MATPLOTLIB = """
import importlib.abc, sys
class Absent(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("matplotlib", "numpy"):
            raise ModuleNotFoundError(f"No module named {name!r}")
sys.meta_path.insert(0, Absent())
"""


@pytest.mark.parametrize(
    ("args", "status", "message"),
    [
        (["--chart", "out.svg"], 1, "error: the chart needs matplotlib: pip install 'cds-service[report]'"),
        ([], 0, "no chart: the chart needs matplotlib: pip install 'cds-service[report]' (or --no-chart)"),
        (["--no-chart"], 0, ""),
    ],
)
def test_without_the_report_extra_the_service_runs_and_the_chart_says_how_to_get_it(
    tmp_path: Path, args: list[str], status: int, message: str
) -> None:
    database = f"sqlite+aiosqlite:///{tmp_path / 'cds.sqlite3'}"
    program = NO_MATPLOTLIB + textwrap.dedent(
        f"""
        from starlette.testclient import TestClient
        from cds_service.cli import main
        from cds_service.config import Settings
        from cds_service.web.app import create_app
        with TestClient(create_app(Settings(auth="off", reload=False))) as client:
            assert client.get("/cds-services").status_code == 200
        assert "matplotlib" not in sys.modules
        sys.exit(main(["feedback-report", *{args!r}]))
        """
    )
    result = subprocess.run(
        [PYTHON, "-c", program],
        cwd=tmp_path,
        env=clean_env(CDS_DATABASE_URL=database),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == status, result.stderr
    assert "Feedback by rule" in result.stdout
    assert message in result.stderr
    assert not (tmp_path / "out.svg").exists()
