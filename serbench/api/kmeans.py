"""Batched k-means in torch on the active device, seeded k-means++ initialisation.

Distances are computed in chunks of points against all centres (matrix products, no Python
loop over points), so millions of frames cluster in seconds on a GPU. Used by methods that
make frame pseudo-labels (GMP-ATL); test it against scikit-learn on separable data.
"""

from __future__ import annotations

import torch


def _nearest(points: torch.Tensor, centres: torch.Tensor, chunk: int = 65536) -> tuple[torch.Tensor, torch.Tensor]:
    labels, distances = [], []
    centre_norms = (centres * centres).sum(1)
    for start in range(0, points.shape[0], chunk):
        part = points[start : start + chunk]
        d = (part * part).sum(1, keepdim=True) - 2 * part @ centres.T + centre_norms
        best, index = d.min(dim=1)
        labels.append(index)
        distances.append(best.clamp(min=0))
    return torch.cat(labels), torch.cat(distances)


def kmeans_plus_plus(points: torch.Tensor, k: int, generator: torch.Generator) -> torch.Tensor:
    """k-means++: each new centre drawn with probability proportional to squared distance."""
    n = points.shape[0]
    first = torch.randint(0, n, (1,), generator=generator).item()
    centres = [points[first]]
    closest = ((points - points[first]) ** 2).sum(1)
    for _ in range(1, k):
        # inverse-CDF draw on the points' device: one uniform number crosses from the CPU
        cumulative = torch.cumsum(closest.double(), 0)
        u = torch.rand((), generator=generator, dtype=torch.float64).item() * float(cumulative[-1])
        index = min(int(torch.searchsorted(cumulative, torch.tensor([u], dtype=torch.float64, device=points.device))), n - 1)
        centres.append(points[index])
        closest = torch.minimum(closest, ((points - points[index]) ** 2).sum(1))
    return torch.stack(centres)


def kmeans(points: torch.Tensor, k: int, iterations: int = 50, seed: int = 0, tol: float = 1e-6) -> tuple[torch.Tensor, torch.Tensor]:
    """(centres [k, D], labels [N]) by Lloyd's algorithm from a seeded k-means++ start."""
    points = points.float()
    k = min(k, points.shape[0])
    generator = torch.Generator().manual_seed(seed)
    centres = kmeans_plus_plus(points, k, generator)
    previous = None
    for _ in range(iterations):
        labels, distances = _nearest(points, centres)
        sums = torch.zeros_like(centres).index_add_(0, labels, points)
        counts = torch.bincount(labels, minlength=k).to(points.dtype)
        empty = counts == 0
        centres = torch.where(empty.unsqueeze(1), centres, sums / counts.clamp(min=1).unsqueeze(1))
        inertia = float(distances.sum())
        if previous is not None and abs(previous - inertia) <= tol * max(previous, 1e-12):
            break
        previous = inertia
    labels, _ = _nearest(points, centres)
    return centres, labels
