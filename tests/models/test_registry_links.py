"""Links in a models dir: followed, but only model files are listed, hashed and served; errors never
quote a file's bytes; link loops end; ``links="inside"`` refuses links leading out of the models dir."""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import struct
import threading
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from sdrest.models import FileChanged, ModelInfo, detect
from sdrest.models.registry import Registry, ScanReport
from sdrest.testing.headers import state_dict_pickle, write_gguf, write_safetensors

LORA_SD1 = [
    ("lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn2_to_k.lora_down.weight", (4, 768)),
    ("lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn2_to_k.lora_up.weight", (320, 4)),
]
VAE4 = [("decoder.conv_in.weight", (512, 4, 3, 3)), ("decoder.mid.block_1.conv1.weight", (512, 512, 3, 3))]
SECRET = b"root:x:0:0:root:/root:/bin/bash\ndaemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\n" * 20
"""What a link to /etc/passwd would show (a stand-in, so the tests do not depend on the host's file)."""
MARKER = "Zq7SECRETq7Z"
"""A string planted in damaged model headers: no error message may repeat it."""
PLANTED = 0x5A71_3753
"""A number planted in damaged headers (a type id, a version, an alignment): no message may repeat it."""


def numbers_from(data: bytes) -> set[str]:
    """The ways a reader could echo the first bytes of a file as a number: 4 and 8 bytes read at
    every 4-byte step of the first 32, both byte orders, in decimal and hex."""
    out: set[str] = set()
    for start in range(0, 32, 4):
        for width in (4, 8):
            chunk = data[start : start + width]
            if len(chunk) < width:
                continue
            for order in ("little", "big"):
                value = int.from_bytes(chunk, order)  # type: ignore[arg-type]
                if value >= 1000:  # short numbers are offsets and sizes too often to tell apart
                    out.add(str(value))
                    out.add(f"{value:x}")
                    out.add(f"{value:X}")
    out.add(data[:8].hex())
    return out


def assert_no_bytes(text: str, data: bytes, marker: str | None = None) -> None:
    """``text`` (an error, a response body) holds nothing of ``data``: no number read from its first bytes,
    and either the ``marker`` planted in it or, without one, no run of 6 printable characters of its start."""
    for number in numbers_from(data):
        assert number not in text, f"{number} (bytes of the file as a number) is in {text!r}"
    for byte in sorted(set(data[:64])):
        if byte >= 0x80:
            for shown in (f"0x{byte:02x}", f"0x{byte:02X}", f"\\x{byte:02x}"):
                assert shown not in text, f"byte {shown} of the file is in {text!r}"
    if marker is not None:
        assert marker not in text, f"the planted {marker!r} is in {text!r}"
        for shown in (str(PLANTED), f"{PLANTED:x}", f"{PLANTED:X}", str(-PLANTED)):
            assert shown not in text, f"the planted number {shown} is in {text!r}"
        return
    printable = data.decode("latin-1")
    for start in range(min(len(printable), 64)):
        run = printable[start : start + 6]
        if len(run) == 6 and run.isprintable() and not run.isspace():
            assert run not in text, f"{run!r} of the file is in {text!r}"


@pytest.fixture
def secret(tmp_path: Path) -> Path:
    """A non-model file outside the models dir."""
    path = tmp_path / "etc" / "passwd"
    path.parent.mkdir()
    path.write_bytes(SECRET)
    return path


@pytest.fixture
def elsewhere(tmp_path: Path) -> Path:
    """Another tool's folder, outside the models dir, holding real (header-only) models."""
    root = tmp_path / "comfyui" / "models"
    (root / "loras").mkdir(parents=True)
    write_safetensors(root / "loras" / "ink.safetensors", LORA_SD1)
    (root / "vae").mkdir()
    write_safetensors(root / "vae" / "kl-f8.safetensors", VAE4)
    return root


def scan_within(reg: Registry, seconds: float = 30) -> ScanReport:
    """``reg.scan()`` in a thread: a scan that loops fails the test instead of hanging it."""
    box: dict[str, object] = {}

    def run() -> None:
        try:
            box["report"] = reg.scan()
        except Exception as exc:  # noqa: BLE001 - re-raised below, in the test's thread
            box["error"] = exc

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    worker.join(seconds)
    assert not worker.is_alive(), f"scan did not finish within {seconds} s"
    if "error" in box:
        raise box["error"]  # type: ignore[misc]
    return box["report"]  # type: ignore[return-value]


def ids(reg: Registry) -> set[str]:
    return {e.id for e in reg.entries()}


def skipped(report: ScanReport) -> dict[str, str]:
    return {s.rel_path: s.reason for s in report.skipped}


# -- links to files that are not models -----------------------------------------------------------

PASSWD_LINKS = ("checkpoints/passwd.safetensors", "lora/passwd.ckpt", "vae/passwd.gguf", "passwd.pth", "passwd.bin",
                "diffusion_models/passwd.sft", "embeddings/passwd.pt")


@pytest.mark.parametrize("target", ["stand-in", "/etc/passwd"])
def test_link_to_a_non_model_file_is_not_listed_nor_hashable(models_dir: Path, secret: Path, target: str) -> None:
    if target == "/etc/passwd" and not os.path.isfile(target):
        pytest.skip("this host has no /etc/passwd")
    real = secret if target == "stand-in" else Path(target)
    data = real.read_bytes()
    plain = Registry(models_dir)
    plain.scan()
    before = ids(plain)
    for rel in PASSWD_LINKS:
        (models_dir / rel).parent.mkdir(exist_ok=True)
        (models_dir / rel).symlink_to(real)
    reg = Registry(models_dir)
    report = scan_within(reg)
    assert ids(reg) == before  # nothing of it is listed
    assert not any("passwd" in i for i in report.added)
    reasons = skipped(report)
    assert set(PASSWD_LINKS) <= set(reasons)
    for rel in PASSWD_LINKS:
        assert reasons[rel].startswith("not a model file: ")
        assert_no_bytes(reasons[rel], data)
        stem = rel.rsplit(".", 1)[0]
        for name in (stem, rel, stem.rsplit("/", 1)[-1]):
            with pytest.raises(KeyError):
                reg.find(name)
        with pytest.raises(KeyError):
            reg.hashes(stem)
    assert reg.search("passwd").total == 0
    # why they are left out can be asked, by the names find() takes
    assert reg.find_skipped("checkpoints/passwd").rel_path == "checkpoints/passwd.safetensors"
    assert reg.find_skipped("passwd.ckpt").rel_path == "lora/passwd.ckpt"
    assert reg.find_skipped("passwd.pth").rel_path == "passwd.pth"
    assert reg.find_skipped("embeddings/passwd").rel_path == "embeddings/passwd.pt"
    assert {s.rel_path for s in reg.skipped()} >= set(PASSWD_LINKS)
    with pytest.raises(KeyError, match="ambiguous"):
        reg.find_skipped("passwd")  # passwd.pth and passwd.bin, side by side
    with pytest.raises(KeyError, match="nothing skipped"):
        reg.find_skipped("checkpoints/v1-5-pruned-emaonly")  # a model is not skipped


def test_rescans_do_not_read_a_non_model_again(models_dir: Path, secret: Path) -> None:
    (models_dir / "lora" / "passwd.safetensors").symlink_to(secret)
    calls: list[str] = []

    def counting(path: str) -> ModelInfo:
        calls.append(path)
        return detect(path)

    reg = Registry(models_dir, detector=counting)
    first = reg.scan()
    n = len(calls)
    again = reg.scan()
    assert len(calls) == n and again.unchanged == len(first.added)
    assert "lora/passwd.safetensors" in skipped(again)


def test_a_model_replaced_by_a_link_to_a_non_model_is_removed(models_dir: Path, secret: Path) -> None:
    reg = Registry(models_dir)
    reg.scan()
    target = models_dir / "lora" / "marblesh.safetensors"
    target.unlink()
    target.symlink_to(secret)
    report = reg.scan()
    assert report.removed == ["lora/marblesh"]
    assert "lora/marblesh.safetensors" in skipped(report)
    with pytest.raises(KeyError):
        reg.hashes("lora/marblesh")


# -- links to models outside the models dir -----------------------------------------------------


def link_elsewhere(models_dir: Path, elsewhere: Path) -> None:
    (models_dir / "lora" / "ink.safetensors").symlink_to(elsewhere / "loras" / "ink.safetensors")
    (models_dir / "vae" / "comfy").symlink_to(elsewhere / "vae", target_is_directory=True)
    # a link that stays inside the models dir
    (models_dir / "lora" / "alias.safetensors").symlink_to(Path("..") / "lora" / "marblesh.safetensors")


def test_links_to_models_outside_are_followed_by_default(models_dir: Path, elsewhere: Path) -> None:
    link_elsewhere(models_dir, elsewhere)
    reg = Registry(models_dir)
    report = scan_within(reg)
    assert {"lora/ink", "vae/comfy/kl-f8", "lora/alias"} <= ids(reg)
    assert reg.get("lora/ink").kind == "lora" and reg.get("vae/comfy/kl-f8").kind == "vae"
    assert not report.skipped
    outside = elsewhere / "loras" / "ink.safetensors"
    assert reg.hashes("lora/ink").sha256 == hashlib.sha256(outside.read_bytes()).hexdigest()
    assert reg.hashes("vae/comfy/kl-f8").sha256 == hashlib.sha256(
        (elsewhere / "vae" / "kl-f8.safetensors").read_bytes()).hexdigest()


def test_links_leading_out_are_refused_with_links_inside(models_dir: Path, elsewhere: Path, secret: Path) -> None:
    link_elsewhere(models_dir, elsewhere)
    (models_dir / "checkpoints" / "passwd.safetensors").symlink_to(secret)
    reg = Registry(models_dir, links="inside")
    report = scan_within(reg)
    listed = ids(reg)
    assert "lora/ink" not in listed and not any(i.startswith("vae/comfy") for i in listed)
    assert "lora/alias" in listed  # inside: still followed
    assert reg.hashes("lora/alias").sha256 == hashlib.sha256(
        (models_dir / "lora" / "marblesh.safetensors").read_bytes()).hexdigest()
    reasons = skipped(report)
    for rel in ("lora/ink.safetensors", "vae/comfy", "checkpoints/passwd.safetensors"):
        assert "out of the models dir" in reasons[rel]
    with pytest.raises(KeyError):
        reg.hashes("lora/ink")
    with pytest.raises(ValueError, match="links"):
        Registry(models_dir, links="sometimes")


def test_a_diffusers_folder_whose_parts_lead_out_is_refused_with_links_inside(tmp_path: Path,
                                                                              elsewhere: Path) -> None:
    root = tmp_path / "models"
    pipe = root / "checkpoints" / "pipe"
    (pipe / "unet").mkdir(parents=True)
    (pipe / "model_index.json").write_text("{}")
    unet = elsewhere / "unet.safetensors"
    write_safetensors(unet, [("conv_in.weight", (320, 4, 3, 3)), ("mid_block.resnets.1.conv1.weight", (1280, 1280, 3, 3)),
                             ("up_blocks.2.attentions.1.proj_in.weight", (640, 640))])
    (pipe / "unet" / "diffusion_pytorch_model.safetensors").symlink_to(unet)
    followed = Registry(root)
    followed.scan()
    assert ids(followed) == {"checkpoints/pipe"}
    hardened = Registry(root, links="inside")
    report = hardened.scan()
    assert ids(hardened) == set() and "out of the models dir" in skipped(report)["checkpoints/pipe"]


def test_the_disk_cache_of_one_policy_is_not_used_by_the_other(models_dir: Path, elsewhere: Path,
                                                                tmp_path: Path) -> None:
    link_elsewhere(models_dir, elsewhere)
    cache = tmp_path / "cache.json"
    Registry(models_dir, cache_path=cache).scan()
    assert json.loads(cache.read_text())["links"] == "follow"
    hardened = Registry(models_dir, cache_path=cache, links="inside")
    assert "lora/ink" not in ids(hardened)  # not even before its first scan
    hardened.scan()
    assert "lora/ink" not in ids(hardened)


# -- loops ---------------------------------------------------------------------------------------


def test_link_loops_end(models_dir: Path) -> None:
    reg = Registry(models_dir)
    reg.scan()
    plain = ids(reg)
    (models_dir / "checkpoints" / "up").symlink_to("..", target_is_directory=True)  # its parent
    (models_dir / "here").symlink_to(".", target_is_directory=True)  # the root itself
    (models_dir / "lora" / "self.safetensors").symlink_to("self.safetensors")  # itself
    (models_dir / "lora" / "ping.safetensors").symlink_to("pong.safetensors")  # two links, each the other's
    (models_dir / "lora" / "pong.safetensors").symlink_to("ping.safetensors")
    (models_dir / "vae" / "circle").symlink_to("circle", target_is_directory=True)  # a folder link to itself
    (models_dir / "aaa").symlink_to("lora", target_is_directory=True)  # sorts before the real lora/
    (models_dir / "vae" / "everything").symlink_to(models_dir.parent, target_is_directory=True)  # above the root
    (models_dir.parent / "beside.safetensors").write_bytes((models_dir / "lora" / "marblesh.safetensors").read_bytes())
    for policy in ("follow", "inside"):
        looped = Registry(models_dir, links=policy)
        report = scan_within(looped)
        assert ids(looped) == plain, policy  # the real folders win; the loops add nothing
        reasons = skipped(report)
        assert reasons["aaa"] == "a link to a folder already scanned"
        for rel in ("checkpoints/up", "here"):
            assert reasons[rel] == "a link to a folder that holds the models dir (a loop)", (policy, rel)
        if policy == "follow":
            assert reasons["vae/everything"] == "a link to a folder that holds the models dir (a loop)"
        else:
            assert "out of the models dir" in reasons["vae/everything"]
        for rel in ("lora/self.safetensors", "lora/ping.safetensors", "lora/pong.safetensors"):
            assert "cannot be followed" in reasons[rel]


def test_a_linked_folder_is_scanned_once_under_the_first_name(tmp_path: Path, elsewhere: Path) -> None:
    root = tmp_path / "models"
    root.mkdir()
    (root / "b").symlink_to(elsewhere / "loras", target_is_directory=True)
    (root / "a").symlink_to(elsewhere / "loras", target_is_directory=True)
    reg = Registry(root)
    report = reg.scan()
    assert ids(reg) == {"a/ink"}
    assert skipped(report) == {"b": "a link to a folder already scanned"}


# -- a link retargeted after the scan ---------------------------------------------------------------


def test_hashes_refuse_a_link_retargeted_after_the_scan(models_dir: Path, secret: Path, elsewhere: Path) -> None:
    link = models_dir / "lora" / "swap.safetensors"
    model = elsewhere / "loras" / "ink.safetensors"
    link.symlink_to(model)
    reg = Registry(models_dir)
    reg.scan()
    # the same size and mtime as the model scanned: only the file's identity tells them apart
    with open(secret, "r+b") as f:
        f.truncate(model.stat().st_size)
    st = model.stat()
    os.utime(secret, ns=(st.st_atime_ns, st.st_mtime_ns))
    link.unlink()
    link.symlink_to(secret)
    with pytest.raises(FileChanged, match="changed since the last scan") as caught:
        reg.hashes("lora/swap")
    assert_no_bytes(str(caught.value), SECRET)
    assert reg.get("lora/swap").hashes is None
    reg.scan()
    with pytest.raises(KeyError):
        reg.hashes("lora/swap")


def test_hashes_refuse_a_link_retargeted_out_with_links_inside(models_dir: Path, tmp_path: Path) -> None:
    link = models_dir / "lora" / "inner.safetensors"
    link.symlink_to("marblesh.safetensors")
    reg = Registry(models_dir, links="inside")
    reg.scan()
    assert "lora/inner" in ids(reg)
    outside = tmp_path / "copy.safetensors"
    outside.write_bytes((models_dir / "lora" / "marblesh.safetensors").read_bytes())
    link.unlink()
    link.symlink_to(outside)
    with pytest.raises(FileChanged):
        reg.hashes("lora/inner")


# -- no file bytes in any error -----------------------------------------------------------------


def damaged_files(folder: Path) -> Iterator[tuple[Path, bytes]]:
    """Files that every header reader refuses, most with :data:`MARKER` where a message could quote it."""
    m = MARKER.encode()

    def put(name: str, data: bytes) -> tuple[Path, bytes]:
        path = folder / name
        path.write_bytes(data)
        return path, data

    yield put("passwd.safetensors", SECRET)
    yield put("passwd.gguf", SECRET)
    yield put("passwd.ckpt", SECRET)

    def st(name: str, header: bytes) -> tuple[Path, bytes]:
        return put(name, struct.pack("<Q", len(header)) + header + b"\0" * 64)

    yield st("st-shape.safetensors", json.dumps({MARKER: {"dtype": "F16", "shape": MARKER,
                                                          "data_offsets": [0, 2]}}).encode())
    yield st("st-dtype.safetensors", json.dumps({MARKER: {"dtype": MARKER, "shape": [1],
                                                          "data_offsets": [0, 2]}}).encode())
    yield st("st-offsets.safetensors", json.dumps({MARKER: {"dtype": "F16", "shape": [1],
                                                            "data_offsets": [MARKER]}}).encode())
    yield st("st-entry.safetensors", json.dumps({MARKER: MARKER}).encode())
    yield st("st-nodtype.safetensors", json.dumps({MARKER: {"shape": [1]}}).encode())
    yield st("st-escape.safetensors", b'{"a\\' + m + b'": 1}')
    yield st("st-utf8.safetensors", b'{"' + m + b'\xff\xfe": 1}')
    yield st("st-json.safetensors", b"{" + m + b"}")
    yield put("st-huge.safetensors", b"\xffZq7SECRE" + b"{}" * 40)

    def gguf(name: str, body: bytes, version: int = 3) -> tuple[Path, bytes]:
        return put(name, b"GGUF" + struct.pack("<I", version) + body + b"\0" * 64)

    def gstr(s: bytes) -> bytes:
        return struct.pack("<Q", len(s)) + s

    yield gguf("gguf-version.gguf", struct.pack("<QQ", 0, 0), version=PLANTED)
    yield gguf("gguf-counts.gguf", m[:8] + m[:8])
    yield gguf("gguf-keytype.gguf", struct.pack("<QQ", 0, 1) + gstr(m) + struct.pack("<I", PLANTED))
    yield gguf("gguf-arraytype.gguf", struct.pack("<QQ", 0, 1) + gstr(m) + struct.pack("<II", 9, PLANTED)
               + struct.pack("<Q", 1))
    yield gguf("gguf-strlen.gguf", struct.pack("<QQ", 0, 1) + m[:8] + m)
    yield gguf("gguf-dupkey.gguf", struct.pack("<QQ", 0, 2) + (gstr(m) + struct.pack("<IB", 0, 1)) * 2)
    yield gguf("gguf-align.gguf", struct.pack("<QQ", 0, 1) + gstr(b"general.alignment") + struct.pack("<II", 4, PLANTED))
    yield gguf("gguf-dims.gguf", struct.pack("<QQ", 1, 0) + gstr(m) + struct.pack("<I", PLANTED))
    yield gguf("gguf-negdim.gguf", struct.pack("<QQ", 1, 0) + gstr(m) + struct.pack("<IqIQ", 1, -PLANTED, 0, 0))
    yield gguf("gguf-type.gguf", struct.pack("<QQ", 1, 0) + gstr(m) + struct.pack("<IqIQ", 1, 32, PLANTED, 0))
    yield gguf("gguf-duptensor.gguf", struct.pack("<QQ", 2, 0) + (gstr(m) + struct.pack("<IqIQ", 1, 32, 0, 0)) * 2)

    zpath = folder / "zip-names.ckpt"
    with zipfile.ZipFile(zpath, "w") as zf:
        zf.writestr(f"{MARKER}/data.pkl", b"")
    yield zpath, zpath.read_bytes()
    zpath = folder / "zip-nopkl.ckpt"
    with zipfile.ZipFile(zpath, "w") as zf:
        zf.writestr(f"{MARKER}/other", m)
    yield zpath, zpath.read_bytes()
    pkl = state_dict_pickle([(MARKER, (4, 4), "f32")])
    zpath = folder / "zip-storage.ckpt"  # a state dict whose storage is not in the archive
    with zipfile.ZipFile(zpath, "w") as zf:
        zf.writestr(f"{MARKER}/data.pkl", pkl)
    yield zpath, zpath.read_bytes()
    zpath = folder / "zip-bad-member.ckpt"  # data.pkl damaged after the zip was written: a CRC error
    with zipfile.ZipFile(zpath, "w", compression=zipfile.ZIP_STORED) as zf:
        zf.writestr(f"{MARKER}/data.pkl", pkl)
    raw = bytearray(zpath.read_bytes())
    at = raw.index(pkl)
    raw[at + 2 : at + 6] = m[:4]
    yield put("zip-bad-member.ckpt", bytes(raw))

    yield put("pickle-opcode.pt", b"\x80\x02" + b"\xf7" + m)
    yield put("pickle-storage.pt", pickle.dumps({MARKER: 1}, protocol=2)[:-1] + b"c" + m + b"\nStorage\n.")
    storage = state_dict_pickle([(MARKER, (4, 4), "f16")]).replace(b"HalfStorage", b"Zq7SECRETq7")
    yield put("pickle-storage2.pt", storage)

    pipe = folder / "pipe"
    (pipe / "unet").mkdir(parents=True)
    (pipe / "model_index.json").write_text("{}")
    (pipe / "unet" / "diffusion_pytorch_model.safetensors").write_bytes(SECRET)
    yield pipe, SECRET


def test_no_error_quotes_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad"
    bad.mkdir()
    seen = 0
    for path, data in damaged_files(bad):
        info = detect(path)
        assert info.error, f"{path.name} was read: {info.kind}"
        assert_no_bytes(info.error, data, MARKER)
        for warning in info.warnings:
            assert_no_bytes(warning, data, MARKER)
        seen += 1
    assert seen >= 30


def test_no_scan_report_quotes_a_linked_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad"
    bad.mkdir()
    root = tmp_path / "models"
    (root / "checkpoints").mkdir(parents=True)
    files = list(damaged_files(bad))
    for path, _data in files:
        (root / "checkpoints" / path.name).symlink_to(path, target_is_directory=path.is_dir())
    reg = Registry(root)
    report = reg.scan()
    assert reg.entries() == []
    reasons = skipped(report)
    for path, data in files:
        reason = reasons[f"checkpoints/{path.name}"]
        assert_no_bytes(reason, data, MARKER)


def test_a_truncated_header_says_where_not_what(tmp_path: Path) -> None:
    """A GGUF string whose length runs past the end: the message has the offset, not the length read."""
    p = tmp_path / "cut.gguf"
    length = int.from_bytes(MARKER.encode()[:2], "little")  # 29018, more than the file holds
    p.write_bytes(b"GGUF" + struct.pack("<IQQ", 3, 0, 1) + struct.pack("<Q", length) + b"k" * 32)
    err = detect(p).error
    assert err is not None and "key 0 at offset 32" in err and str(length) not in err, err


def test_template_errors_do_not_quote_the_file(models_dir: Path) -> None:
    from sdrest.models.templates import TemplateError

    (models_dir / "presets" / "bad_json.json").write_text('{"steps": ' + MARKER + "}")
    (models_dir / "presets" / "bad_yaml.yaml").write_text(f"a: [{MARKER}\n")
    (models_dir / "prompts" / "bin.txt").write_bytes(MARKER.encode() + b"\xff\xfe")
    reg = Registry(models_dir)
    reg.scan()
    for tid in ("presets/bad_json", "presets/bad_yaml", "prompts/bin"):
        with pytest.raises(TemplateError) as caught:
            reg.read_template(tid)
        message = str(caught.value)
        assert MARKER not in message and "xff" not in message, message
        assert "line" in message or "byte" in message, message  # where, not what


def test_a_gguf_model_linked_in_is_listed(models_dir: Path, tmp_path: Path) -> None:
    """Every format is followed through a link, not only safetensors."""
    target = tmp_path / "vae.gguf"
    write_gguf(target, VAE4)
    (models_dir / "vae" / "linked.gguf").symlink_to(target)
    reg = Registry(models_dir)
    reg.scan()
    assert reg.get("vae/linked").kind == "vae"


def test_models_cli_reports_skipped_files_and_takes_links(models_dir: Path, secret: Path, elsewhere: Path,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    from sdrest.cli import main

    (models_dir / "lora" / "passwd.safetensors").symlink_to(secret)
    (models_dir / "lora" / "ink.safetensors").symlink_to(elsewhere / "loras" / "ink.safetensors")
    assert main(["models", str(models_dir)]) == 0
    captured = capsys.readouterr()
    assert "lora/ink " in captured.out and "passwd" not in captured.out
    assert "skipped lora/passwd.safetensors: not a model file" in captured.err
    assert_no_bytes(captured.err, SECRET)
    assert main(["models", str(models_dir), "--links", "inside", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert "lora/ink" not in {m["id"] for m in data["models"]}
    reasons = {s["rel_path"]: s["reason"] for s in data["skipped"]}
    assert "out of the models dir" in reasons["lora/ink.safetensors"]
    assert "out of the models dir" in reasons["lora/passwd.safetensors"]


def test_a_link_that_breaks_between_the_walk_and_the_read_does_not_stop_the_scan(models_dir: Path,
                                                                                 elsewhere: Path) -> None:
    target = elsewhere / "loras" / "ink.safetensors"
    (models_dir / "lora" / "ink.safetensors").symlink_to(target)

    def detect_after_removal(path: str) -> ModelInfo:
        if path.endswith("ink.safetensors"):
            target.unlink()  # the race: gone after the walk saw it
        return detect(path)

    reg = Registry(models_dir, detector=detect_after_removal)
    report = reg.scan()
    assert "lora/ink" not in ids(reg) and "lora/marblesh" in ids(reg)
    reason = skipped(report)["lora/ink.safetensors"]
    assert reason.startswith("not a model file: cannot read the file") and str(elsewhere) not in reason
