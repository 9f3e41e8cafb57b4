"""Model zoo: key/shape equality with the reference inventory, sizes, counts, reference dataflow."""

from __future__ import annotations

import math

import pytest
import torch

from refinenet_deploy.models import create_model, list_models, model_shapes
from refinenet_deploy.models.complexity import conv_gmac, count_parameters

from .reference_forward import lw_resnet_forward, mbv2_forward, refinenet_forward

PARAMS_21 = {
    "rf_lw50": 27_357_525,
    "rf_lw101": 46_349_653,
    "rf_lw152": 61_993_301,
    "rf_lw_mbv2": 3_284_565,
    "rf101": 118_052_437,
}
GMAC_512 = {"rf_lw50": 31.98, "rf_lw101": 51.37, "rf_lw152": 70.77, "rf_lw_mbv2": 8.58, "rf101": 262.90}


@pytest.mark.parametrize("name", sorted(PARAMS_21))
def test_state_dict_equals_reference_inventory(name: str, inventory: dict) -> None:
    ours = model_shapes(name, 21)
    ref = {k: tuple(v) for k, v in inventory[name].items()}
    assert list(ours) == list(ref)  # same keys in the same order
    assert ours == ref


@pytest.mark.parametrize("name", sorted(PARAMS_21))
def test_parameter_count_and_gmac(name: str) -> None:
    with torch.device("meta"):
        model = create_model(name, num_classes=21)
    assert count_parameters(model) == PARAMS_21[name]
    assert conv_gmac(model, 512, 512) == pytest.approx(GMAC_512[name], abs=0.01)


def test_registry_lists_the_zoo() -> None:
    names = list_models()
    for expected in (
        "rf_lw50",
        "rf_lw101",
        "rf_lw152",
        "rf_lw_mbv2",
        "rf50",
        "rf101",
        "rf152",
        "rf101_single",
        "rf101_cascade2",
        "rf101_2scale",
    ):
        assert expected in names
    assert "rf_lw_test" not in names and "rf_lw_test" in list_models(include_test=True)
    assert list_models("rf_lw*") == ["rf_lw101", "rf_lw152", "rf_lw50", "rf_lw_mbv2"]


def test_num_classes_only_changes_the_classifier() -> None:
    a, b = model_shapes("rf_lw_mbv2", 21), model_shapes("rf_lw_mbv2", 7)
    diff = {k for k in a if a[k] != b[k]}
    assert diff == {"segm.weight", "segm.bias"}
    assert b["segm.weight"][0] == 7


SIZES = [(33, 47), (375, 500), (64, 64), (468, 625)]


@pytest.mark.parametrize(
    "name,kwargs",
    [
        ("rf_lw_test", {}),
        ("rf_lw_mbv2_test", {}),
        ("rf_test", {}),
        ("rf_test", {"cascade": "2"}),
        ("rf_test", {"cascade": "1"}),
        ("rf_test", {"two_scale": True}),
    ],
)
def test_output_is_quarter_resolution_at_any_size(name: str, kwargs: dict) -> None:
    model = create_model(name, num_classes=5, **kwargs).eval()
    for h, w in SIZES:
        with torch.no_grad():
            y = model(torch.randn(1, 3, h, w))
        assert tuple(y.shape) == (1, 5, math.ceil(h / 4), math.ceil(w / 4))
        assert torch.isfinite(y).all()


@pytest.mark.parametrize("name", ["rf_lw50", "rf_lw_mbv2", "rf101_single", "rf101_cascade2"])
def test_full_size_models_at_odd_size(name: str) -> None:
    model = create_model(name, num_classes=21).eval()
    with torch.no_grad():
        y = model(torch.randn(1, 3, 33, 47))
    assert tuple(y.shape) == (1, 21, 9, 12)


@pytest.mark.slow
def test_two_scale_full_model_at_odd_size() -> None:
    model = create_model("rf101_2scale", num_classes=21).eval()
    with torch.no_grad():
        assert tuple(model(torch.randn(1, 3, 47, 33)).shape) == (1, 21, 12, 9)


def randomize(model: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """Random weights *and* BN statistics, scaled so activations stay O(1) through deep nets."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, t in model.state_dict().items():
            if not t.is_floating_point():
                continue
            if name.endswith("running_var"):
                t.copy_(torch.rand(t.shape, generator=g) + 0.5)
            elif name.endswith(("running_mean", "bias")):
                t.copy_(torch.randn(t.shape, generator=g) * 0.1)
            elif t.ndim == 1:  # BN weight
                t.copy_(torch.rand(t.shape, generator=g) * 0.5 + 0.5)
            else:
                fan_in = t[0].numel()
                t.copy_(torch.randn(t.shape, generator=g) * (1.0 / fan_in) ** 0.5)
    return model.eval()


@pytest.mark.parametrize(
    "name,ref",
    [
        ("rf_lw50", lambda sd, x: lw_resnet_forward(sd, x, (3, 4, 6, 3))),
        ("rf_lw_mbv2", mbv2_forward),
        ("rf_lw_test", lambda sd, x: lw_resnet_forward(sd, x, (1, 1, 1, 1))),
        ("rf_test", lambda sd, x: refinenet_forward(sd, x, (1, 1, 1, 1))),
        pytest.param("rf101", lambda sd, x: refinenet_forward(sd, x, (3, 4, 23, 3)), marks=pytest.mark.slow),
    ],
)
def test_matches_reference_dataflow(name: str, ref) -> None:
    model = randomize(create_model(name, num_classes=21))
    sd = model.state_dict()
    x = torch.randn(1, 3, 75, 101, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        ours, theirs = model(x), ref(sd, x)
    assert ours.shape == theirs.shape == (1, 21, 19, 26)
    scale = theirs.abs().max().item()
    assert scale > 1e-3  # the comparison is not between two zero tensors
    torch.testing.assert_close(ours, theirs, rtol=1e-4, atol=1e-5 * scale)
