"""The native module: its stub, its tables (from the C library), its parameter conversion, its logs."""

from __future__ import annotations

import ast
import inspect
import logging
from pathlib import Path

import numpy as np
import pytest

import sdrest
from sdrest import _native, names

STUB = Path(_native.__file__).with_name("_native.pyi")


def stub_names() -> dict[str, set[str]]:
    """Top-level names of the stub, and the members of each class in it."""
    tree = ast.parse(STUB.read_text())
    out: dict[str, set[str]] = {"": set()}
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            out[""].add(node.name)
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            out[""].add(node.target.id)
        if isinstance(node, ast.ClassDef):
            out[node.name] = {n.name for n in node.body if isinstance(n, ast.FunctionDef)} | {
                n.target.id for n in node.body if isinstance(n, ast.AnnAssign)} | {
                t.id for n in node.body if isinstance(n, ast.Assign) for t in n.targets if isinstance(t, ast.Name)}
    return out


def test_stub_and_module_agree() -> None:
    declared = stub_names()
    public = {n for n in dir(_native) if not n.startswith("_")}
    assert declared[""] == public
    for cls in ("Context", "Upscaler"):
        members = {n for n in dir(getattr(_native, cls)) if not n.startswith("_")} | {"__init__"}
        assert declared[cls] == members, cls
    for enum_name in ("CancelMode", "CacheMode", "LogLevel"):
        assert declared[enum_name] == {m.name for m in getattr(_native, enum_name)}


def test_stub_signatures_match_docstrings() -> None:
    tree = ast.parse(STUB.read_text())
    stub_functions = {n.name: n for n in tree.body if isinstance(n, ast.FunctionDef)}
    for name, node in stub_functions.items():
        doc = getattr(_native, name).__doc__ or ""
        params = [a.arg for a in node.args.args]
        for param in params:
            assert f"{param}:" in doc, f"{name}: stub parameter {param!r} not in the native signature"


def test_package_is_typed() -> None:
    assert Path(sdrest.__file__).with_name("py.typed").is_file()


def test_name_tables_come_from_the_c_library() -> None:
    assert sdrest.samplers()[:2] == ["euler", "euler_a"]
    assert "dpm++2m" in sdrest.samplers() and "karras" in sdrest.schedulers()
    assert len(sdrest.samplers()) == _native.SAMPLE_METHOD_COUNT
    assert len(sdrest.schedulers()) == _native.SCHEDULER_COUNT
    for name in sdrest.samplers():
        assert _native.sample_method_from_name(name) == names.sampler_table()[name]
    for name in sdrest.weight_types():
        assert _native.type_from_name(name) == names.type_table()[name]
    assert {"f32", "f16", "q8_0", "q4_0", "q4_K"} <= set(sdrest.weight_types())


def test_defaults_come_from_the_c_init_functions() -> None:
    ctx = _native.default_ctx_params()
    img = _native.default_img_gen_params()
    assert ctx["free_params_immediately"] is True and ctx["vae_decode_only"] is True
    assert (img["width"], img["height"], img["batch_count"]) == (512, 512, 1)
    assert img["sample_params"]["sample_steps"] == 20
    assert img["sample_params"]["guidance"]["txt_cfg"] == 7.0
    text = _native.img_gen_params_to_str({"prompt": "hello", "width": 64})
    assert "hello" in text and "64" in text


def test_unknown_and_mistyped_parameters_raise() -> None:
    with pytest.raises(TypeError, match="unknown parameter 'sample_params.steps'"):
        _native.img_gen_params_to_str({"sample_params": {"steps": 3}})
    with pytest.raises(TypeError, match="width: expected an integer"):
        _native.img_gen_params_to_str({"width": "64"})
    with pytest.raises(ValueError, match="sample_method: invalid value"):
        _native.img_gen_params_to_str({"sample_params": {"sample_method": 999}})
    with pytest.raises(ValueError, match="width: out of range"):
        _native.img_gen_params_to_str({"width": 2**40})
    # negative values of signed fields pass through
    assert "seed: -7" in _native.img_gen_params_to_str({"clip_skip": -1, "seed": -7})
    with pytest.raises(ValueError, match="NUL"):
        _native.img_gen_params_to_str({"prompt": "a\0b"})


def test_native_logs_reach_python_logging(caplog: pytest.LogCaptureFixture, tmp_path: Path) -> None:
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"not a model at all" * 10)
    with caplog.at_level(logging.DEBUG, logger="sdrest.native"):
        with pytest.raises(sdrest.NativeError):
            sdrest.StableDiffusion(bad)
    records = [r for r in caplog.records if r.name == "sdrest.native"]
    assert any(r.levelno == logging.ERROR and str(bad) in r.getMessage() for r in records)
    assert any(r.levelno == logging.INFO for r in records)
    assert all(not r.getMessage().endswith("\n") for r in records)


def test_library_functions_have_docstrings_and_hints() -> None:
    for name in sdrest.__all__:
        obj = getattr(sdrest, name)
        assert inspect.getdoc(obj), name


def test_images_cross_as_owned_c_contiguous_copies() -> None:
    rng = np.random.default_rng(3)
    image = rng.integers(0, 255, (32, 48, 3), dtype=np.uint8)
    before = image.copy()
    edges = _native.preprocess_canny(image, 0.08, 0.08, 0.8, 1.0, False)
    assert np.array_equal(image, before), "the caller's array was modified"
    assert edges.shape == (32, 48, 3) and edges.dtype == np.uint8 and edges.flags.c_contiguous
    fortran = _native.preprocess_canny(np.asfortranarray(image), 0.08, 0.08, 0.8, 1.0, False)
    view = np.pad(image, ((0, 0), (0, 2), (0, 0)))[:, :48]
    assert not view.flags.c_contiguous
    strided = _native.preprocess_canny(view, 0.08, 0.08, 0.8, 1.0, False)
    assert np.array_equal(edges, fortran) and np.array_equal(edges, strided)
    with pytest.raises(TypeError, match="uint8"):
        _native.preprocess_canny(image.astype(np.float32), 0.08, 0.08, 0.8, 1.0, False)
