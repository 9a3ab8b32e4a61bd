"""Where the model cache lives on a GPU instance, decided at synth time (no synthesis needed here)."""

from __future__ import annotations

import pytest

from infra.config import ConfigError, ServiceConfig
from infra.models import (
    CACHE_VOLUME_DEVICE,
    CONTAINER_CACHE_PATH,
    cache_block_device,
    cache_boot_commands,
    cache_environment,
    needs_cache_volume,
)


@pytest.mark.parametrize(
    ("instance_types", "volume"),
    [
        (("g5.xlarge",), False),
        (("g6.2xlarge", "g6e.xlarge", "g4dn.xlarge"), False),
        (("g5.xlarge", "g5g.xlarge"), True),  # Graviton g5g has no instance store
        (("p3.2xlarge",), True),
    ],
)
def test_a_gp3_volume_is_added_only_when_an_instance_type_has_no_nvme_store(
    instance_types: tuple[str, ...], volume: bool
) -> None:
    assert needs_cache_volume(instance_types) is volume
    device = cache_block_device(ServiceConfig(), instance_types)
    assert (device is not None) is volume
    if device is not None:
        assert device.device_name == CACHE_VOLUME_DEVICE


def test_the_boot_unit_mounts_the_store_each_boot_and_writes_comfyuis_model_paths() -> None:
    script = "\n".join(cache_boot_commands(ServiceConfig(comfyui_user="1000:1000")))
    assert "Instance Storage" in script and CACHE_VOLUME_DEVICE in script
    assert "systemctl enable --now comfy-model-cache.service" in script
    assert "Before=ecs.service" in script
    assert f"base_path: {CONTAINER_CACHE_PATH}" in script and "  loras: loras" in script
    assert "chown 1000:1000" in script


def test_the_cache_budget_and_warm_up_reach_the_runner() -> None:
    config = ServiceConfig(model_cache_gib=50, warmup_workflow="txt2img")
    assert cache_environment(config) == {
        "MODEL_CACHE_DIR": CONTAINER_CACHE_PATH,
        "MODEL_CACHE_BYTES": str(50 * 1024**3),
        "WARMUP_WORKFLOW": "txt2img",
    }


@pytest.mark.parametrize(
    "context",
    [
        {"modelCacheGiB": 0},
        {"modelCacheGiB": 300},
        {"modelsPrefix": "/models"},
        {"modelsBucket": "Bad_Bucket"},
    ],
)
def test_bad_model_settings_are_refused(context: dict[str, object]) -> None:
    with pytest.raises(ConfigError):
        ServiceConfig.from_mapping(context).validate()
