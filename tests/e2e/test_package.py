"""The package as the Dockerfile, compose and the Kubernetes manifests install it: a wheel (not an
editable install) built from what the Dockerfile's build stage copies, installed into a fresh
virtualenv, run from outside the source tree. Every file the code reads at run time must be in
it."""
from __future__ import annotations

import os
import shutil
import site
import subprocess
import sys
import zipfile
from datetime import datetime, timedelta, timezone
from pathlib import Path

import orjson
import pytest

from streams import simulate

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("streams", "schemas", "sinks")
START = datetime(2026, 11, 2, 7, 0, tzinfo=timezone.utc)

pytestmark = pytest.mark.e2e  # builds a wheel (pip fetches the build backend) and runs chDB


def _docker_build_context(dest: Path) -> None:
    """Copy what the Dockerfile's build stage COPYs, so the wheel built here is the image's."""
    stage = ROOT.joinpath("Dockerfile").read_text().split("\nFROM ")[1]
    for line in stage.splitlines():
        words = line.split()
        if words[:1] != ["COPY"] or any(w.startswith("--") for w in words):
            continue
        *sources, target = words[1:]
        for source in sources:
            to = dest / target / source if target.endswith("/") else dest / target
            if (ROOT / source).is_dir():
                shutil.copytree(ROOT / source, to,
                                ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
            else:
                to.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(ROOT / source, to)


def _run(argv: list, cwd: Path, env: dict, timeout: float = 180) -> subprocess.CompletedProcess:
    done = subprocess.run([str(a) for a in argv], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=timeout)
    assert done.returncode == 0, f"{argv}\n{done.stdout}\n{done.stderr}"
    return done


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """(venv, wheel, env): the wheel installed alone in a fresh venv. Its dependencies come from
    this interpreter's site-packages through a plain path line in a .pth file, which Python adds to
    sys.path without running that folder's own .pth files, so the editable install's finder stays
    out and `streams` can only come from the wheel."""
    work = tmp_path_factory.mktemp("package")
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("PARCOURS_") and k != "PYTHONPATH"}
    context = work / "context"
    _docker_build_context(context)
    _run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--wheel-dir",
          work / "wheels", context], cwd=work, env=env)
    wheel, = (work / "wheels").glob("parcours-*.whl")
    venv = work / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", venv], cwd=work, env=env)
    python = venv / "bin" / "python"
    _run([sys.executable, "-m", "pip", "--python", python, "install", "--quiet", "--no-deps",
          "--no-index", wheel], cwd=work, env=env)
    purelib = Path(_run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                        cwd=work, env=env).stdout.strip())
    purelib.joinpath("parcours-test-dependencies.pth").write_text(
        "".join(f"{p}\n" for p in site.getsitepackages()))
    return venv, wheel, {**env, "PARCOURS_DATA_DIR": str(work / "data")}


def test_the_wheel_holds_every_file_of_the_packages(installed):
    _, wheel, _ = installed
    names = set(zipfile.ZipFile(wheel).namelist())
    shipped = {p.relative_to(ROOT).as_posix()
               for package in PACKAGES for p in (ROOT / package).rglob("*")
               if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc"}
    assert "streams/moments/pack/default.yaml" in shipped and "schemas/touchpoint.avsc" in shipped
    assert shipped <= names, sorted(shipped - names)


def test_the_installed_package_checks_its_rules_and_replays_martin(installed, tmp_path):
    venv, _, env = installed
    python, parcours = venv / "bin" / "python", venv / "bin" / "parcours"
    where = _run([python, "-c", "import streams, schemas, sinks; "
                                "from streams.moments.rules.loader import DEFAULT_PACK; "
                                "print(streams.__file__); print(DEFAULT_PACK)"],
                 cwd=tmp_path, env=env).stdout.split()
    assert all(Path(p).is_relative_to(venv) for p in where), where
    checked = _run([parcours, "rules", "check", where[1]], cwd=tmp_path, env=env)
    assert "rules OK" in checked.stdout and "near_store_offer" in checked.stdout

    events = simulate.martin_journey(START)
    bought = datetime.fromisoformat(events[-1]["event_time"])
    # a later event moves the watermark past the purchase (minus the lateness), so it is credited
    events.append({"event_id": "later-01", "event_time": (bought + timedelta(hours=1)).isoformat(),
                   "type": "page_view", "channel": "web", "ids": {"cookie": "c-later"}})
    journeys = tmp_path / "martin.jsonl"
    simulate.write_jsonl(events, journeys)
    out = tmp_path / "out"
    replayed = _run([parcours, "replay", journeys, "--out", out, "--clickhouse",
                     f"chdb://{tmp_path / 'ch'}"], cwd=tmp_path, env=env)
    assert f"{len(events)} accepted, 0 dead-lettered" in replayed.stdout, replayed.stdout

    def rows(name: str) -> list[dict]:
        return [orjson.loads(line) for line in (out / f"{name}.jsonl").read_bytes().splitlines()]

    offers = [t for t in rows("triggers") if t["rule"] == "near_store_offer"]
    assert [(t["channel"], t["code"], t["event_id"]) for t in offers] == [("push", "XPGJRL",
                                                                            "martin-08")]
    credits = [r for r in rows("attribution_credit") if r["conversion_id"] == "martin-11"]
    per_model: dict[str, float] = {}
    for row in credits:
        per_model[row["model"]] = per_model.get(row["model"], 0.0) + row["credit"]
    assert per_model and all(total == pytest.approx(1.0) for total in per_model.values()), per_model
