"""The container image, built for real with podman, and the service started from inside it.

No Docker engine runs on these machines, so the image is built by podman (vfs storage, chroot
isolation) on a Debian bookworm base made here with debootstrap, with the host's pip settings
passed in (its wheel folder holds the CPU torch). Nor can podman run a container here, so the image
is mounted and its own entrypoint, user and environment are started with chroot in a private mount
namespace, the empty /data volume bound to a fresh folder. About 10 minutes: `make test-docker`
runs it; `make test` does not.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from citeqa.bench.serving import free_port
from tests.index.test_formats import pages_of
from tests.support import ROOT
from tests.support.realfiles import bash_manuals, docx_files

pytestmark = [pytest.mark.slow, pytest.mark.docker]

PODMAN = ["podman", "--storage-driver", "vfs", "--cgroup-manager", "cgroupfs"]
BASE = "localhost/citeqa-base:bookworm"
IMAGE = "localhost/citeqa:test"
MIRROR = "http://deb.debian.org/debian"


def run(cmd: list[str], timeout: float = 600, **kw) -> subprocess.CompletedProcess:
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, **kw)
    assert done.returncode == 0, f"{shlex.join(cmd)} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done


@pytest.fixture(scope="module")
def base_image(tmp_path_factory) -> str:
    """Debian bookworm with python3 (3.11, as python:3.11-slim), made once and kept in podman's store."""
    if subprocess.run([*PODMAN, "image", "exists", BASE]).returncode == 0:
        return BASE
    root = tmp_path_factory.mktemp("base") / "root"
    run(["debootstrap", "--variant=minbase", "--include=python3,python3-venv,ca-certificates",
         "bookworm", str(root), MIRROR], timeout=1800)
    tar = subprocess.Popen(["tar", "-C", str(root), "-c", "."], stdout=subprocess.PIPE)
    run([*PODMAN, "import", "-", BASE], stdin=tar.stdout)
    assert tar.wait() == 0
    return BASE


def pip_settings() -> list[str]:
    """--volume arguments lending the build the host's pip settings: its config files, the CA bundle
    they name, and the local folders they point pip at (the CPU torch wheel is in one)."""
    files = {"/etc/pip.conf": "/etc/pip.conf",
             str(Path.home() / ".config/pip/pip.conf"): "/etc/xdg/pip/pip.conf",
             "/etc/ssl/certs/ca-certificates.crt": "/etc/ssl/certs/ca-certificates.crt"}
    listed = run([sys.executable, "-m", "pip", "config", "list"]).stdout
    folders = {p.removeprefix("file://").removesuffix("/simple").rstrip("/")
               for p in re.findall(r"(?:file://)?(/[^\s'\"]+)", listed) if "/opt/" in p}
    volumes = [f"{src}:{dst}:ro" for src, dst in files.items() if Path(src).exists()]
    volumes += [f"{folder}:{folder}:ro" for folder in sorted(folders) if Path(folder).is_dir()]
    return [arg for v in volumes for arg in ("--volume", v)]


@pytest.fixture(scope="module")
def image(base_image) -> dict:
    """The image, built without a layer cache (vfs keeps a full copy of the tree per cached layer:
    about 2 GB each) and removed afterwards with its build stage; the base image is kept."""
    began = time.time()
    try:
        run([*PODMAN, "build", "--isolation", "chroot", "--layers=false",
             "--format", "docker",  # the OCI format has no HEALTHCHECK
             "--build-arg", f"BASE_IMAGE={base_image}", "--build-arg", "TORCH_INDEX_URL=",
             *pip_settings(), "--tag", IMAGE, str(ROOT)], timeout=3600)
        inspected = json.loads(run([*PODMAN, "image", "inspect", IMAGE]).stdout)[0]
        print(f"\nbuilt {IMAGE} in {time.time() - began:.0f} s: {inspected['Size'] / 1e9:.2f} GB")
        yield inspected
    finally:
        subprocess.run([*PODMAN, "rmi", "--force", IMAGE], capture_output=True)
        subprocess.run([*PODMAN, "image", "prune", "--force"], capture_output=True)


def test_the_image_runs_unprivileged_with_a_data_volume_a_port_and_a_healthcheck(image):
    config = image["Config"]
    assert config["User"] not in ("", "root", "0")
    assert "8000/tcp" in config["ExposedPorts"] and "/data" in config["Volumes"]
    assert "/healthz" in " ".join(healthcheck(image)["Test"])
    env = dict(e.split("=", 1) for e in config["Env"])
    assert env["CITEQA_DATA_DIR"] == "/data" and env["CITEQA_HOST"] == "0.0.0.0"
    assert env["HF_HUB_OFFLINE"] == "1"


def healthcheck(image: dict) -> dict:
    return image.get("Healthcheck") or image["Config"]["Healthcheck"]  # where podman puts it, or docker


@pytest.fixture
def mounted(image):
    root = run([*PODMAN, "image", "mount", IMAGE]).stdout.strip()
    yield Path(root)
    subprocess.run([*PODMAN, "image", "umount", IMAGE], capture_output=True)


def user_ids(root: Path, user: str) -> tuple[int, int]:
    for line in (root / "etc/passwd").read_text().splitlines():
        name, _, uid, gid, *_ = line.split(":")
        if name == user or uid == user:
            return int(uid), int(gid)
    raise AssertionError(f"user {user} is not in the image")


def test_the_service_in_the_image_seeds_its_empty_volume_and_answers(image, mounted, tmp_path):
    config = image["Config"]
    uid, gid = user_ids(mounted, config["User"])
    volume = tmp_path / "volume"
    volume.mkdir()
    os.chown(volume, uid, gid)
    port = free_port()
    env = [*config["Env"], f"CITEQA_PORT={port}"]  # the image's own settings; only the port moved
    command = shlex.join(["chroot", f"--userspec={uid}:{gid}", str(mounted), "/usr/bin/env", "-i",
                          "-C", config["WorkingDir"], *env, *config["Entrypoint"], *config["Cmd"]])
    script = f"""set -e
mount --make-rprivate /
mount -t proc proc {mounted}/proc
mount --bind /dev {mounted}/dev
mount --bind {volume} {mounted}/data
exec {command}
"""
    log = (tmp_path / "server.log").open("wb")
    server = subprocess.Popen(["unshare", "--mount", "--fork", "sh", "-c", script], stdout=log,
                              stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        healthy = ready = None
        began = time.time()
        deadline = began + 300
        while ready is None and time.time() < deadline:
            assert server.poll() is None, (tmp_path / "server.log").read_text()[-3000:]
            try:
                if healthy is None and httpx.get(f"{url}/healthz").status_code == 200:
                    healthy = time.time()
                if httpx.get(f"{url}/readyz").status_code == 200:
                    ready = time.time()
            except httpx.TransportError:
                pass
            time.sleep(0.5)
        assert ready, f"not ready in 300 s:\n{(tmp_path / 'server.log').read_text()[-3000:]}"
        print(f"\n/healthz answered {healthy - began:.0f} s after start, /readyz {ready - began:.0f} s")

        question = {"question": "Why does Moscow want Pokrovsk?"}
        body = httpx.post(f"{url}/v1/ask", json=question, timeout=60).json()
        assert body["citations"] and not body["abstained"]
        for c in body["citations"]:
            text = httpx.get(f"{url}/v1/documents/{c['doc_id']}").json()["text"]
            assert text[c["start"]:c["end"]] == c["quote"]
        # PDF and Word files are read inside the image too: a real PDF's citation names its page, and
        # the original opens in the vendored viewer.
        pdf = pages_of((bash_manuals() / "bashref.pdf").read_bytes(), list(range(10, 16)))
        added = httpx.post(f"{url}/v1/documents", files={"file": ("shell.pdf", pdf, "application/pdf")},
                           timeout=120)
        assert added.status_code == 201, added.text
        word = (docx_files() / "par-known-styles.docx").read_bytes()
        added = httpx.post(f"{url}/v1/documents", files={"file": ("styles.docx", word)}, timeout=120)
        assert added.status_code == 201 and added.json()["chunks"] >= 1, added.text
        body = httpx.post(f"{url}/v1/ask", json={"question": "What is a pipeline?"}, timeout=60).json()
        pages = [c["page"] for c in body["citations"] if c["doc_id"] == "shell"]
        assert pages and all(isinstance(n, int) and n >= 1 for n in pages), body["citations"]
        assert httpx.get(f"{url}/v1/documents/shell/original").content == pdf
        assert "pdf.js" in httpx.get(f"{url}/pdf.html").text
        assert httpx.get(f"{url}/static/vendor/pdfjs/pdf.min.mjs").status_code == 200
        # The index was built from the bundled seeds into the volume, by the unprivileged user.
        db = volume / "citeqa.sqlite3"
        assert db.exists() and db.stat().st_uid == uid
        # The image's HEALTHCHECK command passes, run as the image runs it.
        probe = healthcheck(image)["Test"][1:]
        assert subprocess.run(["chroot", f"--userspec={uid}:{gid}", str(mounted), "/usr/bin/env", "-i",
                               *env, *probe], timeout=30).returncode == 0
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
        log.close()
