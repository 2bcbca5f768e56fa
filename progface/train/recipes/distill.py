"""Distillation of the 321k-parameter FAN from a teacher heatmap source (recipe ``distill``).

As the authors coded it (``fan_train.py``): the student regresses the teacher's output heatmaps
with a plain MSE, Adam lr 1e-4, batch 16. Their teacher was FAN-4 on the x4 bilinear upsampling
of 64-px faces (preset ``paper``); here any heatmap source can teach: ``fan``, ``dlib68``, or
``landmarks`` (Gaussians rendered at labelled coordinates). Differences from their code, on
purpose: the teacher is frozen in eval mode, faces are augmented (flip with landmark
relabelling, small rotation, zoom and shift), and the student trains at several resolutions
(64 and 128 px by default: SR step 2 runs it at 64 px, step 3 at 128 px). An optional
FitNets-style hint regresses the teacher's features from the student's last hidden layer
through a 1x1 conv when the teacher has ``features(images)``. For CPU budgets, an optional
warm-up weights the pixels near the landmarks (``fg_weight``, ``fg_until``) before the plain
MSE takes over.

The recipe runs on the shared loop (:mod:`progface.train.loop`): ``progface distill ...`` or
``progface train --recipe distill``. Batches are dicts with ``"hr"`` ``[B, 3, S, S]`` in [0, 1]
and, for coordinate teachers, ``"landmarks"`` ``[B, 68, 2]`` (see :func:`distill_datasets`).
Validation reports NME at each training size and keeps ``OUT/best.safetensors``.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from progface.landmarks.augment import random_photometric, random_similarity
from progface.landmarks.evaluate import landmark_errors, predict_landmarks, resize_faces
from progface.landmarks.fan_distilled import FanDistilled
from progface.landmarks.heatmaps import rescale_points
from progface.train.config import bounded
from progface.train.recipes.base import Recipe
from progface.train.schedule import set_lr

__all__ = ["PRESETS", "DistillOptions", "DistillRecipe", "build", "distill_datasets", "heatmap_mse"]


@dataclass
class DistillOptions:
    """Options of a distillation run, the ``[options]`` section of its config."""

    teacher: str = "landmarks"  # heatmap source name: landmarks, fan, dlib68, ...
    teacher_weights: str = ""  # weight file of the teacher ("" = its default)
    iterations: int = bounded(
        100_000, min=1
    )  # the paper's figure (the authors' shipped file: 11,000)
    lr: float = 1e-4
    sizes: tuple[int, ...] = (64, 128)  # training resolutions, one drawn per iteration
    size_probs: tuple[float, ...] = (0.75, 0.25)  # ~equal compute: 128 px costs 4x
    sigma: float = 1.5  # landmarks teacher: Gaussian sigma in px at 64 px (scaled with size)
    flip: bool = True
    max_angle_deg: float = 10.0
    max_scale: float = 0.1
    max_shift: float = 0.05  # fraction of the image side
    color_jitter: float = 0.0  # brightness, contrast, saturation factors in 1 +- this
    degrade_prob: float = 0.0  # share of faces shrunk to 16..S/2 px, enlarged back, noised
    init_student: str = ""  # warm start: a fan-distilled safetensors file ("" = random init)
    hint_weight: float = 0.0  # FitNets hint (teacher must expose features(images))
    lr_decay_at: int = 0  # iteration where the lr drops x0.1 (0: never)
    fg_weight: float = 0.0  # warm-up: weight 1 + fg_weight near landmarks (0: plain MSE)
    fg_until: int = 0  # iterations of the weighted warm-up, then plain MSE
    exclude_sources: tuple[str, ...] = ("none", "dlib_fallback_box")  # label rows to skip
    report: tuple[str, ...] = ()  # more labelled folders evaluated at validation, never selected on
    select_on: str = "nme_mean"  # validation figure that picks best.safetensors


PRESETS: dict[str, dict[str, Any]] = {
    # CPU-friendly loop settings; training faces live in memory, so no worker processes
    "default": {
        "data": {"workers": 0, "val_limit": 300},
        "loop": {"log_every": 25, "val_every": 500, "checkpoint_every": 250},
    },
    # the authors' fan_train.py: FAN-4 teacher, 64 px only, no augmentation
    "paper": {
        "data": {"workers": 0, "val_limit": 300},
        "loop": {"log_every": 25, "val_every": 500, "checkpoint_every": 250},
        "options": {
            "teacher": "fan",
            "sizes": [64],
            "size_probs": [1.0],
            "flip": False,
            "max_angle_deg": 0.0,
            "max_scale": 0.0,
            "max_shift": 0.0,
        },  # fmt: skip
    },
}


def heatmap_mse(pred: Tensor, target: Tensor, fg_weight: float = 0.0) -> Tensor:
    """MSE of heatmaps; with ``fg_weight`` > 0 the pixels within one pixel of where the target
    exceeds 0.2 count ``1 + fg_weight`` times. Sparse Gaussian targets make plain MSE sit
    near its all-zero minimum for hundreds of iterations; weighting the peaks leaves that
    plateau much sooner (measured: NME 12% vs 32% after 200 iterations at 64 px)."""
    if fg_weight <= 0:
        return F.mse_loss(pred, target)
    near = F.max_pool2d((target > 0.2).to(target.dtype), 3, stride=1, padding=1)
    return ((pred - target) ** 2 * (1 + fg_weight * near)).mean()


def _validate(opts: DistillOptions) -> None:
    if len(opts.sizes) != len(opts.size_probs) or not opts.sizes:
        raise ValueError("options.sizes and options.size_probs need the same, non-zero length")
    if any(p < 0 for p in opts.size_probs) or sum(opts.size_probs) <= 0:
        raise ValueError("options.size_probs must be non-negative with a positive sum")


def build_teacher(opts: DistillOptions, device: torch.device) -> Any:
    """The teacher heatmap source named by ``opts.teacher``."""
    if opts.teacher == "landmarks":
        from progface.landmarks.sources import LandmarkHeatmaps

        return LandmarkHeatmaps(sigma=opts.sigma)
    from progface import plugins

    spec = plugins.get("heatmap_sources", opts.teacher)
    if spec.weights is not None:
        return spec.build(weights=opts.teacher_weights or None, device=str(device))
    return spec.build(device=str(device))


@dataclass
class _Counters:
    size: int = 0
    best: float = field(default=math.inf)


class DistillRecipe(Recipe):
    """The student, its optimiser and one training iteration (the loop's recipe protocol)."""

    def __init__(self, cfg, ctx, *, teacher: Any = None, student: FanDistilled | None = None):
        opts: DistillOptions = cfg.options
        _validate(opts)
        self.opts, self.ctx, self.out, self.seed = opts, ctx, Path(cfg.out), cfg.seed
        self.teacher = teacher if teacher is not None else build_teacher(opts, ctx.device)
        if isinstance(self.teacher, nn.Module):
            self.teacher.to(ctx.device).eval()
        if student is None:
            student = FanDistilled()
            if opts.init_student:
                from progface.weights.landmarks import load_fan_distilled

                student.load_state_dict(load_fan_distilled(opts.init_student).state_dict())
        self.student = ctx.prepare(student)
        self.total_iterations = opts.iterations
        self._models: dict[str, nn.Module] = {"student": self.student}
        params = list(self.student.parameters())
        self.hint: nn.Module | None = None
        if opts.hint_weight > 0:
            if not hasattr(self.teacher, "features"):
                raise ValueError(
                    f"options.hint_weight > 0 needs a teacher with features(images); "
                    f"{type(self.teacher).__name__} has none"
                )
            with torch.no_grad():
                probe = torch.rand(1, 3, 64, 64, device=ctx.device)
                channels = int(self.teacher.features(probe).shape[1])
            self.hint = ctx.prepare(nn.Conv2d(self.student.feature_channels, channels, 1))
            self._models["hint"] = self.hint
            params += list(self.hint.parameters())
        self.optimizer = torch.optim.Adam(params, lr=opts.lr)
        self.counters = _Counters()
        self._report: dict[str, Any] | None = None

    # --- the recipe protocol ---------------------------------------------------------------

    def models(self) -> dict[str, nn.Module]:
        return self._models

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"student": self.optimizer}

    def state(self) -> dict[str, Any]:
        best = self.counters.best
        return {"size": self.counters.size, "best": best if math.isfinite(best) else -1.0}

    def load_state(self, state: dict[str, Any]) -> None:
        best = float(state.get("best", -1.0))
        self.counters = _Counters(int(state.get("size", 0)), best if best >= 0 else math.inf)

    def _generator(self, iteration: int) -> torch.Generator:
        # augmentation and resolution are a pure function of (seed, iteration): resumable
        return torch.Generator().manual_seed(self.seed * 1_000_003 + iteration)

    def _targets(self, images: Tensor, points: Tensor | None, size: int) -> Tensor:
        with torch.no_grad():
            if points is not None and hasattr(self.teacher, "heatmaps_from_points"):
                return self.teacher.heatmaps_from_points(points, size)
            heatmaps = self.teacher(images)
            if heatmaps.shape[-2:] != (size, size):
                heatmaps = F.interpolate(heatmaps, size=(size, size), mode="bilinear")
            return heatmaps

    def train_step(self, batch: dict[str, Any], iteration: int) -> dict[str, float]:
        """Augment, pick a resolution, regress the teacher's heatmaps; returns loss terms."""
        opt, dev = self.opts, self.ctx.device
        gen = self._generator(iteration)
        hr = batch["hr"].to(dev).float()
        points = batch.get("landmarks")
        side = hr.shape[-1]
        if points is not None:
            points = points.to(dev).float()
            hr, points = random_similarity(
                hr, points, flip=opt.flip, max_angle_deg=opt.max_angle_deg,
                max_scale=opt.max_scale, max_shift=opt.max_shift, generator=gen,
            )  # fmt: skip
        elif opt.flip:
            flip = (torch.rand(hr.shape[0], generator=gen) < 0.5).to(dev)
            hr = torch.where(flip.view(-1, 1, 1, 1), hr.flip(-1), hr)
        if opt.color_jitter > 0 or opt.degrade_prob > 0:
            hr = random_photometric(
                hr, jitter=opt.color_jitter, degrade_prob=opt.degrade_prob, generator=gen
            )
        probs = torch.tensor(opt.size_probs, dtype=torch.float64)
        size = int(opt.sizes[int(torch.multinomial(probs, 1, generator=gen))])
        x = self.ctx.images(resize_faces(hr.clamp(0, 1), size))
        pts = rescale_points(points, side, size) if points is not None else None
        target = self._targets(x, pts, size)

        set_lr(
            self.optimizer,
            opt.lr * (0.1 if opt.lr_decay_at and iteration >= opt.lr_decay_at else 1.0),
        )
        self.student.train()
        with self.ctx.autocast():
            features = self.student.forward_features(x)
            pred = self.student.forward_head(features).float()
        loss = F.mse_loss(pred, target)
        terms = {"heatmap_mse": loss}
        if opt.fg_weight > 0 and iteration < opt.fg_until:
            loss = heatmap_mse(pred, target, opt.fg_weight)
            terms["weighted_mse"] = loss
        if self.hint is not None:
            with torch.no_grad():
                t_feat = self.teacher.features(x)
            s_feat = self.hint(features).float()
            if s_feat.shape[-2:] != t_feat.shape[-2:]:
                s_feat = F.adaptive_avg_pool2d(s_feat, t_feat.shape[-2:])
            terms["hint_mse"] = F.mse_loss(s_feat, t_feat)
            loss = loss + opt.hint_weight * terms["hint_mse"]
        self.ctx.step(self.optimizer, loss, terms)
        self.counters.size = size
        return {k: float(v.detach()) for k, v in terms.items()}

    # --- validation, figure, weights -------------------------------------------------------

    @torch.no_grad()
    def evaluate(self, faces, sizes=None) -> dict[str, float]:
        """Mean NME (percent) of the student (eval mode) against labelled ``faces``
        (:class:`~progface.landmarks.data.LandmarkFaces`) at each size: ``nme{size}`` (by
        image size) and ``nme_io{size}`` (by inter-ocular distance)."""
        self.student.eval()
        images = faces.float_images().to(self.ctx.device)
        errors = landmark_errors(self.student, images, faces.points, sizes or self.opts.sizes)
        out = {}
        for size, e in errors.items():
            out[f"nme{size}"] = 100 * float(e["size"].mean())
            out[f"nme_io{size}"] = 100 * float(e["inter_ocular"].mean())
        return out

    def validate(self, val_data, iteration: int) -> dict[str, float]:
        """NME on ``val_data`` (and the ``report`` folders); keeps ``OUT/best.safetensors``."""
        from progface.weights import save_safetensors

        scores = self.evaluate(val_data)
        scores["nme_mean"] = sum(scores[f"nme{s}"] for s in self.opts.sizes) / len(self.opts.sizes)
        if self.opts.select_on not in scores:
            raise ValueError(
                f"options.select_on {self.opts.select_on!r} is not one of {list(scores)}"
            )
        improved = scores[self.opts.select_on] < self.counters.best
        if improved:
            self.counters.best = scores[self.opts.select_on]
            tensors, config = self.export()
            config |= {"iteration": iteration, "selected_on": self.opts.select_on, **scores}
            save_safetensors(tensors, self.out / "best.safetensors", config)
        for name, faces in self._report_sets().items():
            scores.update({f"{name}/{k}": v for k, v in self.evaluate(faces).items()})
        return scores | {"best": float(improved)}

    def _report_sets(self) -> dict[str, Any]:
        if self._report is None:
            from progface.landmarks.data import load_landmark_faces

            self._report = {Path(d).name: load_landmark_faces([d]) for d in self.opts.report}
        return self._report

    @torch.no_grad()
    def save_grid(self, batch: dict[str, Any], path: Path) -> Path:
        """Face | channel-max heatmap | landmarks of the first validation faces at the largest
        training size (red: predicted, green: labels)."""
        from progface.io.figures import save_atomic
        from progface.landmarks.figure import heatmap_figure

        self.student.eval()
        size = max(self.opts.sizes)
        hr = batch["hr"].float().to(self.ctx.device)
        heatmaps = self.student(resize_faces(hr, size))
        pred = predict_landmarks(self.student, hr, size)
        labels = batch.get("landmarks")
        fig = heatmap_figure(hr.cpu(), heatmaps.cpu(), pred.cpu(), None if labels is None else labels.cpu(), size=128)  # fmt: skip
        return save_atomic(fig, Path(path))

    def export(self) -> tuple[dict[str, Tensor], dict[str, Any]]:
        """The student's tensors and the config stored with them."""
        from progface.weights.landmarks import FAN_DISTILLED_CONFIG

        options = asdict(self.opts)
        config = {
            **FAN_DISTILLED_CONFIG,
            "distillation": options,
            "trained_at": list(self.opts.sizes),
        }
        return dict(self.student.state_dict()), config


def build(cfg, ctx, **objects: Any) -> DistillRecipe:
    """RecipeSpec.build: ``objects`` may hold ``teacher=`` (any heatmap source)."""
    return DistillRecipe(cfg, ctx, **objects)


def distill_datasets(cfg):
    """RecipeSpec.datasets: labelled faces in memory. ``data.train`` may list several folders
    separated by commas; labels (``landmarks68.csv``) are required for the ``landmarks``
    teacher, whose rows in ``options.exclude_sources`` are skipped."""
    from progface.landmarks.data import load_landmark_faces

    opts: DistillOptions = cfg.options
    if not cfg.data.train:
        raise ValueError("no training data: set data.train (folders of faces, comma-separated)")
    folders = [f.strip() for f in cfg.data.train.split(",") if f.strip()]
    train = load_landmark_faces(
        folders,
        exclude_sources=opts.exclude_sources,
        limit=cfg.data.limit or None,
        require_labels=opts.teacher == "landmarks",
    )
    val = None
    if cfg.data.val:
        val = load_landmark_faces([cfg.data.val], limit=cfg.data.val_limit or None)
    return train, val
