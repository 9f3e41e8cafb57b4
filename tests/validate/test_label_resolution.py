"""mIoU of a reduced-size prediction is scored at the label's own resolution (a case computed by hand)."""

from __future__ import annotations

import numpy as np
import pytest

from refinenet_deploy.validate.label_resolution import confusion_at_label_size, labels_at_label_size
from refinenet_deploy.validate.metrics import iou_per_class, mean_iou

# a 2x2 prediction: class 0 in the left column, class 1 in the right one (logits (C=2, 2, 2))
LOW_RES = np.array([[[1.0, 0.0], [1.0, 0.0]], [[0.0, 1.0], [0.0, 1.0]]], dtype=np.float32)
LABEL = np.array(
    [
        [0, 0, 1, 1],
        [0, 0, 1, 1],
        [0, 1, 1, 1],  # the one pixel the 2x2 prediction cannot get right
        [0, 0, 1, 1],
    ]
)


def test_upsampled_back_to_the_label_size() -> None:
    # bilinear, half-pixel centres: output columns 0,1 weigh the left logits >= 0.75, columns 2,3 the right ones
    pred = labels_at_label_size(LOW_RES[None], (4, 4))
    assert pred.shape == (4, 4)
    assert (pred[:, :2] == 0).all() and (pred[:, 2:] == 1).all()


def test_known_miou_at_label_resolution() -> None:
    conf = confusion_at_label_size(LOW_RES, LABEL, num_classes=2)
    # class 0: 7 labelled, all predicted 0, plus 1 false positive -> 7/8; class 1: 8 of 9 -> 8/9
    assert conf.tolist() == [[7, 0], [1, 8]]
    assert iou_per_class(conf) == pytest.approx([7 / 8, 8 / 9])
    assert mean_iou(conf) == pytest.approx(127 / 144)


def test_ignore_index_at_label_resolution() -> None:
    label = LABEL.copy()
    label[0, 0] = 255
    conf = confusion_at_label_size(LOW_RES, label, num_classes=2)
    assert mean_iou(conf) == pytest.approx((6 / 7 + 8 / 9) / 2)


def test_a_batch_is_refused() -> None:
    with pytest.raises(ValueError, match="one image"):
        labels_at_label_size(np.zeros((2, 2, 2, 2), np.float32), (4, 4))
