"""`fgnet weights`: download against a local HTTP server (127.0.0.1, self-stopping) serving seeded files in the
official formats (the `tiny` preset's sizes), an interrupted download resumed, a corrupt file refused by
verify, and the offline message."""
from __future__ import annotations

import hashlib
import io
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import torch

from fgnet_core.atomic import part_path
from fgnet_core.checkpoints import save_fgnet_model, save_psp_encoder, save_stylegan2
from fgnet_core.cli import main
from fgnet_core.models.fgnet import FGNet
from fgnet_core.weights import actions
from fgnet_core.weights.download import DownloadError, OfflineError, read_record
from fgnet_core.weights.registry import OFFICIAL_FILES, WeightFile, files_for
from fgnet_core.weights.verify import manifest_of, verify_file

SERVER_LIFETIME_S = 120  # the server stops itself after this, whatever the test does


class Mirror:
    """Serves {url path: bytes} on 127.0.0.1 with HTTP Range; `cut[path] = n` breaks the next response after n bytes."""

    def __init__(self, files: dict[str, bytes]):
        self.files, self.cut, self.ranges = dict(files), {}, []
        mirror = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                data = mirror.files.get(self.path)
                if data is None:
                    self.send_error(404)
                    return
                start = 0
                header = self.headers.get("Range")
                if header:
                    start = int(header.removeprefix("bytes=").split("-")[0])
                    mirror.ranges.append((self.path, start))
                    if start >= len(data):
                        self.send_error(416)
                        return
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
                else:
                    self.send_response(200)
                body = data[start:]
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                limit = mirror.cut.pop(self.path, None)
                self.wfile.write(body if limit is None else body[:limit])
                if limit is not None:
                    self.wfile.flush()
                    self.connection.shutdown(socket.SHUT_RDWR)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.timeout = 5
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.timer = threading.Timer(SERVER_LIFETIME_S, self.server.shutdown)
        self.timer.daemon = True

    def __enter__(self):
        self.thread.start()
        self.timer.start()
        return self

    def __exit__(self, *exc):
        self.timer.cancel()
        self.server.shutdown()
        self.server.server_close()


def _saved(save, *args) -> bytes:
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "f.pt"
        save(*args, path)
        return path.read_bytes()


@pytest.fixture(scope="module")
def seeded_files() -> dict[str, bytes]:
    """Relative path -> bytes of the four files, in the official formats at the tiny preset's sizes."""
    torch.manual_seed(0)
    net = FGNet("tiny")
    return {
        "checkpoints/stylegan2-ffhq-config-f.pt": _saved(lambda p: save_stylegan2(net.generator, p)),
        "checkpoints/encoder.pt": _saved(lambda p: save_psp_encoder(net.encoder, p, decoder=net.generator)),
        "checkpoints/bp4d_0/model.pth": _saved(lambda p: save_fgnet_model(net, p)),
        "checkpoints/disfa_0/model.pth": _saved(lambda p: save_fgnet_model(net, p)),
    }


def _registry(seeded: dict[str, bytes], url: str) -> tuple[WeightFile, ...]:
    """The official registry with the mirror's URLs and manifests of the tiny-sized files."""
    out = []
    for f in OFFICIAL_FILES:
        obj = torch.load(io.BytesIO(seeded[f.path]), weights_only=True)
        manifest = manifest_of(obj, required=f.manifest()["required"])
        if "opts_values" in f.manifest():
            manifest["opts_values"] = {}
        out.append(WeightFile(f.key, f.path, f.what, manifest, f.needed_by, f.optional_for, url=f"{url}/{f.path}",
                              page=f.page))
    return tuple(out)


def test_download_verify_end_to_end_with_an_interrupted_transfer(seeded_files, tmp_path):
    with Mirror({f"/{k}": v for k, v in seeded_files.items()}) as mirror:
        files = _registry(seeded_files, mirror.url)
        chosen = files_for("bp4d", tmp_path, files)
        assert [f.key for f, _ in chosen] == ["stylegan2", "encoder", "bp4d"]
        model = tmp_path / "checkpoints" / "bp4d_0" / "model.pth"
        half = len(seeded_files["checkpoints/bp4d_0/model.pth"]) // 2
        mirror.cut["/checkpoints/bp4d_0/model.pth"] = half
        with pytest.raises(DownloadError, match="interrupted.*rerun to resume"):
            actions.download(chosen, tmp_path, progress=False, log=lambda _: None)
        assert not model.exists() and part_path(model).stat().st_size == half  # kept, never at its place
        actions.download(chosen, tmp_path, progress=False, log=lambda _: None)  # resumes
        assert ("/checkpoints/bp4d_0/model.pth", half) in mirror.ranges
    assert model.read_bytes() == seeded_files["checkpoints/bp4d_0/model.pth"] and not part_path(model).exists()
    record = read_record(tmp_path)
    assert record["checkpoints/bp4d_0/model.pth"]["sha256"] == hashlib.sha256(model.read_bytes()).hexdigest()
    assert set(record) == {f.path for f, _ in chosen}
    assert actions.verify(chosen, tmp_path) == {f.path: [] for f, _ in chosen}


def test_verify_refuses_corrupt_and_wrong_files(seeded_files, tmp_path):
    with Mirror({f"/{k}": v for k, v in seeded_files.items()}) as mirror:
        files = _registry(seeded_files, mirror.url)
        chosen = files_for("disfa", tmp_path, files)
        actions.download(chosen, tmp_path, progress=False, log=lambda _: None)
    encoder = tmp_path / "checkpoints" / "encoder.pt"
    model = tmp_path / "checkpoints" / "disfa_0" / "model.pth"
    data = bytearray(model.read_bytes())
    data[len(data) // 2: len(data) // 2 + 64] = b"\x00" * 64  # silent corruption: same size
    model.write_bytes(bytes(data))
    encoder.write_bytes(seeded_files["checkpoints/stylegan2-ffhq-config-f.pt"])  # another format entirely
    results = actions.verify(chosen, tmp_path)
    assert any("SHA-256 differs" in p for p in results["checkpoints/disfa_0/model.pth"])
    assert any("missing entry 'state_dict'" in p for p in results["checkpoints/encoder.pt"])
    truncated = tmp_path / "cut.pth"
    truncated.write_bytes(seeded_files["checkpoints/disfa_0/model.pth"][:5000])
    assert "truncated or corrupt" in verify_file(truncated, files[3].manifest())[0]


def test_official_formats_refuse_files_of_other_shapes(seeded_files, tmp_path):
    """The shipped manifests are the official ones: the tiny-sized files do not pass them, naming the key."""
    path = tmp_path / "model.pth"
    path.write_bytes(seeded_files["checkpoints/bp4d_0/model.pth"])
    problems = verify_file(path, OFFICIAL_FILES[2].manifest())
    assert problems and all(p.startswith("[interpreter]") or p.startswith("...") for p in problems)
    root = tmp_path / "root"
    (root / "checkpoints" / "bp4d_0").mkdir(parents=True)
    (root / "checkpoints" / "bp4d_0" / "model.pth").write_bytes(path.read_bytes())
    assert main(["weights", "verify", "--for", "bp4d", "--root", str(root)]) == 1


def test_cli_download_from_a_mirror_and_offline_message(seeded_files, tmp_path, capsys):
    with Mirror({f"/{k}": v for k, v in seeded_files.items()}) as mirror:
        assert main(["weights", "download", "--for", "disfa", "--root", str(tmp_path), "--base-url", mirror.url,
                     "--no-progress"]) == 0
    assert (tmp_path / "checkpoints" / "disfa_0" / "model.pth").read_bytes() == \
        seeded_files["checkpoints/disfa_0/model.pth"]
    assert not (tmp_path / "checkpoints" / "stylegan2-ffhq-config-f.pt").exists()  # optional for a model
    assert main(["weights", "list", "--for", "disfa", "--root", str(tmp_path)]) == 0
    capsys.readouterr()

    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]
    offline = tmp_path / "offline"
    assert main(["weights", "download", "--for", "bp4d", "--root", str(offline), "--base-url",
                 f"http://127.0.0.1:{closed}", "--no-progress", "--timeout", "5"]) == 1
    err = capsys.readouterr().err
    line = next(ln for ln in err.splitlines() if "offline" in ln)
    assert line.startswith("fgnet weights: offline:") and "place the files by hand" in line
    assert str(offline / "checkpoints" / "encoder.pt") in err and "github.com/ihp-lab/FG-Net" in err
    assert str(offline / "checkpoints" / "bp4d_0" / "model.pth") in err
    assert not any(offline.rglob("*.pt*"))


def test_fetch_url_offline_is_an_offline_error(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]
    from fgnet_core.weights.download import fetch_url

    with pytest.raises(OfflineError):
        fetch_url(f"http://127.0.0.1:{closed}/x.pt", tmp_path / "x.pt", timeout=5)


def test_files_follow_the_official_paths_params_yaml_names(tmp_path):
    import yaml

    from fgnet_core.paths import REPO_ROOT

    params = yaml.safe_load((REPO_ROOT / "params.yaml").read_text())
    params["paths"]["checkpoints"]["official"]["stylegan"] = "elsewhere/g.pt"
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    chosen = {f.key: path for f, path in files_for("official", tmp_path)}
    assert chosen["stylegan2"] == tmp_path / "elsewhere/g.pt"
    assert chosen["encoder"] == tmp_path / params["paths"]["checkpoints"]["official"]["encoder"]
