"""File inputs come from ComfyUI's /object_info; they may only name the job's own upload:// objects."""

from __future__ import annotations

from typing import Any

import pytest

from gpu_runner.staging import confine_outputs
from shared.file_inputs import JOB_MARKER_INPUT, FileInputCatalog, catalog_from_object_info, file_input_errors

PROBE = "comfy-api-probe-0123abcd"

# As ComfyUI 0.3.64's /object_info answers (inputs only), with probe files placed in its input folder.
OBJECT_INFO: dict[str, Any] = {
    "LoadImage": {"input": {"required": {"image": [[f"{PROBE}.png"], {"image_upload": True}]}}},
    "LoadImageMask": {
        "input": {
            "required": {
                "image": [[f"{PROBE}.png"], {"image_upload": True}],
                "channel": [["alpha", "red", "green", "blue"]],
            }
        }
    },
    "LoadImageOutput": {
        "input": {
            "required": {
                "image": [
                    "COMBO",
                    {
                        "image_upload": True,
                        "image_folder": "output",
                        "remote": {"route": "/internal/files/output"},
                    },
                ]
            }
        }
    },
    "LoadAudio": {"input": {"required": {"audio": [[f"{PROBE}.wav"], {"audio_upload": True}]}}},
    "LoadVideo": {
        "input": {"required": {"file": ["COMBO", {"options": [f"{PROBE}.mp4"], "video_upload": True}]}}
    },
    "Load3D": {
        "input": {"required": {"model_file": [[], {"file_upload": True}], "width": ["INT", {"default": 1}]}}
    },
    "LoadLatent": {"input": {"required": {"latent": [[f"{PROBE}.latent"]]}}},
    "LoadImageSetFromFolderNode": {"input": {"required": {"folder": [[PROBE], {}]}}},
    "CheckpointLoaderSimple": {"input": {"required": {"ckpt_name": [["v1-5.safetensors"], {}]}}},
    "LoraLoader": {"input": {"required": {"lora_name": [[]], "strength_model": ["FLOAT", {}]}}},
    "SaveImage": {
        "output_node": True,
        "input": {"required": {"images": ["IMAGE"], "filename_prefix": ["STRING", {"default": "ComfyUI"}]}},
    },
    "PreviewImage": {"output_node": True, "input": {"required": {"images": ["IMAGE"]}}},
    "SaveAudio": {
        "output_node": True,
        "input": {
            "required": {"audio": ["AUDIO"], "filename_prefix": ["STRING", {"default": "audio/ComfyUI"}]}
        },
    },
}


def test_file_inputs_are_read_from_upload_flags_folders_and_folder_listings_not_models() -> None:
    catalog = catalog_from_object_info(OBJECT_INFO, PROBE)
    assert catalog.file_inputs == {
        "LoadImage": ("image",),
        "LoadImageMask": ("image",),
        "LoadImageOutput": ("image",),
        "LoadAudio": ("audio",),
        "LoadVideo": ("file",),
        "Load3D": ("model_file",),
        "LoadLatent": ("latent",),
        "LoadImageSetFromFolderNode": ("folder",),
    }
    assert catalog.output_classes == {"SaveImage", "PreviewImage", "SaveAudio"}
    assert catalog.prefix_inputs == {"SaveImage": "filename_prefix", "SaveAudio": "filename_prefix"}
    assert FileInputCatalog.from_json(catalog.to_json()) == catalog


@pytest.mark.parametrize(
    "value",
    [
        "ComfyUI_00001_.png [output]",
        "../output/ComfyUI_00001_.png",
        "/etc/passwd",
        "ComfyUI_temp_abcde_00001_.png [temp]",
        "example.png",
        "upload://not valid!",
        ["9", 0],
        42,
    ],
)
def test_a_file_input_naming_anything_but_an_upload_is_refused_with_node_and_input(value: Any) -> None:
    catalog = catalog_from_object_info(OBJECT_INFO, PROBE)
    workflow = {
        "1": {"class_type": "LoadImage", "inputs": {"image": value}},
        "2": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "v1-5.safetensors"}},
    }
    [error] = file_input_errors(workflow, catalog)
    assert (error.node_id, error.input, error.pointer) == ("1", "image", "/workflow/1/inputs/image")
    assert "input 'image' of node 1 (LoadImage)" in error.message


def test_an_upload_reference_and_a_model_name_pass() -> None:
    catalog = catalog_from_object_info(OBJECT_INFO, PROBE)
    workflow = {
        "1": {"class_type": "LoadImage", "inputs": {"image": "upload://abcdefgh12345678"}},
        "2": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "v1-5.safetensors"}},
        "3": {"class_type": "LoraLoader", "inputs": {"lora_name": "../output/x [output]"}},
    }
    assert file_input_errors(workflow, catalog) == []


def test_output_nodes_save_in_the_job_folder_and_carry_its_name_so_the_cache_cannot_serve_them() -> None:
    catalog = catalog_from_object_info(OBJECT_INFO, PROBE)
    graph: dict[str, Any] = {
        "1": {
            "class_type": "SaveImage",
            "inputs": {"images": ["3", 0], "filename_prefix": "../../x/portrait"},
        },
        "2": {"class_type": "PreviewImage", "inputs": {"images": ["3", 0]}},
        "3": {"class_type": "EmptyImage", "inputs": {}},
        "4": {"class_type": "SaveAudio", "inputs": {"audio": ["3", 0], "filename_prefix": ["5", 0]}},
    }
    confine_outputs(graph, catalog, "job-feed")
    assert graph["1"]["inputs"]["filename_prefix"] == "job-feed/portrait"
    assert graph["4"]["inputs"]["filename_prefix"] == "job-feed/ComfyUI"
    assert graph["2"]["inputs"][JOB_MARKER_INPUT] == "job-feed"
    assert JOB_MARKER_INPUT not in graph["3"]["inputs"]
