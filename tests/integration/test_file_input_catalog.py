"""The runner reads its ComfyUI's file inputs and publishes them to the bucket; the API reads them back."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from gpu_runner.catalog import CatalogKeeper
from gpu_runner.cleanup import ComfyFolders
from gpu_runner.comfy import ComfyClient
from local.comfyui_sim import SimulatorServer
from shared.aws.catalog import CachedCatalog, CatalogStore
from shared.file_inputs import FileInputCatalog


def test_the_runner_publishes_what_its_comfyui_reads_and_leaves_no_probe_behind(
    moto_aws: Any, tmp_path: Path
) -> None:
    clients, resources = moto_aws
    store = CatalogStore(clients.s3, resources.bucket)
    store.publish(FileInputCatalog(file_inputs={"Stale": ("x",)}))
    data = tmp_path / "comfy"
    folders = ComfyFolders({kind: data / kind for kind in ("input", "output", "temp")})

    async def read_twice() -> tuple[FileInputCatalog, bool]:
        comfy = ComfyClient(sim.url)
        await comfy.start()
        try:
            assert await comfy.wait_connected(5)
            keeper = CatalogKeeper(comfy, store, folders)
            first = await keeper.refresh()
            again = await keeper.refresh()
            assert again is first
            return first, keeper.ready
        finally:
            await comfy.close()

    with SimulatorServer(data_dir=data, step_delay=0.01) as sim:
        catalog, ready = asyncio.run(read_twice())
    assert ready
    assert catalog.file_inputs == {"LoadImage": ("image",)}
    assert {"SaveImage", "PreviewImage", "SaveImageWebsocket"} <= catalog.output_classes
    assert catalog.prefix_inputs == {"SaveImage": "filename_prefix"}
    assert store.read() == catalog
    assert store.publish(catalog) is False  # the same catalog is not written again
    assert [p for p in data.rglob("*") if "probe" in p.name] == []


def test_the_api_sees_a_new_catalog_at_once_and_a_changed_one_after_its_cache_time(moto_aws: Any) -> None:
    clients, resources = moto_aws
    store = CatalogStore(clients.s3, resources.bucket)
    now = [0.0]
    cached = CachedCatalog(store, ttl_seconds=60, clock=lambda: now[0])
    assert cached.get() is None
    first = FileInputCatalog(file_inputs={"LoadImage": ("image",)})
    store.publish(first)
    assert cached.get() == first  # a missing catalog is never cached
    second = FileInputCatalog(file_inputs={"LoadImage": ("image",), "LoadAudio": ("audio",)})
    store.publish(second)
    assert cached.get() == first
    now[0] = 61
    assert cached.get() == second
