from __future__ import annotations

import random

import pytest

from shared.errors import InvalidRequest
from shared.templates import UnknownTemplate, get_template, load_templates


def test_the_shipped_templates_load_and_describe_their_params() -> None:
    templates = load_templates()
    assert {"txt2img", "img2img"} <= set(templates)
    schema = templates["txt2img"].schema()
    assert set(schema["properties"]) == {
        "prompt",
        "negative_prompt",
        "width",
        "height",
        "steps",
        "cfg",
        "seed",
        "sampler",
        "checkpoint",
    }
    assert schema["required"] == ["prompt"] and schema["additionalProperties"] is False
    assert "bind" not in schema["properties"]["width"]
    img2img = templates["img2img"].schema()
    assert {"image", "denoise"} <= set(img2img["properties"])
    assert img2img["properties"]["image"]["pattern"].startswith("^upload://")


def test_render_puts_every_param_in_its_places_with_defaults() -> None:
    graph, used = get_template("txt2img").render({"prompt": "a cat", "width": 768, "sampler": "ddim"})
    assert graph["6"]["inputs"]["text"] == "a cat"
    assert graph["5"]["inputs"]["width"] == 768 and graph["5"]["inputs"]["height"] == 512
    assert graph["3"]["inputs"]["sampler_name"] == "ddim"
    assert used["steps"] == 20 and used["negative_prompt"] == ""


def test_a_missing_seed_is_random_and_recorded() -> None:
    template = get_template("txt2img")
    graph, used = template.render({"prompt": "x"}, rng=random.Random(7))
    assert graph["3"]["inputs"]["seed"] == used["seed"] == random.Random(7).randrange(0, 2**53)
    _, other = template.render({"prompt": "x"})
    assert isinstance(other["seed"], int)


def test_every_bad_param_is_named() -> None:
    with pytest.raises(InvalidRequest) as caught:
        get_template("txt2img").render(
            {"prompt": "", "width": 13, "steps": "many", "cfg": True, "sampler": "magic", "colour": "red"}
        )
    pointers = [error.pointer for error in caught.value.errors]
    assert pointers == [
        "/params/colour",
        "/params/prompt",
        "/params/width",
        "/params/width",
        "/params/steps",
        "/params/cfg",
        "/params/sampler",
    ]
    assert "width must be at least 64" in caught.value.detail


def test_required_params_and_upload_refs() -> None:
    with pytest.raises(InvalidRequest) as caught:
        get_template("img2img").render({"image": "cat.png"})
    messages = {error.pointer: error.message for error in caught.value.errors}
    assert messages["/params/prompt"] == "is required"
    assert "upload reference" in messages["/params/image"]


def test_the_rendered_template_does_not_change_the_template() -> None:
    template = get_template("txt2img")
    template.render({"prompt": "first"})
    assert template.workflow["6"]["inputs"]["text"] == ""


def test_unknown_templates_are_a_404_naming_the_known_ones() -> None:
    with pytest.raises(UnknownTemplate, match="txt2img") as caught:
        get_template("nope")
    assert caught.value.status == 404
