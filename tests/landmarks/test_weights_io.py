"""Loaders and importers: the authors' pickled distilled FAN, face-alignment's FAN-4 files."""

from __future__ import annotations

import pickle
import sys
import types
import warnings
from collections import OrderedDict

import pytest
import torch
from torch import nn

from progface.landmarks.fan import FAN
from progface.landmarks.fan_distilled import FanDistilled
from progface.weights import WeightsError, load_safetensors, verify
from progface.weights.landmarks import (
    FAN4_STATE_DICT,
    FAN4_TORCHSCRIPT,
    PFSR_FAN_CHECKPOINT,
    import_fan4,
    import_fan_distilled,
    load_fan4,
    load_fan4_state_dict,
    load_fan_distilled,
    read_fan_distilled_checkpoint,
)
from progface.weights.legacy_pickle import LEGACY_MAGIC, LegacyPickleError, load_legacy


@pytest.fixture
def fan_model_module(monkeypatch):
    """A stand-in ``fan_model`` module whose ``fan_squeeze`` has the authors' layout."""

    class fan_squeeze(nn.Module):  # noqa: N801 (the authors' class name)
        def __init__(self):
            super().__init__()
            ref = FanDistilled()
            self.conv, self.layers = ref.conv, ref.layers

        def forward(self, x):
            return self.layers(self.conv(x))

    fan_squeeze.__module__, fan_squeeze.__qualname__ = "fan_model", "fan_squeeze"
    module = types.ModuleType("fan_model")
    module.fan_squeeze = fan_squeeze
    monkeypatch.setitem(sys.modules, "fan_model", module)
    return module


# --- the authors' checkpoint (../shared) -------------------------------------------------------


def test_authors_checkpoint_imports_unchanged(pfsr_checkpoint, tmp_path, monkeypatch):
    verify(pfsr_checkpoint, PFSR_FAN_CHECKPOINT.sha256)
    dst = import_fan_distilled(pfsr_checkpoint, tmp_path / "pfsr.safetensors")
    tensors, config = load_safetensors(dst)
    assert config["iteration"] == 11000 and config["source_sha256"] == PFSR_FAN_CHECKPOINT.sha256
    # oracle: torch's own (code-executing) loader on this verified file, with stand-ins for
    # the authors' class and the long-removed THNN backend
    fan_model = types.ModuleType("fan_model")
    fan_model.fan_squeeze = type("fan_squeeze", (nn.Module,), {})
    thnn = types.ModuleType("torch.nn.backends.thnn")
    thnn._get_thnn_function_backend = lambda: None
    monkeypatch.setitem(sys.modules, "fan_model", fan_model)
    monkeypatch.setitem(sys.modules, "torch.nn.backends.thnn", thnn)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        reference = torch.load(pfsr_checkpoint, map_location="cpu", weights_only=False).state_dict()
    assert list(tensors) == sorted(reference)  # safetensors stores keys sorted
    for key, value in reference.items():
        assert tensors[key].dtype == value.dtype and torch.equal(tensors[key], value), key
    model = load_fan_distilled(dst)
    assert sum(p.numel() for p in model.parameters()) == 321_412 and not model.training


def test_authors_checkpoint_finds_the_eyes(pfsr_checkpoint, tmp_path):
    """At 64 px (where it was trained), its eye landmarks land near the human labels."""
    from progface.landmarks.data import load_landmark_faces
    from progface.landmarks.evaluate import predict_landmarks

    model = load_fan_distilled(import_fan_distilled(pfsr_checkpoint, tmp_path / "p.safetensors"))
    faces = load_landmark_faces(
        [pfsr_checkpoint.parents[2] / "data/faces/val/helen_test"], limit=40
    )
    pred = predict_landmarks(model, faces.float_images(), 64)  # 128-px frame
    err = (pred - faces.points).norm(dim=-1)
    assert err[:, 36:48].median() < 2.0  # px at 128; inter-ocular distance is about 38 px
    for eye in (slice(36, 42), slice(42, 48)):
        centre_err = (pred[:, eye].mean(1) - faces.points[:, eye].mean(1)).norm(dim=-1)
        assert centre_err.mean() < 3.5
    # the eye heatmaps peak on the eyes: each eye channel's maximum is above 0.2
    with torch.no_grad():
        heat = model(
            torch.nn.functional.interpolate(
                faces.float_images(), size=64, mode="bilinear", antialias=True
            )
        )
    assert heat[:, 36:48].amax(dim=(2, 3)).median() > 0.2


# --- the restricted unpickler ------------------------------------------------------------------


def test_legacy_whole_module_pickle_round_trip(fan_model_module, tmp_path):
    model = fan_model_module.fan_squeeze()
    with torch.no_grad():
        for p in model.parameters():
            p.normal_()
        model.layers[1].running_var.uniform_(0.5, 2.0)
        model.layers[1].num_batches_tracked.fill_(123)
    path = tmp_path / "legacy.pth"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "couldn't retrieve source code" of the test class
        torch.save(model, path, _use_new_zipfile_serialization=False)
    got = read_fan_distilled_checkpoint(path)
    assert list(got) == list(model.state_dict())
    for k, v in model.state_dict().items():
        assert torch.equal(got[k], v), k
    dst = import_fan_distilled(path, tmp_path / "out.safetensors")
    loaded = load_fan_distilled(dst)
    x = torch.rand(1, 3, 32, 32)
    with torch.no_grad():
        assert torch.allclose(loaded(x), model.eval()(x), atol=1e-6)


def _legacy_file(path, payload: bytes) -> None:
    info = {"protocol_version": 1001, "little_endian": True, "type_sizes": {"short": 2}}
    with open(path, "wb") as f:
        for obj in (LEGACY_MAGIC, 1001, info):
            pickle.dump(obj, f, protocol=2)
        f.write(payload)


class _Evil:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        import os

        return (os.system, (f"touch {self.marker}",))


def test_restricted_unpickler_executes_nothing(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pth"
    _legacy_file(path, pickle.dumps(_Evil(marker), protocol=2))
    with pytest.raises(
        LegacyPickleError, match=r"evil\.pth: refusing to load global '(posix|os)\.system'"
    ):
        load_legacy(path)
    assert not marker.exists()
    # a torch.nn.modules name resolves to an inert record that refuses to be called
    call = b"\x80\x02ctorch.nn.modules.module\nregister_module_forward_hook\nq\x00)R."
    _legacy_file(path, call)
    with pytest.raises(LegacyPickleError, match="storage key list"):  # built an inert record
        load_legacy(path)
    call_args = b"\x80\x02ctorch.nn.modules.module\nregister_module_forward_hook\nK\x01\x85R."
    _legacy_file(path, call_args)
    with pytest.raises(LegacyPickleError, match="called with arguments"):
        load_legacy(path)


def test_importer_errors_name_the_file(tmp_path, fan_model_module):
    with pytest.raises(WeightsError, match="no such file"):
        import_fan_distilled(tmp_path / "missing.pth", tmp_path / "x.safetensors")
    garbage = tmp_path / "garbage.pth"
    garbage.write_bytes(b"not a pickle at all")
    with pytest.raises(WeightsError, match="garbage.pth"):
        import_fan_distilled(garbage, tmp_path / "x.safetensors")
    # a zip-format state dict with one key too many and a wrong shape
    state = OrderedDict(FanDistilled().state_dict())
    state["extra.weight"] = torch.zeros(1)
    state["conv.bias"] = torch.zeros(31)
    bad = tmp_path / "bad.pth"
    torch.save(state, bad)
    with pytest.raises(
        WeightsError, match=r"bad.pth: .*unexpected keys \(extra.weight\).*conv.bias \(31,\)"
    ):
        import_fan_distilled(bad, tmp_path / "x.safetensors")
    with pytest.raises(WeightsError, match="convert a checkpoint first"):
        load_fan_distilled(bad)


# --- FAN-4 files ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def fan4_random():
    torch.manual_seed(1)
    model = FAN().eval()
    with torch.no_grad():
        for k, v in model.state_dict().items():
            if k.endswith("running_var"):
                v.uniform_(0.5, 2.0)
    return model


def test_fan4_specs_carry_real_urls():
    assert FAN4_STATE_DICT.url.endswith("/python-fan/2DFAN4-11f355bf06.pth.tar")
    assert FAN4_STATE_DICT.sha256 == "11f355bf06"  # torch-hub style prefix from the name
    assert FAN4_TORCHSCRIPT.url.endswith("/python-fan/2DFAN4-cd938726ad.zip")


def test_fan4_state_dict_file(fan4_random, tmp_path):
    path = tmp_path / "2DFAN4-test.pth.tar"
    torch.save(fan4_random.state_dict(), path)
    model = load_fan4(path)
    x = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        assert torch.equal(model(x)[-1], fan4_random(x)[-1])
    # the older wrapped layout: {"state_dict": {"module." + key: ...}}
    wrapped = tmp_path / "wrapped.pth.tar"
    torch.save(
        {"state_dict": {f"module.{k}": v for k, v in fan4_random.state_dict().items()}}, wrapped
    )
    got = load_fan4_state_dict(wrapped)
    assert all(torch.equal(got[k], v) for k, v in fan4_random.state_dict().items())
    out = import_fan4(path, tmp_path / "fan4.safetensors")
    assert load_safetensors(out)[1]["architecture"] == "fan4"
    with torch.no_grad():
        assert torch.equal(load_fan4(out)(x)[-1], fan4_random(x)[-1])


def test_fan4_torchscript_file(fan4_random, tmp_path):
    path = tmp_path / "2DFAN4-test.zip"
    x = torch.rand(1, 3, 64, 64)
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tracer and jit deprecation warnings
        traced = torch.jit.trace(fan4_random, x, check_trace=False, strict=False)
        traced.save(str(path))
    got = load_fan4_state_dict(path)
    assert list(got) == list(fan4_random.state_dict())
    assert all(torch.equal(got[k], v) for k, v in fan4_random.state_dict().items())
    with torch.no_grad():
        assert torch.equal(load_fan4(path)(x)[-1], fan4_random(x)[-1])


def test_fan4_wrong_layout_is_refused(tmp_path):
    path = tmp_path / "fan2.pth.tar"
    torch.save(FAN(num_modules=2).state_dict(), path)
    with pytest.raises(
        WeightsError, match=r"fan2.pth.tar: does not match FAN: 530 missing keys \(bl1"
    ):
        load_fan4(path)


def test_torchscript_import_executes_no_code(fan4_random, tmp_path, monkeypatch):
    from progface.weights.importers import import_weights

    path = tmp_path / "2DFAN4-test.zip"
    x = torch.rand(1, 3, 64, 64)
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.jit.trace(fan4_random, x, check_trace=False, strict=False).save(str(path))

    def refuse(*args, **kwargs):
        raise AssertionError("TorchScript code was loaded")

    monkeypatch.setattr(torch.jit, "load", refuse)
    monkeypatch.setattr(torch._C, "import_ir_module", refuse)
    out = import_weights(path, tmp_path / "fan4.safetensors")  # kind auto
    tensors, config = load_safetensors(out)
    assert config["architecture"] == "fan4"
    assert all(torch.equal(tensors[k], v) for k, v in fan4_random.state_dict().items())
    with pytest.raises(WeightsError, match="a TorchScript archive; its code is never run"):
        import_weights(path, tmp_path / "g.safetensors", kind="generator")


def test_torchscript_archive_with_foreign_globals_is_refused(tmp_path):
    import zipfile

    path = tmp_path / "evil.zip"  # data.pkl: os.system("true")
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("m/data.pkl", b"\x80\x02cos\nsystem\nq\x00X\x04\x00\x00\x00trueq\x01\x85R.")
        zf.writestr("m/code/__torch__.py", "")
        zf.writestr("m/constants.pkl", pickle.dumps(()))
    with pytest.raises(WeightsError, match=r"evil.zip: refusing to load global 'os.system'"):
        load_fan4_state_dict(path)
