from __future__ import annotations

import functools
import hashlib
import http.server
import threading

import pytest
import torch

from progface import weights as W
from progface.weights import WeightsError, WeightSpec


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("PROGFACE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("PROGFACE_OFFLINE", raising=False)
    return tmp_path / "cache"


@pytest.fixture
def server(tmp_path):
    """A local file server for the real download path (tests never use the network)."""
    root = tmp_path / "served"
    root.mkdir()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    handler.log_message = lambda *a: None
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield root, f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


def test_cache_dir_follows_env(home):
    assert W.cache_dir() == home


def test_download_verifies_and_caches(home, server):
    root, url = server
    payload = b"weights" * 1000
    (root / "w.bin").write_bytes(payload)
    spec = WeightSpec("w.bin", url=f"{url}/w.bin", sha256=hashlib.sha256(payload).hexdigest())
    assert W.status(spec) == "missing"
    path = W.resolve(spec)
    assert path == home / "w.bin" and path.read_bytes() == payload
    assert W.status(spec) == "cached"
    (root / "w.bin").unlink()  # a second resolve uses the cache, no download
    assert W.resolve(spec) == path


def test_hash_prefix_is_verified_like_torch_hub(home, server):
    root, url = server
    (root / "m-0000.pth").write_bytes(b"abc")
    prefix = hashlib.sha256(b"abc").hexdigest()[:8]
    assert W.resolve(WeightSpec("m-0000.pth", url=f"{url}/m-0000.pth", sha256=prefix)).is_file()


def test_corrupt_download_leaves_no_file(home, server):
    root, url = server
    (root / "bad.bin").write_bytes(b"tampered")
    spec = WeightSpec("bad.bin", url=f"{url}/bad.bin", sha256="0" * 64)
    with pytest.raises(WeightsError, match="sha256 mismatch"):
        W.resolve(spec)
    assert not (home / "bad.bin").exists()
    assert list(home.iterdir()) == []  # no partial file either


def test_offline_error_names_file_url_and_place(home, monkeypatch):
    monkeypatch.setenv("PROGFACE_OFFLINE", "1")
    spec = WeightSpec("vgg16-397923af.pth", url="https://example.invalid/vgg16-397923af.pth")
    with pytest.raises(WeightsError) as err:
        W.resolve(spec)
    msg = str(err.value)
    assert "vgg16-397923af.pth" in msg and "https://example.invalid/vgg16-397923af.pth" in msg
    assert str(home / "vgg16-397923af.pth") in msg


def test_unreachable_url_error_is_clear(home):
    spec = WeightSpec("x.bin", url="http://127.0.0.1:9/x.bin")
    with pytest.raises(WeightsError, match=r"could not download x.bin .*put it at"):
        W.resolve(spec)


def test_explicit_path_and_cache_copy(home, tmp_path):
    src = tmp_path / "mine.bin"
    src.write_bytes(b"123")
    spec = WeightSpec("mine.bin", sha256=hashlib.sha256(b"123").hexdigest())
    assert W.resolve(spec, path=src) == src
    with pytest.raises(WeightsError, match="no such weight file"):
        W.resolve(spec, path=tmp_path / "nope.bin")
    assert W.copy_into_cache(src, spec).read_bytes() == b"123"
    assert W.status(spec) == "cached"
    assert W.status(None) == "none needed"


def test_safetensors_round_trip_with_config(tmp_path):
    tensors = {"a.weight": torch.randn(3, 4), "b": torch.arange(5)}
    config = {"architecture": "progressive", "step": 3, "alpha": 1.0}
    path = W.save_safetensors(tensors, tmp_path / "m.safetensors", config)
    loaded, cfg = W.load_safetensors(path)
    assert cfg == config
    assert torch.equal(loaded["a.weight"], tensors["a.weight"]) and torch.equal(
        loaded["b"], tensors["b"]
    )
    (tmp_path / "junk.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(WeightsError, match="junk.safetensors: not a readable safetensors"):
        W.load_safetensors(tmp_path / "junk.safetensors")


def test_a_plugin_ships_weights_in_its_own_folder(tmp_path):
    from progface.weights import WeightSpec, local_path, resolve, sha256_of, status

    folder = tmp_path / "plugin_pkg" / "weights"
    folder.mkdir(parents=True)
    (folder / "net.bin").write_bytes(b"weights")
    spec = WeightSpec("net.bin", sha256=sha256_of(folder / "net.bin"), shipped=True, folder=folder)
    assert local_path(spec) == folder / "net.bin" and resolve(spec) == folder / "net.bin"
    assert status(spec) == "shipped"
    assert local_path(WeightSpec("x.bin", shipped=True)).parent.name == "weights"  # progface's
