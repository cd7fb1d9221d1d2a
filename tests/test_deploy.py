"""The Docker deployment as files: each container's health check fits what it runs, services
wait for what they need to be healthy, the image owns what it mounts, nginx finds replicas
again after they restart. `docker compose config` and `nginx -t` run where they are installed."""

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).parent.parent
NGINX = ROOT / "deploy" / "nginx"
# What `compose config` needs set; values only have to pass its checks.
COMPOSE_ENV = {
    "JWT_SECRET": "x" * 48,
    "ROOST_FIELD_ENCRYPTION_KEY": "k" * 43 + "=",
    "ROOST_TLS_CERT_DIR": "/etc/ssl/roost",
}


def compose(*files: str) -> dict:
    """The compose files merged as compose does it for the services: later files' mappings
    over earlier ones, volumes replaced by target."""
    merged: dict = {}
    for name in files:
        document = yaml.safe_load((ROOT / name).read_text())
        for service_name, service in document["services"].items():
            into = merged.setdefault(service_name, {})
            for key, value in service.items():
                if key == "volumes":
                    by_target = {v.split(":")[1]: v for v in into.get("volumes", [])}
                    by_target.update({v.split(":")[1]: v for v in value})
                    into["volumes"] = list(by_target.values())
                elif key == "ports":
                    into["ports"] = [*into.get("ports", []), *value]
                else:
                    into[key] = value
    return merged


@pytest.fixture(scope="module")
def services() -> dict:
    return compose("compose.yaml")


def test_containers_without_http_have_a_health_check_of_their_own(services: dict) -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert 'CMD ["python", "-m", "app.healthcheck", "http"]' in dockerfile  # the API's
    assert "healthcheck" not in services["api"]  # the image's: GET /healthz
    # Built from the same image, these serve no HTTP: the image's check would fail them.
    assert services["migrate"]["healthcheck"] == {"disable": True}
    worker = services["worker"]
    assert worker["healthcheck"]["test"] == ["CMD", "python", "-m", "app.healthcheck", "worker"]
    assert worker["environment"]["ROOST_WORKER_HEARTBEAT_FILE"].startswith("/tmp/")  # noqa: S108


def test_services_wait_for_what_they_need_to_be_healthy(services: dict) -> None:
    def waits_for(name: str) -> dict[str, str]:
        depends_on = services[name]["depends_on"]
        assert isinstance(depends_on, dict), f"{name}: a bare list waits only for a start"
        return {other: rule["condition"] for other, rule in depends_on.items()}

    assert waits_for("nginx") == {"api": "service_healthy"}
    for name in ("api", "worker"):
        assert waits_for(name) == {
            "migrate": "service_completed_successfully",
            "redis": "service_healthy",
        }
    assert waits_for("migrate") == {"postgres": "service_healthy"}
    for name in ("postgres", "redis"):
        assert services[name]["healthcheck"]["test"]


def test_the_image_creates_the_media_folder_for_its_user(services: dict) -> None:
    media = next(v for v in services["api"]["volumes"] if v.startswith("media:"))
    target = media.split(":")[1]
    dockerfile = (ROOT / "Dockerfile").read_text()
    creating = re.search(r"^RUN install -d -o roost -g roost (.+)$", dockerfile, re.M)
    assert creating and target in creating.group(1).split()
    # Created before the image drops root, which could not create it.
    assert dockerfile.index(creating.group(0)) < dockerfile.index("\nUSER roost")


def test_nginx_looks_the_replicas_up_again_at_run_time() -> None:
    shared = (NGINX / "roost.conf").read_text()
    assert re.search(r"^resolver 127\.0\.0\.11 valid=\d+s", shared, re.M)
    upstream = re.search(r"upstream roost_api \{(.*?)\}", shared, re.S).group(1)
    assert re.search(r"^\s*zone roost_api \d+k;", upstream, re.M)
    assert re.search(r"^\s*server api:8000 resolve;", upstream, re.M)


def test_every_mounted_file_exists_and_tls_replaces_the_plain_server() -> None:
    plain, tls = (
        compose("compose.yaml")["nginx"],
        compose("compose.yaml", "compose.tls.yaml")["nginx"],
    )
    for nginx in (plain, tls):
        for volume in nginx["volumes"]:
            source = volume.split(":")[0]
            if source.startswith("./"):
                assert (ROOT / source).is_file(), source
    default = "/etc/nginx/conf.d/default.conf"
    assert [v for v in plain["volumes"] if default in v] == [
        f"./deploy/nginx/http.conf:{default}:ro"
    ]
    assert [v for v in tls["volumes"] if default in v] == [
        f"./deploy/nginx/https.conf:{default}:ro"
    ]
    assert any(v.endswith(":/etc/nginx/certs:ro") for v in tls["volumes"])
    assert "443:443" in tls["ports"]
    https = (NGINX / "https.conf").read_text()
    assert "return 308 https://$host$request_uri;" in https
    assert "listen 443 ssl;" in https


def docker_compose() -> list[str] | None:
    docker = shutil.which("docker")
    if docker is None:
        return None
    probe = subprocess.run(  # noqa: S603
        [docker, "compose", "version"], capture_output=True, text=True, check=False
    )
    return [docker, "compose"] if probe.returncode == 0 else None


@pytest.mark.parametrize("files", [["compose.yaml"], ["compose.yaml", "compose.tls.yaml"]])
def test_docker_compose_accepts_the_files(files: list[str]) -> None:
    command = docker_compose()
    if command is None:
        pytest.skip("docker with the compose plugin is not installed")
    options = [arg for name in files for arg in ("-f", name)]
    result = subprocess.run(  # noqa: S603
        [*command, *options, "config", "--quiet"],
        cwd=ROOT,
        env={**os.environ, **COMPOSE_ENV},
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr


def nginx_version() -> tuple[int, ...] | None:
    nginx = shutil.which("nginx")
    if nginx is None:
        return None
    probe = subprocess.run([nginx, "-v"], capture_output=True, text=True, check=False)  # noqa: S603
    found = re.search(r"nginx/(\d+)\.(\d+)\.(\d+)", probe.stderr)
    return tuple(int(part) for part in found.groups()) if found else None


def self_signed_certificate(folder: Path) -> None:
    from datetime import UTC, datetime, timedelta

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.now(UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    folder.mkdir()
    (folder / "fullchain.pem").write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    (folder / "privkey.pem").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )


@pytest.mark.parametrize("server", ["http.conf", "https.conf"])
def test_nginx_accepts_the_configuration(server: str, tmp_path: Path) -> None:
    version = nginx_version()
    if version is None or version < (1, 27, 3):
        pytest.skip("nginx 1.27.3 or later (run-time `resolve` in upstreams) is not installed")
    # The image's layout: conf.d/ included in http{}, roost/proxy.conf, certs/.
    (tmp_path / "conf.d").mkdir()
    (tmp_path / "roost").mkdir()
    shutil.copy(NGINX / "roost.conf", tmp_path / "conf.d" / "roost.conf")
    shutil.copy(NGINX / server, tmp_path / "conf.d" / "default.conf")
    shutil.copy(NGINX / "proxy.conf", tmp_path / "roost" / "proxy.conf")
    self_signed_certificate(tmp_path / "certs")
    temp_paths = "".join(
        f"    {kind}_temp_path {tmp_path}/temp/{kind};\n"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    (tmp_path / "nginx.conf").write_text(
        f"pid {tmp_path}/nginx.pid;\nevents {{}}\n"
        f"http {{\n    access_log off;\n{temp_paths}    include conf.d/*.conf;\n}}\n"
    )
    result = subprocess.run(  # noqa: S603
        [
            shutil.which("nginx"),
            "-t",
            "-p",
            str(tmp_path),
            "-c",
            str(tmp_path / "nginx.conf"),
            "-e",
            "stderr",
        ],  # fmt: skip
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr


def test_gunicorn_runs_uvicorn_as_roost_serve_does() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert '"--worker-class", "app.gunicorn_worker.RoostWorker"' in dockerfile
    from app.gunicorn_worker import config_kwargs
    from app.processes import server_options
    from app.settings import get_settings

    options = config_kwargs()
    assert options["ws_max_size"] == get_settings().max_body_bytes
    assert server_options(options["ws_max_size"]).items() <= options.items()
