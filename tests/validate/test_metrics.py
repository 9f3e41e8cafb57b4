"""Metrics against hand-computed values on small label maps (ignore index, absent classes)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from refinenet_deploy.validate.metrics import (
    boundary_mask,
    confusion_matrix,
    iou_per_class,
    mean_iou,
    pixel_accuracy,
)

LABEL = np.array([[0, 0, 1], [1, 1, 255], [2, 2, 2]])
PRED = np.array([[0, 1, 1], [1, 1, 0], [2, 2, 1]])


def test_confusion_matrix_by_hand() -> None:
    conf = confusion_matrix(PRED, LABEL, num_classes=4)
    expected = np.array([[1, 1, 0, 0], [0, 3, 0, 0], [0, 1, 2, 0], [0, 0, 0, 0]])
    np.testing.assert_array_equal(conf, expected)  # the 255 pixel (predicted 0) is not counted


def test_iou_and_mean_iou_by_hand() -> None:
    conf = confusion_matrix(PRED, LABEL, num_classes=4)
    iou = iou_per_class(conf)
    assert iou[0] == pytest.approx(1 / 2)  # tp 1, gt 2, pred 1
    assert iou[1] == pytest.approx(3 / 5)  # tp 3, gt 3, pred 5
    assert iou[2] == pytest.approx(2 / 3)  # tp 2, gt 3, pred 2
    assert math.isnan(iou[3])  # absent from ground truth and prediction: not averaged
    assert mean_iou(conf) == pytest.approx((1 / 2 + 3 / 5 + 2 / 3) / 3)
    assert pixel_accuracy(conf) == pytest.approx(6 / 8)


def test_class_predicted_but_absent_from_ground_truth_counts_as_zero() -> None:
    pred = PRED.copy()
    pred[2, 2] = 3  # a false positive of class 3
    iou = iou_per_class(confusion_matrix(pred, LABEL, num_classes=4))
    assert iou[3] == 0.0
    assert iou[1] == pytest.approx(3 / 4)  # the moved pixel no longer counts against class 1
    assert mean_iou(confusion_matrix(pred, LABEL, 4)) == pytest.approx((1 / 2 + 3 / 4 + 2 / 3 + 0) / 4)


def test_labels_outside_range_are_skipped_and_bad_predictions_raise() -> None:
    label = np.array([[0, 7]])
    assert confusion_matrix(np.array([[0, 1]]), label, 2).sum() == 1
    with pytest.raises(ValueError, match="outside"):
        confusion_matrix(np.array([[0, 5]]), np.array([[0, 1]]), 2)
    with pytest.raises(ValueError, match="shape"):
        confusion_matrix(np.zeros((2, 2)), np.zeros((2, 3)), 2)


def test_perfect_and_empty() -> None:
    conf = confusion_matrix(LABEL.clip(0, 2), LABEL.clip(0, 2), 3, ignore_index=None)
    assert mean_iou(conf) == 1.0
    assert math.isnan(mean_iou(np.zeros((3, 3))))


def test_boundary_mask_by_hand() -> None:
    labels = np.array([[0, 0, 0, 0], [0, 0, 1, 1], [0, 0, 1, 1]])
    expected = np.array([[0, 0, 1, 1], [0, 1, 1, 1], [0, 1, 1, 0]], dtype=bool)
    np.testing.assert_array_equal(boundary_mask(labels, width=1), expected)
    wide = boundary_mask(labels, width=2)
    assert wide.sum() > expected.sum() and wide[expected].all()
    assert not boundary_mask(np.zeros((5, 5), int), width=3).any()


def test_labels_out_of_range_are_counted_not_scored() -> None:
    from refinenet_deploy.validate.metrics import LabelRangeCounter, out_of_range_labels

    label = np.array([[0, 200, 200], [1, 255, 7], [2, 2, 2]])
    ids, counts = out_of_range_labels(label, 6)
    assert ids.tolist() == [7, 200] and counts.tolist() == [1, 2]  # 255 is the ignore index: not counted
    conf = confusion_matrix(np.zeros_like(label), label, 6)
    assert conf.sum() == 5  # neither the out-of-range ids nor 255 are scored
    counter = LabelRangeCounter(6)
    assert counter.add("a", label) == 3 and counter.add("b", np.zeros((2, 2), int)) == 0
    assert counter.summary()["pixels"] == 3 and counter.summary()["files"] == ["a"]
    assert counter.summary()["class_ids"] == {"7": 1, "200": 2}
    msg = counter.message()
    assert msg is not None and "3 labelled pixels in 1 image(s)" in msg and "ids 7, 200" in msg and ": a" in msg
    assert LabelRangeCounter(6).message() is None
    many = LabelRangeCounter(6)
    for i in range(8):
        many.add(f"img{i}", label)
    assert "img4 and 3 more" in many.message() and "img5" not in many.message()
