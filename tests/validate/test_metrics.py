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
