"""A real uvicorn on a loopback port, real SQLite under tmp_path, real HTTP with httpx.

``fake_server`` runs the queue with a stand-in runner (no native work: fast and
deterministic for queue mechanics); ``real_server`` (module-scoped) runs the
synthetic SD1 model and friends through the real workers.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

sys.path.insert(0, str(Path(__file__).parent))  # the helpers module beside this file

from server_live import AUTH_USERS, FakeRunner, LiveServer, add_users, client_as, login, make_config

from sdrest.server.app import create_app

SD1_LORA = [
    ("lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn2_to_k.lora_down.weight", (4, 768)),
    ("lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn2_to_k.lora_up.weight", (320, 4)),
]
ESRGAN_X4 = [("conv_first.weight", (64, 3, 3, 3)), ("body.0.rdb1.conv1.weight", (32, 64, 3, 3)),
             ("body.22.rdb1.conv1.weight", (32, 64, 3, 3)), ("conv_last.weight", (3, 64, 3, 3)),
             ("conv_up1.weight", (64, 64, 3, 3)), ("conv_up2.weight", (64, 64, 3, 3))]
SD1_CONTROLNET = [("control_model.input_hint_block.0.weight", (16, 3, 3, 3)),
                  ("control_model.zero_convs.0.0.weight", (320, 320, 1, 1)),
                  ("control_model.input_blocks.4.1.transformer_blocks.0.attn2.to_k.weight", (640, 768)),
                  ("control_model.middle_block_out.0.weight", (1280, 1280, 1, 1))]
FLUX_VAE = [("decoder.conv_in.weight", (512, 16, 3, 3)), ("decoder.mid.block_1.conv1.weight", (512, 512, 3, 3))]
CLIP_L = [("text_model.embeddings.token_embedding.weight", (49408, 768)),
          ("text_model.encoder.layers.0.mlp.fc1.weight", (3072, 768))]


def write_model(root: Path, rel: str, specs: list) -> Path:
    """A header-only (sparse) safetensors model at ``root/rel``."""
    from sdrest.testing.headers import write_safetensors

    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    write_safetensors(path, specs)
    return path


def write_flux(root: Path, rel: str = "diffusion_models/flux-dev.safetensors") -> Path:
    """A header-only standalone Flux diffusion model (it needs a VAE, CLIP-L and T5-XXL beside it)."""
    from sdrest.testing.signatures import SIGNATURES, bare

    return write_model(root, rel, bare(SIGNATURES["Flux"]))


@pytest.fixture
def fake_models(tmp_path: Path) -> Path:
    """A models dir of header-only files the registry classifies (the fake runner never reads the data)."""
    from sdrest.testing.signatures import SIGNATURES

    root = tmp_path / "models"
    for rel, specs in (("checkpoints/fake.safetensors", SIGNATURES["SD 1.x"]),
                       ("checkpoints/other.safetensors", SIGNATURES["SD 1.x"]), ("lora/style.safetensors", SD1_LORA),
                       ("esrgan/x4.safetensors", ESRGAN_X4), ("controlnet/canny.safetensors", SD1_CONTROLNET)):
        write_model(root, rel, specs)
    return root


@pytest.fixture
def fake_runner() -> FakeRunner:
    return FakeRunner()


@pytest.fixture
def fake_server(tmp_path: Path, fake_models: Path, fake_runner: FakeRunner, request: pytest.FixtureRequest
                ) -> Iterator[LiveServer]:
    """A live server whose workers run :class:`FakeRunner`; a test module's ``SERVER_SETTINGS`` dict
    overrides config fields."""
    settings = getattr(request.module, "SERVER_SETTINGS", {})
    with LiveServer(create_app(make_config(tmp_path, fake_models, **settings), runner=fake_runner)) as live:
        yield live


# -- the real models ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def real_server(tmp_path_factory: pytest.TempPathFactory, synthetic_models: Path) -> Iterator[LiveServer]:
    """One live server with the real runner, shared by a test module (the model loads once)."""
    tmp = tmp_path_factory.mktemp("server")
    with LiveServer(create_app(make_config(tmp, synthetic_models), )) as live:
        yield live


# -- auth ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def auth_server(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> Iterator[LiveServer]:
    """One live server with auth on (``auth jwt`` unless the module's ``AUTH_SETTINGS`` says otherwise) and the
    users of :data:`server_live.AUTH_USERS`, running :class:`FakeRunner`; shared by the test module."""
    from sdrest.testing.signatures import SIGNATURES

    tmp = tmp_path_factory.mktemp("auth")
    models = tmp / "models"
    write_model(models, "checkpoints/fake.safetensors", SIGNATURES["SD 1.x"])
    write_model(models, "esrgan/x4.safetensors", ESRGAN_X4)
    settings = {"auth": "jwt", **getattr(request.module, "AUTH_SETTINGS", {})}
    config = make_config(tmp, models, **settings)
    add_users(config.data_dir, AUTH_USERS)
    runner = FakeRunner()
    with LiveServer(create_app(config, runner=runner)) as live:
        live.runner = runner
        yield live


@pytest.fixture(scope="module")
def clients(auth_server: LiveServer) -> Iterator[dict[str, httpx.Client]]:
    """A logged-in client of :func:`auth_server` per user."""
    made = {name: client_as(auth_server, login(auth_server, name)["access_token"]) for name in ("admin", "alice", "bob")}
    yield made
    for client in made.values():
        client.close()
