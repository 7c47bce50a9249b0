"""Hostile and broken checkpoint files: always a one-line CheckpointError, never code execution or a traceback."""

from __future__ import annotations

import builtins
import io
import os
import pickle
import subprocess
import sys
import types
import zipfile
from pathlib import Path

import pytest
import torch

from core.checkpoints import describe_checkpoint, detect_format, load_generator
from core.checkpoints.unpickler import ALLOWED_GLOBALS, scan_globals
from core.errors import CheckpointError

FIX = Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "formats"
needs_fixtures = pytest.mark.skipif(
    not (FIX / "ref_nvidia_64.pkl").exists(),
    reason=f"reference fixtures not found at {FIX} (shared/ beside the clone)",
)
ENTRY_POINTS = (detect_format, load_generator, describe_checkpoint)


class _Payload:
    """Pickles as ``func(*args)``: executing it would create the marker file."""

    def __init__(self, func, args):
        self.func, self.args = func, args

    def __reduce__(self):
        return self.func, self.args


def _payloads(marker: Path) -> dict[str, _Payload]:
    code = f"open({str(marker)!r}, 'w').write('pwned')"
    return {
        "system": _Payload(os.system, (f"touch {marker}",)),
        "eval": _Payload(builtins.eval, (code,)),
        "Popen": _Payload(subprocess.Popen, ([sys.executable, "-c", code],)),
    }


def _assert_refused(path: Path, marker: Path, name: str) -> None:
    for fn in ENTRY_POINTS:
        with pytest.raises(CheckpointError) as info:
            fn(path)
        msg = str(info.value)
        assert "\n" not in msg and str(path) in msg, msg
        assert name in msg and "allow-list" in msg, msg
    assert not marker.exists(), "the hostile payload ran"


@pytest.mark.parametrize("kind", ["system", "eval", "Popen"])
@pytest.mark.parametrize("protocol", [2, 4])
def test_hostile_raw_pickle(tmp_path, kind, protocol):
    marker = tmp_path / "marker"
    payload = _payloads(marker)[kind]
    path = tmp_path / "evil.pkl"
    path.write_bytes(pickle.dumps({"G_ema": payload}, protocol=protocol))
    _assert_refused(path, marker, kind)


@pytest.mark.parametrize("kind", ["system", "eval", "Popen"])
@pytest.mark.parametrize("zipped", [True, False])
def test_hostile_torch_file(tmp_path, kind, zipped):
    marker = tmp_path / "marker"
    path = tmp_path / "evil.pt"
    torch.save({"g_ema": {"style.1.weight": torch.zeros(2, 2)}, "args": _payloads(marker)[kind]}, path,
               _use_new_zipfile_serialization=zipped)  # fmt: skip
    _assert_refused(path, marker, kind)


def test_scan_never_executes(tmp_path):
    marker = tmp_path / "marker"
    data = pickle.dumps([_payloads(marker)[k] for k in ("system", "eval", "Popen")], protocol=4)
    names = scan_globals(data)
    assert {"builtins.eval", "subprocess.Popen"} <= set(names) and any(n.endswith(".system") for n in names)
    assert not marker.exists()
    assert not set(names) & ALLOWED_GLOBALS


def test_tensorflow_pickle_gets_a_hint(tmp_path):
    path = tmp_path / "stylegan2-ffhq-config-f.pkl"
    path.write_bytes(b"\x80\x02cdnnlib.tflib.network\nNetwork\n)\x81.")
    with pytest.raises(CheckpointError, match="TensorFlow StyleGAN pickle.*legacy.py"):
        load_generator(path)


# --------------------------------------------------------------------------------------- fake NVIDIA pickles
@pytest.fixture
def persistence(monkeypatch):
    """A stand-in ``torch_utils.persistence`` module, so tests can write NVIDIA-style pickles."""

    def _reconstruct_persistent_obj(meta):  # pragma: no cover - never called on load
        raise AssertionError("must not run")

    pkg = types.ModuleType("torch_utils")
    mod = types.ModuleType("torch_utils.persistence")
    _reconstruct_persistent_obj.__module__ = "torch_utils.persistence"
    _reconstruct_persistent_obj.__qualname__ = "_reconstruct_persistent_obj"
    mod._reconstruct_persistent_obj = _reconstruct_persistent_obj
    pkg.persistence = mod
    monkeypatch.setitem(sys.modules, "torch_utils", pkg)
    monkeypatch.setitem(sys.modules, "torch_utils.persistence", mod)

    def make(class_name, modules=None, params=None, buffers=None, init_kwargs=None, **attrs):
        state = {
            "training": False,
            "_parameters": dict(params or {}),
            "_buffers": dict(buffers or {}),
            "_non_persistent_buffers_set": set(),
            "_modules": dict(modules or {}),
            "_init_args": (),
            "_init_kwargs": dict(init_kwargs or {}),
            **attrs,
        }
        meta = {"type": "class", "version": 6, "module_src": "import os\nos.system('x')\n", "class_name": class_name,
                "state": state}  # fmt: skip
        return _Payload(_reconstruct_persistent_obj, (meta,))

    return make


def test_hostile_nested_storage_blob(tmp_path, persistence):
    """NVIDIA pickles carry tensor storages as bytes for torch.storage._load_from_bytes; the blob is untrusted."""
    marker = tmp_path / "marker"
    blob = pickle.dumps(_payloads(marker)["system"], protocol=2)
    weight = _Payload(torch.storage._load_from_bytes, (blob,))
    G = persistence("Generator", params={"weight": weight}, init_kwargs={"z_dim": 8})
    path = tmp_path / "evil_blob.pkl"
    path.write_bytes(pickle.dumps({"G_ema": G}, protocol=4))
    for fn in (load_generator, describe_checkpoint):
        with pytest.raises(CheckpointError, match="system.*allow-list"):
            fn(path)
    assert not marker.exists()


def test_stylegan3_pickle_is_refused_clearly(tmp_path, persistence):
    make = persistence
    synth = make(
        "SynthesisNetwork",
        modules={
            "input": make("SynthesisInput", params={"freqs": torch.zeros(4, 2)}),
            "L0_36_512": make("SynthesisLayer"),
        },
    )
    mapping = make("MappingNetwork", buffers={"w_avg": torch.zeros(8)})
    kwargs = {"z_dim": 8, "w_dim": 8, "c_dim": 0, "img_resolution": 16, "img_channels": 3,
              "mapping_kwargs": {}, "synthesis_kwargs": {"channel_base": 32768, "magnitude_ema_beta": 0.999}}  # fmt: skip
    G = make("Generator", modules={"synthesis": synth, "mapping": mapping}, init_kwargs=kwargs)
    path = tmp_path / "sg3.pkl"
    path.write_bytes(pickle.dumps({"G": G, "D": None, "G_ema": G}, protocol=4))
    assert detect_format(path) == "nvidia"
    for fn in (load_generator, describe_checkpoint):
        with pytest.raises(CheckpointError, match="StyleGAN3 networks are not supported yet"):
            fn(path)


def test_pickle_without_generator(tmp_path, persistence):
    path = tmp_path / "d_only.pkl"
    path.write_bytes(pickle.dumps({"D": persistence("Discriminator")}, protocol=4))
    with pytest.raises(CheckpointError, match="no generator network.*D=Discriminator"):
        load_generator(path)


# ------------------------------------------------------------------------------------------ broken files
def _one_line_error(fn, path) -> str:
    with pytest.raises(CheckpointError) as info:
        fn(path)
    msg = str(info.value)
    assert "\n" not in msg and str(path) in msg, msg
    return msg


@needs_fixtures
@pytest.mark.parametrize("name", ["ref_rosinality_64.pt", "ref_nvidia_64.pkl"])
def test_truncated_fixture(tmp_path, name):
    data = (FIX / name).read_bytes()
    for frac in (0.5, 0.999):
        path = tmp_path / f"cut_{frac}_{name}"
        path.write_bytes(data[: int(len(data) * frac)])
        for fn in ENTRY_POINTS:
            msg = _one_line_error(fn, path)
            assert "truncated" in msg or "corrupt" in msg, msg


def test_garbage_files(tmp_path):
    cases = {
        "random.pt": os.urandom(4096),
        "empty.pkl": b"",
        "text.safetensors": b"hello world, not tensors",
        "pickle_garbage.pkl": b"\x80\x04" + os.urandom(200),
        "list.pkl": pickle.dumps([1, 2, 3]),
    }
    for name, data in cases.items():
        path = tmp_path / name
        path.write_bytes(data)
        for fn in ENTRY_POINTS:
            _one_line_error(fn, path)
    assert "empty file" in _one_line_error(load_generator, tmp_path / "empty.pkl")


def test_zip_that_is_not_torch(tmp_path):
    path = tmp_path / "photos.pt"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("a.txt", "hello")
    for fn in ENTRY_POINTS:
        assert "not a PyTorch checkpoint" in _one_line_error(fn, path)


def test_missing_path_and_directory(tmp_path):
    assert "no such file" in _one_line_error(load_generator, tmp_path / "nope.pt")
    assert "directory" in _one_line_error(load_generator, tmp_path)
    assert "directory" in _one_line_error(detect_format, tmp_path)


def test_unknown_torch_checkpoint(tmp_path):
    path = tmp_path / "classifier.pt"
    torch.save({"model": {"fc.weight": torch.zeros(2, 2)}, "epoch": 3}, path)
    assert "unknown format" in _one_line_error(load_generator, path)


@pytest.fixture(scope="module")
def g_ema():
    if not (FIX / "ref_rosinality_64.pt").exists():
        pytest.skip(f"reference fixtures not found at {FIX}")
    from core.checkpoints.unpickler import torch_load_restricted

    return torch_load_restricted(str(FIX / "ref_rosinality_64.pt"))["g_ema"]


def test_missing_tensor_is_named(tmp_path, g_ema):
    sd = dict(g_ema)
    del sd["convs.3.activate.bias"]
    path = tmp_path / "missing.pt"
    torch.save({"g_ema": sd, "latent_avg": torch.zeros(512)}, path)
    msg = _one_line_error(load_generator, path)
    assert "missing" in msg and "convs.3.activate.bias" in msg


def test_misshapen_tensor_is_named(tmp_path, g_ema):
    sd = dict(g_ema)
    sd["convs.3.conv.modulation.weight"] = torch.zeros(31, 512)
    path = tmp_path / "misshapen.pt"
    torch.save({"g_ema": sd, "latent_avg": torch.zeros(512)}, path)
    msg = _one_line_error(load_generator, path)
    assert "convs.3.conv.modulation.weight" in msg and "[31, 512]" in msg and "[32, 512]" in msg


def test_unexpected_tensor_and_bad_latent_avg(tmp_path, g_ema):
    sd = dict(g_ema)
    sd["extra.weight"] = torch.zeros(3)
    path = tmp_path / "extra.pt"
    torch.save({"g_ema": sd}, path)
    assert "extra.weight" in _one_line_error(load_generator, path)
    path = tmp_path / "bad_avg.pt"
    torch.save({"g_ema": dict(g_ema), "latent_avg": torch.zeros(7)}, path)
    assert "latent_avg" in _one_line_error(load_generator, path)


def test_error_is_a_value_error(tmp_path):
    path = tmp_path / "x.pkl"
    path.write_bytes(b"\x00")
    with pytest.raises(ValueError):
        load_generator(path)
    assert isinstance(io, types.ModuleType)
