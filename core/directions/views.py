"""Pictures of directions for the UI and reports: edit strips, SVM/PCA/SeFa side by side, score-along-path plots.

An edit strip renders one seed at strengths ``k * direction.scale`` (k in "standard deviations" of the data
along the direction), so SVM, PCA and SeFa directions are compared at equal, data-relative step sizes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torch import Tensor

from core.directions.edit import Direction
from core.errors import InputError


def seed_ws(G: torch.nn.Module, seed: int, *, truncation_psi: float = 1.0) -> Tensor:
    """``[1, num_ws, w_dim]`` of a recipe seed (same z as ``core.render.seed_to_z``)."""
    from core.render import seed_to_z

    return G.mapping(seed_to_z(seed, G.z_dim, G.w_avg.device), None, truncation_psi=truncation_psi)


@torch.no_grad()
def edit_strip(
    G: torch.nn.Module,
    direction: Direction,
    seed: int,
    *,
    steps: Sequence[float] = (-2, -1, 0, 1, 2),
    truncation_psi: float = 1.0,
    noise_mode: str = "const",
) -> Tensor:
    """Images ``[len(steps), C, R, R]`` of one seed edited at ``step * direction.scale``."""
    ws = seed_ws(G, seed, truncation_psi=truncation_psi)
    batch = torch.cat([direction.apply(ws, float(k) * direction.scale) for k in steps])
    return G.synthesis(batch, noise_mode=noise_mode)


@torch.no_grad()
def compare_directions(
    G: torch.nn.Module,
    directions: Sequence[Direction],
    seed: int,
    *,
    steps: Sequence[float] = (-2, -1, 0, 1, 2),
    truncation_psi: float = 1.0,
) -> Tensor:
    """One edit strip per direction, stacked: ``[len(directions) * len(steps), C, R, R]`` (rows = directions)."""
    if not directions:
        raise InputError("choose at least one direction to compare")
    return torch.cat([edit_strip(G, d, seed, steps=steps, truncation_psi=truncation_psi) for d in directions])


@torch.no_grad()
def scores_along_path(
    G: torch.nn.Module,
    scorer,
    direction: Direction,
    seed: int,
    *,
    steps: Sequence[float],
    truncation_psi: float = 1.0,
) -> Tensor:
    """Classifier probabilities ``[len(steps), A]`` of one seed moved along ``direction`` (steps in scales)."""
    return scorer(edit_strip(G, direction, seed, steps=steps, truncation_psi=truncation_psi)).float().cpu()


def plot_scores(
    steps: Sequence[float],
    scores: Tensor,
    attributes: Sequence[str],
    *,
    highlight: Sequence[str] = (),
    title: str = "",
    max_lines: int = 8,
):
    """A matplotlib Figure of attribute probabilities along an edit path.

    The highlighted attributes are drawn thick; of the others, the ``max_lines`` that change most are drawn
    thin, so the plot shows the intended change and the largest side effects.
    """
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    s = torch.as_tensor(scores).float()
    change = (s.max(0).values - s.min(0).values).tolist()
    others = sorted((i for i, a in enumerate(attributes) if a not in highlight), key=lambda i: -change[i])
    fig, ax = plt.subplots(figsize=(6.4, 3.6), dpi=100)
    for i, a in enumerate(attributes):
        if a in highlight:
            ax.plot(steps, s[:, i].tolist(), linewidth=2.5, label=a)
    for i in others[:max_lines]:
        ax.plot(steps, s[:, i].tolist(), linewidth=1.0, alpha=0.7, label=attributes[i])
    ax.set_xlabel("edit strength (standard deviations along the direction)")
    ax.set_ylabel("classifier probability")
    ax.set_ylim(-0.02, 1.02)
    ax.axhline(0.5, color="grey", linewidth=0.5, linestyle="--")
    ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.0, 0.5))
    if title:
        ax.set_title(title)
    fig.tight_layout()
    return fig


def separability_table(report: Mapping) -> list[list]:
    """Rows ``[attribute, H(Y|X) in Z, H(Y|X) in W, SVM accuracy Z, SVM accuracy W]`` + a total row."""
    z, w = report["z"], report["w"]
    rows = [
        [a, round(z["entropies"][a], 4), round(w["entropies"][a], 4), round(z["accuracies"][a], 3),
         round(w["accuracies"][a], 3)]
        for a in z["entropies"]
    ]  # fmt: skip
    rows.append(["exp(sum H)", round(z["score"], 3), round(w["score"], 3), "", ""])
    return rows
