"""Parity at Cityscapes scale: N images of 2048x1024 in the Cityscapes layout, streamed through
`validate_parity`, with peak memory and time reported.

The model is a small zoo variant with random weights (19 classes), exported with dynamic H/W, so the run
measures the parity pipeline (reading, preprocessing, both runtimes at full resolution, upsampling to the
label size, confusion matrices, boundary bands, worst-K panels), not a big network's compute. Scenes are
the synthetic generator's, written as `leftImg8bit/val/synth/*_leftImg8bit.png` with Cityscapes labelIds
in `gtFine/val/synth/*_gtFine_labelIds.png` (our reader maps them to the 19 train ids). Peak RSS is sampled
while it runs; memory must stay flat as images stream (the issue's "500 images at 2048x1024 without
running out of memory").

    python benchmarks/parity_scale.py --num 500 --size 1024x2048 --arch rf_lw_mbv2_test
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

# synthetic class -> a Cityscapes labelId (road, car, person, building, vegetation, sky)
LABEL_IDS = np.array([7, 26, 24, 11, 21, 23], np.uint8)


def write_cityscapes(root: Path, num: int, h: int, w: int, unique: int) -> Path:
    """``num`` files from ``unique`` generated scenes (the rest are hard links: same bytes, new files)."""
    from PIL import Image

    from refinenet_deploy.data.synth import generate_scene, scene_rng

    img_dir = root / "leftImg8bit" / "val" / "synth"
    lbl_dir = root / "gtFine" / "val" / "synth"
    img_dir.mkdir(parents=True)
    lbl_dir.mkdir(parents=True)
    for i in range(num):
        name = f"synth_{i:06d}_000019"
        img, lbl = img_dir / f"{name}_leftImg8bit.png", lbl_dir / f"{name}_gtFine_labelIds.png"
        if i < unique:
            image, label = generate_scene(scene_rng(7, i), h, w)
            Image.fromarray(image).save(img, compress_level=1)
            Image.fromarray(LABEL_IDS[label]).save(lbl, compress_level=1)
        else:
            j = i % unique
            src = f"synth_{j:06d}_000019"
            img.hardlink_to(img_dir / f"{src}_leftImg8bit.png")
            lbl.hardlink_to(lbl_dir / f"{src}_gtFine_labelIds.png")
    return root


class RssSampler(threading.Thread):
    """Samples this process's resident memory every ``interval`` s (Linux /proc)."""

    def __init__(self, interval: float = 0.2) -> None:
        super().__init__(daemon=True)
        self.interval, self.samples, self._halt = interval, [], threading.Event()

    def run(self) -> None:
        while not self._halt.is_set():
            for line in Path("/proc/self/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    self.samples.append((time.time(), int(line.split()[1]) / 1024))
            self._halt.wait(self.interval)

    def stop(self) -> None:
        self._halt.set()
        self.join()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--num", type=int, default=500)
    parser.add_argument("--size", default="1024x2048", help="HxW")
    parser.add_argument("--unique", type=int, default=50, help="distinct scenes (the rest are hard links)")
    parser.add_argument("--arch", default="rf_lw_mbv2_test")
    parser.add_argument("--save-worst", type=int, default=3)
    args = parser.parse_args()
    h, w = (int(v) for v in args.size.lower().split("x"))

    from refinenet_deploy.models import create_model
    from refinenet_deploy.models.checkpoint import save_safetensors
    from refinenet_deploy.operations.export import ExportSpec, export_onnx
    from refinenet_deploy.operations.parity import validate_parity

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        t0 = time.time()
        data = write_cityscapes(tmp / "cityscapes", args.num, h, w, min(args.unique, args.num))
        print(
            f"wrote {args.num} images of {w}x{h} ({min(args.unique, args.num)} distinct) in {time.time() - t0:.0f} s",
            flush=True,
        )
        torch_model = create_model(args.arch, num_classes=19)
        ckpt = save_safetensors(torch_model.state_dict(), tmp / "m.safetensors", {"arch": args.arch})
        onnx_path = tmp / "m.onnx"
        export_onnx(ckpt, onnx_path, ExportSpec(input_size=(128, 256), dynamic=True, verify_sizes=()))
        sampler = RssSampler()
        sampler.start()
        t0 = time.time()
        done = [0]

        def progress(i: int, n: int) -> None:
            done[0] = i
            if i % 50 == 0 or i == n:
                rss = sampler.samples[-1][1] if sampler.samples else float("nan")
                print(f"  {i}/{n} images, {time.time() - t0:.0f} s, RSS {rss:.0f} MiB", flush=True)

        report = validate_parity(
            ckpt, onnx_path, data, save_worst=args.save_worst, worst_dir=tmp / "worst", progress=progress
        )
        elapsed = time.time() - t0
        sampler.stop()
    rss = [r for _, r in sampler.samples]
    tenth = max(1, len(rss) // 10)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"\nparity of {report.num_images} images at {w}x{h} ({args.arch}, ONNX Runtime vs PyTorch): "
        f"{elapsed:.0f} s ({elapsed / report.num_images:.2f} s/image)"
    )
    print(
        f"RSS: first tenth of the run max {max(rss[:tenth]):.0f} MiB, last tenth max {max(rss[-tenth:]):.0f} MiB, "
        f"peak {peak:.0f} MiB (ru_maxrss)"
    )
    print(
        f"pixel agreement {report.agreement.pixel:.4%}, mIoU drop {report.miou_drop_points:.4f} pt, "
        f"passed {report.passed}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
