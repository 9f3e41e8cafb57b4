"""The parity engine's own logic, with test-double runners returning hand-made logits."""

from __future__ import annotations

import numpy as np
import pytest

from refinenet_deploy.errors import UsageError
from refinenet_deploy.validate.parity_engine import Gates, InputPolicy, ParityEngine


class FixedRunner:
    """Test double: returns the same logits for every input (labelled fake, not a backend)."""

    def __init__(self, logits: np.ndarray) -> None:
        self.logits = logits

    def infer(self, inputs: dict) -> dict:
        return {"logits": self.logits}


def _logits(classes: np.ndarray, num_classes: int = 3) -> np.ndarray:
    out = np.zeros((1, num_classes, *classes.shape), np.float32)
    for c in range(num_classes):
        out[0, c][classes == c] = 5.0
    return out


def _engine(ref_cls: np.ndarray, back_cls: np.ndarray, **kw) -> ParityEngine:
    """Engines over class-map-like logits that differ on purpose: judged as INT8 unless a test says otherwise (an
    FP32 run would also fail the FP32 logits gate, tested on its own below)."""
    kw.setdefault("precision", "int8")
    return ParityEngine(
        FixedRunner(_logits(ref_cls)),
        FixedRunner(_logits(back_cls)),
        num_classes=3,
        class_names=("a", "b", "c"),
        preprocess=lambda im: im.transpose(2, 0, 1).astype(np.float32),
        policy=InputPolicy(),
        **kw,
    )


def test_agreement_and_drop_by_hand() -> None:
    ref = np.array([[0, 0, 1, 1], [0, 0, 1, 1], [2, 2, 2, 2], [2, 2, 2, 2]])
    back = ref.copy()
    back[0, 2] = 0  # one pixel of class 1 predicted as 0
    label = ref.copy()
    engine = _engine(ref, back, gates=Gates(max_miou_drop=100.0, min_agreement=0.9))
    engine.add("img", np.zeros((4, 4, 3), np.uint8), label.astype(np.uint8))
    r = engine.report()
    assert r.reference_miou == pytest.approx(1.0)
    # backend: class0 IoU 4/5, class1 IoU 3/4, class2 IoU 1
    assert r.backend_miou == pytest.approx((4 / 5 + 3 / 4 + 1) / 3)
    assert r.miou_drop_points == pytest.approx((1 - (4 / 5 + 3 / 4 + 1) / 3) * 100)
    assert r.agreement.pixel == pytest.approx(15 / 16)
    assert r.agreement.miou == pytest.approx((4 / 5 + 3 / 4 + 1) / 3)
    assert r.agreement.boundary < 1.0  # the flipped pixel sits on the 0|1 boundary
    assert r.logit_max_abs_error == pytest.approx(5.0)
    assert r.passed


def test_fp32_logits_gate_uses_the_export_tolerance_per_image() -> None:
    ref = np.array([[0, 0, 1, 1], [0, 0, 1, 1], [2, 2, 2, 2], [2, 2, 2, 2]])
    image, label = np.zeros((4, 4, 3), np.uint8), ref.astype(np.uint8)

    def run(delta: float, precision: str):  # noqa: ANN202
        logits = _logits(ref)
        noisy = logits.copy()
        noisy[0, 0, 0, 0] += delta
        engine = ParityEngine(
            FixedRunner(logits),
            FixedRunner(noisy),
            num_classes=3,
            class_names=("a", "b", "c"),
            preprocess=lambda im: im.transpose(2, 0, 1).astype(np.float32),
            policy=InputPolicy(),
            precision=precision,
        )
        engine.add("img", image, label)
        return engine.report()

    for delta, passed in ((1e-4, True), (2e-3, False)):  # bound: 1e-4 + 1e-5 x 5.0 = 1.5e-4
        r = run(delta, "fp32")
        assert r.agreement.pixel == 1.0 and r.passed is passed, (delta, r.failed_gates)
        assert r.logit_gate["bound_there"] == pytest.approx(1.5e-4) and r.logit_gate["passed"] is passed
    r = run(2e-3, "int8")
    assert r.passed and r.logit_gate is None  # lower precisions: segmentation gates only


def test_gates_fail_with_the_amount() -> None:
    ref = np.zeros((4, 4), int)
    back = ref.copy()
    back[:2] = 1
    engine = _engine(ref, back, gates=Gates(max_miou_drop=1.0, min_agreement=0.99))
    engine.add("img", np.zeros((4, 4, 3), np.uint8), ref.astype(np.uint8))
    r = engine.report()
    assert not r.passed and len(r.failed_gates) == 2
    assert r.failed_gates[0].startswith("mIoU drop 75.000 pt > max 1.000 pt (by 74.000 pt)")
    assert "pixel agreement 50.0000% < min 99.0000%" in r.failed_gates[1]


def test_unexpected_improvement_fails_the_two_sided_gate() -> None:
    ref = np.zeros((2, 2), int)
    label = np.array([[0, 1], [1, 1]])
    engine = _engine(ref, label, gates=Gates(max_miou_drop=1.0, min_agreement=0.0))
    engine.add("img", np.zeros((2, 2, 3), np.uint8), label.astype(np.uint8))
    r = engine.report()
    assert r.miou_drop_points < 0 and any("unexpected gain" in g for g in r.failed_gates)


def test_no_labels_gives_agreement_only() -> None:
    ref = np.array([[0, 1], [2, 2]])
    engine = _engine(ref, ref)
    engine.add("img", np.zeros((2, 2, 3), np.uint8), None)
    r = engine.report()
    assert r.reference_miou is None and r.miou_drop_points is None
    assert r.agreement.pixel == 1.0 and r.passed is None and not r.failed_gates  # mIoU gate: not evaluated
    assert r.to_dict()["reference_miou"] is None


def test_save_worst_keeps_the_k_lowest() -> None:
    ref = np.zeros((4, 4), int)
    engine = _engine(ref, ref, save_worst=2, gates=Gates(100, 0))
    for i, n_bad in enumerate([0, 5, 1, 9]):
        back = ref.copy().ravel()
        back[:n_bad] = 1
        engine.backend = FixedRunner(_logits(back.reshape(4, 4)))
        engine.add(f"img{i}", np.zeros((4, 4, 3), np.uint8), None)
    assert [r.name for r in engine.worst_records()] == ["img3", "img1"]


def test_tta_rejected_for_class_map_head_and_static_size() -> None:
    ref = np.zeros((2, 2), int)
    with pytest.raises(UsageError, match="need logits"):
        ParityEngine(
            FixedRunner(ref),
            FixedRunner(ref),
            num_classes=3,
            class_names="abc",
            preprocess=lambda x: x,
            policy=InputPolicy(head="argmax"),
            flip=True,
        )
    with pytest.raises(UsageError, match="dynamic-shape"):
        ParityEngine(
            FixedRunner(ref),
            FixedRunner(ref),
            num_classes=3,
            class_names="abc",
            preprocess=lambda x: x,
            policy=InputPolicy(static_size=(8, 8)),
            scales=(0.5, 1.0),
        )


class RecordingRunner:
    """Test double: records every input it receives and returns logits equal to the input (3 channels =
    3 classes), so predictions follow the image's content through any resize or mirror."""

    def __init__(self, bias: np.ndarray | None = None) -> None:
        self.seen: list[np.ndarray] = []
        self.bias = bias  # optional (3, W) position-dependent offset, added whatever the input is

    def infer(self, inputs: dict) -> dict:
        x = next(iter(inputs.values()))
        self.seen.append(x.copy())
        out = x.astype(np.float32)
        if self.bias is not None:
            out = out + self.bias[None, :, None, :]
        return {"logits": out}


def _content_engine(reference, backend, **kw) -> ParityEngine:
    return ParityEngine(
        reference,
        backend,
        num_classes=3,
        class_names=("a", "b", "c"),
        preprocess=lambda im: im.transpose(2, 0, 1).astype(np.float32),
        policy=InputPolicy(),
        gates=Gates(100, 0),
        **kw,
    )


def _striped_image(h: int, w: int) -> np.ndarray:
    """Vertical stripes of classes 0, 1, 2 (channel c = 100 where the class is c): not mirror-symmetric."""
    classes = (np.arange(w) * 3 // w)[None, :].repeat(h, 0)
    return (np.eye(3)[classes] * 100).astype(np.uint8)


def test_tta_runs_every_scale_plain_and_mirrored() -> None:
    ref, back = RecordingRunner(), RecordingRunner()
    engine = _content_engine(ref, back, scales=(0.5, 1.0, 1.5), flip=True)
    image = _striped_image(32, 48)
    engine.add("img", image, None)
    want = [(16, 24), (16, 24), (32, 48), (32, 48), (48, 72), (48, 72)]  # each scale, plain then mirrored
    for runner in (ref, back):
        assert [x.shape[-2:] for x in runner.seen] == want
        assert all(x.shape[:2] == (1, 3) for x in runner.seen)
        for plain, mirrored in zip(runner.seen[::2], runner.seen[1::2]):
            assert not np.array_equal(plain, mirrored)
            np.testing.assert_array_equal(mirrored, plain[..., ::-1])
    np.testing.assert_array_equal(ref.seen[2][0], image.transpose(2, 0, 1))  # scale 1.0: the image itself
    r = engine.report()
    assert r.tta == {"scales": [0.5, 1.0, 1.5], "flip": True} and r.agreement.pixel == 1.0


def test_flip_tta_changes_the_prediction() -> None:
    """A backend with a left/right bias on class 2 (+150 at the left edge, -150 at the right): mirrored TTA
    cancels it, a single unflipped pass does not (the engine's minimum input side is 16 px)."""
    w = 24
    bias = np.zeros((3, w), np.float32)
    bias[2] = ((w - 1) / 2 - np.arange(w)) * (150 / ((w - 1) / 2))  # +150 ... -150, antisymmetric
    image = _striped_image(16, w)
    label = image.argmax(2).astype(np.uint8)
    plain = _content_engine(RecordingRunner(), RecordingRunner(bias))
    plain.add("img", image, label)
    with_flip = _content_engine(RecordingRunner(), RecordingRunner(bias), flip=True)
    with_flip.add("img", image, label)
    p, f = plain.report(), with_flip.report()
    assert p.reference_miou == pytest.approx(1.0) == f.reference_miou
    # unflipped: the bias turns the left edge into class 2 and the right edge out of it
    assert p.agreement.pixel == pytest.approx(16 / 24) and p.backend_miou < 0.9
    assert f.agreement.pixel == 1.0 and f.backend_miou == pytest.approx(1.0)  # flip TTA: bias cancelled
    assert p.logit_max_abs_error == pytest.approx(150.0) == f.logit_max_abs_error  # measured at scale 1 unflipped


@pytest.mark.parametrize(
    ("src", "dst"),
    [((8, 8), (32, 32)), ((7, 13), (40, 52)), ((33, 17), (9, 5)), ((5, 5), (5, 9)), ((1, 1), (3, 3)),
     ((16, 16), (15, 17)), ((3, 4), (1, 1)), ((10, 12), (10, 12)), ((31, 45), (125, 181))],
)  # fmt: skip
def test_numpy_bilinear_matches_torch_interpolate(src: tuple[int, int], dst: tuple[int, int]) -> None:
    """The NumPy resize parity uses (so that it runs without PyTorch) against torch's bilinear, align_corners=False,
    on random logits: up, down, odd and mixed sizes; equal within float32 rounding of the values' magnitude."""
    torch = pytest.importorskip("torch")
    from refinenet_deploy.models.layers import upsample_logits
    from refinenet_deploy.validate.resize import upsample_bilinear

    rng = np.random.default_rng(sum(src) * 31 + sum(dst))
    x = (rng.standard_normal((1, 5, *src)) * 10).astype(np.float32)
    ours = upsample_bilinear(x, dst)
    theirs = upsample_logits(torch.from_numpy(x), dst).numpy()
    assert ours.shape == theirs.shape == (1, 5, *dst) and ours.dtype == np.float32
    np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-5 * float(np.abs(x).max()))
    if dst[0] > src[0] > 1 and dst[1] > src[1] > 1:  # upscaling interpolates: new values, not copies (nearest)
        assert not np.isin(ours, x).all()


def test_saved_predictions_replace_the_reference_runner() -> None:
    """An engine given saved predictions (the reference computed earlier) scores like one given the live runner."""
    ref = np.array([[0, 0, 1, 1], [0, 0, 1, 1], [2, 2, 2, 2], [2, 2, 2, 2]])
    back = ref.copy()
    back[0, 2] = 0
    image, label = np.zeros((4, 4, 3), np.uint8), ref.astype(np.uint8)
    recorded: list = []
    live = _engine(ref, back, record=lambda name, m, raw: recorded.append((name, m, raw)))
    live.add("img", image, label)

    class Saved:  # labelled fake: what validate.reference.SavedReference hands the engine
        def prediction(self, index: int, name: str):
            assert (index, name) == (0, recorded[0][0])
            return recorded[0][1], recorded[0][2]

    saved = _engine(ref, back)
    saved.reference = Saved()
    saved.saved = True
    saved.add("img", image, label)
    a, b = live.report(), saved.report()
    assert (a.agreement, a.backend_miou, a.logit_max_abs_error) == (b.agreement, b.backend_miou, b.logit_max_abs_error)
    np.testing.assert_array_equal(recorded[0][1], ref)
