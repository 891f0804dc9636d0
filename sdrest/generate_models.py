"""Which files ``sdrest generate -m MODEL`` loads: a path as given, or a model of the models dir with its companions."""

from __future__ import annotations

import os
from typing import Optional

from sdrest.models.companions import resolve
from sdrest.models.detect import detect
from sdrest.models.registry import Registry

__all__ = ["default_models_dir", "resolve_model_files"]


def default_models_dir() -> Optional[str]:
    """``$SDREST_MODELS_DIR``, else ``./models`` when it exists, else None."""
    env = os.environ.get("SDREST_MODELS_DIR")
    if env:
        return env
    return "models" if os.path.isdir("models") else None


def _from_registry(name: str, models_dir: Optional[str], argument: str) -> dict[str, str]:
    if not models_dir or not os.path.isdir(models_dir):
        where = f" and {models_dir!r} is not a folder" if models_dir else " (no --models-dir to look in)"
        raise FileNotFoundError(f"{argument}: no such file: {name!r}{where}")
    registry = Registry(models_dir)
    registry.scan()
    try:
        found = resolve(registry, name)
    except KeyError as exc:
        message = exc.args[0] if exc.args else str(exc)
        raise FileNotFoundError(f"{argument}: no such file, and {message} in {models_dir!r}") from None
    if found.missing:
        raise ValueError(f"{argument}: {found.model.id} needs {', '.join(found.missing)}, and {models_dir!r} has none "
                         f"that fits (give them with --{' --'.join(found.missing)})")
    return {key.removesuffix("_path"): path for key, path in found.sd_params().items()}


def resolve_model_files(model: Optional[str], diffusion_model: Optional[str],
                        models_dir: Optional[str]) -> dict[str, str]:
    """``StableDiffusion`` file keywords for ``-m``/``--diffusion-model``.

    A path is used as it is; ``-m`` of a file whose header says it is a bare diffusion
    model (Flux, Wan, ...) loads as ``diffusion_model``. A name that is not a file is a
    model id or name in ``models_dir``: it loads the way detection says, with the
    companions (VAE, text encoders) the registry finds for it.
    """
    if not model and not diffusion_model:
        raise ValueError("model: give a model: -m FILE, or -m NAME of a model in --models-dir")
    files: dict[str, str] = {}
    if model:
        if os.path.exists(model):
            info = detect(model)
            files["diffusion_model" if info.error is None and info.load_as == "diffusion_model" else "model"] = model
        else:
            files.update(_from_registry(model, models_dir, "model"))
    if diffusion_model:
        if os.path.exists(diffusion_model):
            files["diffusion_model"] = diffusion_model
        else:
            found = _from_registry(diffusion_model, models_dir, "diffusion_model")
            main = found.pop("diffusion_model", "") or found.pop("model")
            files["diffusion_model"] = main
            for key, path in found.items():
                files.setdefault(key, path)
    return files
