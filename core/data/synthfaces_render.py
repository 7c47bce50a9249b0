"""SynthFaces renderer: vectorised, anti-aliased 2-D portraits from factor tensors.

Every shape is a signed distance ``d`` (negative inside) evaluated on a pixel grid for the whole batch at
once, ``[N, H, W]``, with per-image parameters broadcast as ``[N, 1, 1]``. Its coverage
``clamp(0.5 - d / pixel, 0, 1)`` is the box-filtered area of the pixel inside the edge, so edges are
anti-aliased at any resolution, and layers are composited back to front with ``lerp``. There is no Python
loop over images.

Geometry follows three frames:

* image frame ``(x, y)``, ``[-1, 1]^2`` with ``y`` down: background, neck and shirt;
* head frame ``(hx, hy)``: image frame moved to the head centre, rotated by ``roll`` and divided by the head
  scale: head outline, ears and hair;
* face frame ``(fx, fy)``: the head frame seen on a sphere of radius ``R`` turned by the yaw angle ``alpha``,
  ``fx = hx cos(alpha) - sqrt(R^2 - hx^2) sin(alpha)``. A feature drawn at ``fx = 0`` appears at
  ``R sin(alpha)`` and features on the far side are foreshortened, which is what a turned head looks like.
  Eyes, brows, nose, mouth, beard and glasses live here; left and right copies share one evaluation through
  ``|fx|``.

The inner features are only evaluated in fixed windows (the union of where they can land over the whole
factor range), which keeps the per-pixel work low enough for >= 500 images/s on two CPU cores.

Stochastic detail (hair strands, freckles, skin blotches, background speckle, stray hairs) is drawn from
counter-based hashes of ``(detail_seed, image index)``: it changes nothing the labels describe.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from core.data.synthfaces_factors import DETAIL_STREAM_BASE, hash_uniform

# Parts render_chunk can leave out (core.data.synthfaces.part_signal measures what they add to an image).
HIDEABLE_PARTS = frozenset({"brows"})

# Windows (x0, x1, y0, y1) in image coordinates outside of which a group of layers never has coverage,
# derived from the factor ranges below with a margin (tests/test_synthfaces.py checks them against a
# full-frame render).
_HEAD_WINDOW = (-0.80, 0.80, -1.0, 0.80)
_FACE_WINDOW = (-0.70, 0.70, -0.76, 0.50)

_HAIR_COLORS = (
    (0.10, 0.08, 0.07),
    (0.38, 0.23, 0.13),
    (0.92, 0.76, 0.46),
    (0.72, 0.30, 0.13),
    (0.74, 0.74, 0.76),
)
_IRIS_COLORS = ((0.42, 0.25, 0.12), (0.22, 0.48, 0.82), (0.30, 0.58, 0.30), (0.55, 0.60, 0.64))
_SKIN_STOPS = ((0.98, 0.84, 0.73), (0.86, 0.64, 0.48), (0.62, 0.42, 0.28), (0.36, 0.23, 0.15))
_GLASSES_STOPS = (
    (0.06, 0.06, 0.07),
    (0.45, 0.25, 0.10),
    (0.80, 0.12, 0.12),
    (0.12, 0.28, 0.75),
    (0.85, 0.68, 0.25),
)
# Per hair style (bald, short, long, bun): outer hair ellipse growth (x, y), hairline height, fringe wave.
_HAIR_GROW_X = (0.0, 0.05, 0.07, 0.025)
_HAIR_GROW_Y = (0.0, 0.07, 0.08, 0.035)
_HAIRLINE_Y = (0.0, -0.48, -0.45, -0.52)
_FRINGE = (0.0, 0.018, 0.0, 0.0)


def _palette(stops: tuple[tuple[float, float, float], ...], t: Tensor) -> Tensor:
    """Piecewise-linear colour ramp through ``stops``; ``t [N]`` in [0, 1] -> ``[N, 3]``."""
    table = torch.tensor(stops, dtype=torch.float32, device=t.device)
    pos = t.clamp(0, 1) * (len(stops) - 1)
    lo = pos.floor().clamp(max=len(stops) - 2).long()
    w = (pos - lo).unsqueeze(1)
    return table[lo] * (1 - w) + table[lo + 1] * w


def _hue(h: Tensor, sat: Tensor, val: Tensor) -> Tensor:
    """Smooth hue wheel (cosine palette): ``[N]`` hue, saturation, value -> ``[N, 3]`` RGB in [0, 1]."""
    phase = torch.tensor([0.0, 1.0 / 3.0, 2.0 / 3.0], device=h.device)
    rgb = 0.5 + 0.5 * torch.cos(2 * math.pi * (h.unsqueeze(1) + phase))
    return (val.unsqueeze(1) * (1 - sat.unsqueeze(1) + sat.unsqueeze(1) * rgb)).clamp(0, 1)


def _cov(d: Tensor, k: Tensor | float) -> Tensor:
    """Coverage of a pixel by the inside of an edge; ``k`` is 1 / pixel size in the units of ``d``."""
    return (0.5 - d * k).clamp_(0, 1)


def _circ(x: Tensor, y: Tensor, r: Tensor | float) -> Tensor:
    """Exact signed distance to a circle of radius ``r`` centred at the origin."""
    return torch.sqrt(x * x + y * y) - r


def _ellipse(x: Tensor, y: Tensor, a: Tensor | float, b: Tensor | float, *, thin: bool = False) -> Tensor:
    """Signed distance to an axis-aligned ellipse, first-order accurate near the edge at any aspect ratio.

    ``f / |grad f|`` with ``f = (x/a)^2 + (y/b)^2 - 1``: the cheap ``(r - 1) * min(a, b)`` blurs the long
    sides of thin shapes (eyes, closed eyes) over several pixels. Far from a very thin ellipse the
    first-order estimate collapses towards 0, so ``thin`` also takes the max with the bounding-box
    distances ``|x| - a`` and ``|y| - b``, which never exceed the true distance.
    """
    u = x / a
    v = y / b
    f = u * u + v * v - 1
    g = (u / a) ** 2 + (v / b) ** 2
    d = f * torch.rsqrt(4 * g + 1e-6)
    if thin:
        d = torch.maximum(torch.maximum(d, x.abs() - a), y.abs() - b)
    return d


def _lerp_(img: Tensor, color: Tensor, cov: Tensor) -> None:
    """Composite ``color`` (``[N,3,1,1]`` or ``[N,3,h,w]``) over ``img`` in place with coverage ``[N,h,w]``."""
    img.lerp_(color, cov.unsqueeze(1))


def _noise_grid(detail_seed: int, stream: int, index: Tensor, size: int) -> Tensor:
    """Per-image uniform noise on a ``size x size`` grid: ``[N, 1, size, size]`` in [0, 1)."""
    cells = torch.arange(size * size, dtype=torch.int64, device=index.device)
    return hash_uniform(detail_seed, stream, index[:, None], cells[None]).view(-1, 1, size, size)


class _Frame:
    """Pixel-centre coordinates of one window of the image, plus the head and face frames on it."""

    def __init__(self, res: int, window: tuple[float, float, float, float], device: torch.device) -> None:
        px = 2.0 / res
        centres = (torch.arange(res, device=device, dtype=torch.float32) + 0.5) * px - 1
        x0, x1, y0, y1 = window
        self.c0, self.c1 = max(0, math.floor((x0 + 1) / px)), min(res, math.ceil((x1 + 1) / px))
        self.r0, self.r1 = max(0, math.floor((y0 + 1) / px)), min(res, math.ceil((y1 + 1) / px))
        self.x = centres[self.c0 : self.c1].view(1, 1, -1)
        self.y = centres[self.r0 : self.r1].view(1, -1, 1)

    def crop(self, img: Tensor) -> Tensor:
        return img[:, :, self.r0 : self.r1, self.c0 : self.c1]

    def head(self, p: dict[str, Tensor]) -> tuple[Tensor, Tensor]:
        """Head frame: translate to the head centre, undo roll, divide by scale (2 full-size ops each)."""
        xr = self.x - p["cx"]
        yr = self.y - p["cy"]
        hx = xr * p["rc"] + yr * p["rs"]
        hy = yr * p["rc"] - xr * p["rs"]
        return hx, hy

    @staticmethod
    def face(hx: Tensor, p: dict[str, Tensor]) -> Tensor:
        """Face frame x: the surface coordinate of a sphere of radius R turned by the yaw angle."""
        depth = torch.sqrt((p["R2"] - hx * hx).clamp_(min=0))
        return hx * p["ycos"] - depth * p["ysin"]


def _params(f: dict[str, Tensor], res: int) -> dict[str, Tensor]:
    """Per-image drawing parameters ``[N, 1, 1]`` (and colours ``[N, 3, 1, 1]``) from the factors."""
    n = f["yaw"].shape[0]
    dev = f["yaw"].device

    def col(t: Tensor) -> Tensor:
        return t.view(n, 3, 1, 1)

    p: dict[str, Tensor] = {}
    scale = 0.92 + 0.16 * f["head_scale"]
    roll = 0.24 * f["roll"]
    alpha = 0.62 * f["yaw"]
    p["cx"] = 0.07 * f["head_x"]
    p["cy"] = -0.14 + 0.05 * f["head_y"]
    p["rc"] = torch.cos(roll) / scale
    p["rs"] = torch.sin(roll) / scale
    p["k"] = scale * (res / 2.0)  # 1 / pixel size in head units
    p["a"] = 0.50 - 0.06 * f["face_length"]
    p["b"] = 0.58 + 0.10 * f["face_length"]
    p["R2"] = (1.08 * p["a"]) ** 2
    p["ycos"], p["ysin"] = torch.cos(alpha), torch.sin(alpha)
    p["taper"] = 0.46 - 0.30 * f["jaw_width"]
    p["smile"] = f["smile"]
    p["open"] = f["mouth_open"]
    p["eye_h"] = 0.052 * ((f["eye_open"] - 0.2) / 0.8).clamp(0, 1) ** 0.8 + 0.0015
    p["brow_raise"] = f["brow_raise"]
    p["brow_tilt"] = f["brow_tilt"]
    p["nose"] = 0.7 + 0.8 * f["nose_size"]
    style = f["hair_style"]
    p["has_hair"] = (style != 0).float()
    p["long"] = (style == 2).float()
    p["bun"] = (style == 3).float()
    p["grow_x"] = torch.tensor(_HAIR_GROW_X, device=dev)[style]
    p["grow_y"] = torch.tensor(_HAIR_GROW_Y, device=dev)[style]
    p["hairline"] = torch.tensor(_HAIRLINE_Y, device=dev)[style]
    p["fringe"] = torch.tensor(_FRINGE, device=dev)[style]
    p["glasses"] = (f["eyeglasses"] == 1).float()
    p["moustache"] = (f["beard"] >= 1).float()
    p["beard"] = (f["beard"] == 2).float()
    p = {k: v.view(n, 1, 1) for k, v in p.items()}

    skin = _palette(_SKIN_STOPS, f["skin_tone"])
    hair = torch.tensor(_HAIR_COLORS, device=dev)[f["hair_color"]]
    p["skin"] = col(skin)
    p["skin_dark"] = col(skin * torch.tensor([0.80, 0.74, 0.74], device=dev))
    p["hair"] = col(hair)
    # Brows: the hair colour, darkened so they read on light skin. Darkening keeps the hue, so a bald, shaven
    # face still shows its hair colour (only through the brows).
    p["brow"] = col(hair * 0.6 + 0.01)
    p["iris"] = col(torch.tensor(_IRIS_COLORS, device=dev)[f["iris_color"]])
    pale, red = torch.tensor([0.86, 0.52, 0.52], device=dev), torch.tensor([0.78, 0.08, 0.16], device=dev)
    lip = pale + (red - pale) * f["lip_color"].unsqueeze(1)
    p["lip"] = col(lip * (1.0 - 0.35 * f["skin_tone"].unsqueeze(1)))
    p["frame"] = col(_palette(_GLASSES_STOPS, f["glasses_color"]))
    p["bg"] = col(_hue(f["bg_hue"], 0.25 + 0.25 * f["bg_hue"].new_ones(n), 0.35 + 0.6 * f["bg_brightness"]))
    p["shirt"] = col(
        _hue(f["clothes_hue"], 0.55 * f["clothes_hue"].new_ones(n), 0.30 + 0.45 * f["clothes_hue"])
    )
    p["grad"] = (0.35 * f["bg_gradient"]).view(n, 1, 1)
    lt = f["light_tint"].unsqueeze(1) * torch.tensor([0.09, 0.015, -0.09], device=dev)
    p["tint"] = col(2.0 * (1 + lt))  # the final [0, 1] -> [-1, 1] map is folded into the tint
    return p


def _rgb(r: float, g: float, b: float, device: torch.device) -> Tensor:
    return torch.tensor([r, g, b], device=device).view(1, 3, 1, 1)


class _Rows:
    """The images of a chunk that an optional layer (glasses, beard, long hair, ...) is drawn on.

    Evaluating a layer only on those rows and compositing them back gives the same pixels as evaluating it
    everywhere with zero coverage elsewhere, at a fraction of the cost.
    """

    def __init__(self, mask: Tensor) -> None:
        self.idx = mask.flatten().nonzero().flatten()
        self.empty = self.idx.numel() == 0

    def __call__(self, t: Tensor) -> Tensor:
        """Select the rows of a per-image tensor; tensors shared by all images pass through."""
        return t if t.shape[0] == 1 else t.index_select(0, self.idx)

    def lerp_(self, view: Tensor, color: Tensor, cov: Tensor) -> None:
        """Composite ``color`` with coverage ``cov`` (both already selected) into the selected rows."""
        part = view.index_select(0, self.idx)
        part.lerp_(color, cov.unsqueeze(1))
        view.index_copy_(0, self.idx, part)


def render_chunk(
    f: dict[str, Tensor],
    index: Tensor,
    *,
    resolution: int,
    detail_seed: int | None,
    hide: frozenset[str] = frozenset(),
) -> Tensor:
    """Render one chunk of images, all tensors on one device.

    Args:
        f: ``{factor: Tensor [N]}`` as from ``sample_factors``.
        index: int64 ``[N]`` image indices; they key the stochastic detail.
        resolution: output height and width.
        detail_seed: seed of the stochastic detail, or None to render without it.
        hide: parts left out (``HIDEABLE_PARTS``), to measure what they add to the image.

    Returns:
        ``[N, 3, resolution, resolution]`` float32 in [-1, 1].
    """
    res = resolution
    n = index.shape[0]
    dev = index.device
    p = _params(f, res)
    k = p["k"]
    a, b = p["a"], p["b"]
    detail = detail_seed is not None

    def rnd(stream: int, lo: float = 0.0, hi: float = 1.0) -> Tensor:
        u = hash_uniform(detail_seed, DETAIL_STREAM_BASE + stream, index)  # type: ignore[arg-type]
        return (lo + (hi - lo) * u).view(n, 1, 1)

    # --- background: vertical light falloff plus the labelled gradient; separable, so cheap --------------
    full = _Frame(res, (-1.0, 1.0, -1.0, 1.0), dev)
    x, y = full.x, full.y
    shade = 1.0 + p["grad"] * x - 0.12 * y
    if detail:
        speck = _noise_grid(detail_seed, 1, index, 40) - 0.5
        speck = F.interpolate(speck, size=(res, res), mode="bilinear", align_corners=False)[:, 0]
        shade = speck.mul_(0.07).add_(shade)
    img = p["bg"] * shade.unsqueeze(1)

    # --- head window frames ---------------------------------------------------------------------------
    hw = _Frame(res, _HEAD_WINDOW, dev)
    head_view = hw.crop(img)
    hx, hy = hw.head(p)
    # Hair shading: a highlight band across the crown plus (detail) wavy strands.
    hshade = (1 - ((hy + 0.6 * b) * 5).abs_()).clamp_(min=0).mul_(0.2).add_(1.0)
    if detail:
        freq, ph = rnd(2, 70.0, 120.0), rnd(3, 0.0, 6.28)
        wave = torch.sin(7 * hy + ph).mul_(0.03).add_(hx).mul_(freq).add_(ph)
        hshade = torch.sin(wave).mul_(0.07).add_(hshade)
    hair_px = p["hair"] * hshade.unsqueeze(1)

    # Long hair falls behind the head and shoulders; a bun sits on the crown. Both go behind everything.
    rows = _Rows((p["long"] + p["bun"]) > 0)
    if not rows.empty:
        sx, sy, sa, sb, sk = rows(hx), rows(hy), rows(a), rows(b), rows(k)
        d_long = (torch.sqrt((sx / (sa + 0.13)) ** 2 + ((sy - 0.25 * sb) / (1.22 * sb)) ** 2) - 1) * (
            sa + 0.13
        )
        d_long = torch.maximum(d_long, sy - 1.3 * sb)
        d_bun = _circ(sx, sy + sb + 0.07, 0.16)
        back = torch.maximum(_cov(d_long, sk) * rows(p["long"]), _cov(d_bun, sk) * rows(p["bun"]))
        rows.lerp_(head_view, rows(hair_px) * 0.78, back)

    # --- neck and shirt (image frame: the body does not roll with the head) ------------------------------
    xn = x - p["cx"]
    d_neck = torch.maximum(xn.abs() - 0.17 * k / (res / 2.0), (p["cy"] + 0.3) - y)
    _lerp_(img, p["skin_dark"], _cov(d_neck, res / 2.0))
    d_shirt = torch.sqrt((xn * 0.78) ** 2 + (y - 1.22) ** 2) - 0.62
    d_collar = torch.sqrt(xn * xn + (y - 0.66) ** 2) - 0.15 * k / (res / 2.0)  # inside the neck
    _lerp_(img, p["shirt"], _cov(torch.maximum(d_shirt, -d_collar), res / 2.0))

    # --- ears and head ---------------------------------------------------------------------------------
    # One evaluation for both ears through |hx|: as the head turns, the near ear widens and the far ear
    # slides behind the head.
    ysin, ysin_abs = p["ysin"], p["ysin"].abs()
    near = (hx * ysin) < 0
    ear_w = torch.where(near, 0.075 + 0.04 * ysin_abs, 0.075 - 0.03 * ysin_abs)
    ear_x = torch.where(near, a - 0.005, a - 0.005 - 0.12 * ysin_abs)
    eu = (hx.abs() - ear_x).div_(ear_w)
    ev = (hy - 0.02 * b) / 0.11
    d_ear = torch.sqrt(eu.mul_(eu).add_(ev.mul_(ev))).sub_(1).mul_(0.05)
    _lerp_(head_view, p["skin_dark"] * 1.1, _cov(d_ear, k))

    # Head outline: an ellipse whose lower half tapers to the jaw; the chin follows the yaw and the far side
    # of the face is narrower.
    t = (hy / b).clamp_(0, 1)
    u = (hx - (0.42 * a * ysin) * t).div_((1 - p["taper"] * t * t).mul_(a))
    u = u.mul_(u * (0.16 * ysin) + 1)
    v = hy / b
    r2 = u * u + v * v
    d_head = torch.sqrt(r2).sub_(1).mul_(a)
    skin_shade = 1.08 - 0.16 * r2 + 0.05 * u
    if detail:
        blotch = _noise_grid(detail_seed, 4, index, 6) - 0.5
        blotch = F.interpolate(blotch, size=(res, res), mode="bilinear", align_corners=False)
        skin_shade = (
            hw.crop(blotch)[:, 0].mul(0.08).add_(skin_shade)
        )  # full-frame field: windows change nothing
    _lerp_(head_view, p["skin"] * skin_shade.unsqueeze(1), _cov(d_head, k))

    # --- face window frames; freckles go on the skin before beard and hair ------------------------------
    fw = _Frame(res, _FACE_WINDOW, dev)
    face_view = fw.crop(img)
    hxf, fy = fw.head(p)
    fx = _Frame.face(hxf, p)
    afx = fx.abs()
    if detail:
        # Sparse dots on a lattice attached to the face (so they turn with it), only on the cheeks and nose.
        density = rnd(5, -0.25, 0.3)
        rows = _Rows(density > 0.01)
        if not rows.empty:
            g = 32
            c = (torch.arange(g, device=dev, dtype=torch.float32) + 0.5) / g - 0.5  # cell centres, face units
            cy, cx = c.view(-1, 1), c.abs()
            cheek = ((cy > -0.02) & (cy < 0.16) & (cx > 0.04) & (cx < 0.3)).float()
            dots = (_noise_grid(detail_seed, 6, rows(index), g) < rows(density).unsqueeze(1)).float() * cheek
            sx, sy = rows(fx), rows(fy)
            on = F.grid_sample(
                dots, torch.stack((sx * 2, sy * 2), dim=-1), mode="nearest", align_corners=False
            )
            # Round dots: distance to the centre of the pixel's lattice cell.
            cu = (sx * g).frac_().abs_().sub_(0.5)
            cv = (sy * g).frac_().abs_().sub_(0.5)
            d_dot = torch.sqrt(cu.mul_(cu).add_(cv.mul_(cv))).sub_(0.22).mul_(1.0 / g)
            rows.lerp_(face_view, rows(p["skin_dark"]) * 0.8, _cov(d_dot, rows(k)).mul_(on[:, 0]).mul_(0.5))

    # --- beard, hair cap, stray hairs ----------------------------------------------------------------------
    # Hairline and beard line stop at the sides of the face (|fx| = a), or the squeezed far side of a turned
    # head would pull them down over the cheek.
    fxh = _Frame.face(hx, p)
    side2 = (fxh / a).clamp_(-1, 1).square_()
    rows = _Rows(p["beard"] > 0)
    if not rows.empty:
        # The lower face below a line rising to the sideburns, reaching a little past the jaw.
        sb = rows(b)
        d_beard = torch.maximum(
            rows(d_head) - 0.035 * rows(t), (0.36 * sb - 0.30 * sb * rows(side2)) - rows(hy)
        )
        rows.lerp_(head_view, rows(hair_px) * 0.85, _cov(d_beard, rows(k)))
    rows = _Rows(p["has_hair"] > 0)
    if not rows.empty:
        # A grown head ellipse above a hairline that dips to the temples (with a fringe wave).
        sx, sy, sa, sb = rows(hx), rows(hy), rows(a), rows(b)
        grow_y = rows(p["grow_y"])
        gx, gy = sa + rows(p["grow_x"]), sb + grow_y
        d_out = torch.sqrt((sx / gx) ** 2 + ((sy + 0.5 * grow_y) / gy) ** 2).sub_(1).mul_(sa)
        hl = (
            rows(p["hairline"]) * sb + 0.42 * sb * rows(side2) + rows(p["fringe"]) * torch.sin(rows(fxh) * 30)
        )
        rows.lerp_(head_view, rows(hair_px), _cov(torch.maximum(d_out, sy - hl), rows(k)))
        if detail:
            # Stray hairs: two short strokes following the hair outline just outside it, at random places.
            strays = []
            for i in range(2):
                gap = rows(rnd(10 + 3 * i, 0.005, 0.03))
                x0 = rows(rnd(11 + 3 * i, -0.35, 0.35))
                on = rows((rnd(12 + 3 * i) < 0.7).float())
                ring = (d_out - gap).abs_().sub_(0.004)
                span = (sx - x0).abs_().sub_(0.1 + 0.1 * on)  # "off" strokes keep a zero-length span
                strays.append(torch.maximum(torch.maximum(ring, span), sy + 0.3 * sb).add_((1 - on) * 1e3))
            rows.lerp_(head_view, rows(hair_px), _cov(torch.minimum(*strays), rows(k)))
    # --- brows, eyes, nose, mouth, moustache, glasses (face frame) ----------------------------------------
    eye_x, eye_y = 0.40 * a, -0.12 * b
    # Eyebrows: tapered arcs; raise lifts and arches them, tilt moves the inner ends.
    bx = (afx - eye_x).div_(0.10)
    raise_ = p["brow_raise"]
    arch = 0.025 + 0.02 * raise_.clamp(min=0)
    yc = (arch * bx - 0.06 * p["brow_tilt"]).mul_(bx).add_(eye_y - 0.09 - 0.05 * raise_)
    d_brow = torch.maximum((fy - yc).abs_().sub_(0.016).add_(0.006 * bx), (bx.abs() - 1).mul_(0.1))
    if "brows" not in hide:
        _lerp_(face_view, p["brow"], _cov(d_brow, k))

    # Eyes: the opening's height comes from eye_open; iris and pupil are clipped by it; a lash line rims
    # the upper lid. Irises look at the viewer, i.e. against the head's turn.
    ex = afx - eye_x
    ey = fy - eye_y
    d_eye = _ellipse(ex, ey, 0.09, p["eye_h"], thin=True)
    sclera = _cov(d_eye, k)
    _lerp_(face_view, _rgb(0.96, 0.95, 0.93, dev), sclera)
    ix = torch.sign(fx).mul_(0.035 * ysin).add_(ex)
    d_iris = torch.sqrt(ix.mul_(ix).add_(ey * ey)).sub_(0.044)
    _lerp_(face_view, p["iris"], torch.minimum(_cov(d_iris, k), sclera))
    _lerp_(face_view, _rgb(0.04, 0.03, 0.03, dev), torch.minimum(_cov(d_iris.add_(0.025), k), sclera))
    lash = _cov(d_eye.abs_().sub_(0.0065), k).mul_(ey < 0.35 * p["eye_h"])
    _lerp_(face_view, _rgb(0.10, 0.06, 0.05, dev), lash)

    # Nose: protrudes, so it moves further with yaw than the eyes; soft shaded ball, ridge and nostrils.
    ns = p["nose"]
    nx = fx - 0.10 * ysin
    ny = fy - 0.20 * b
    # Shading edges are soft over a fixed width in head units (not pixels), so the look holds at every size.
    soft = k.clamp(max=20.0)
    d_ball = torch.sqrt((nx / (0.05 * ns)) ** 2 + (ny / (0.035 * ns)) ** 2).sub_(1).mul_(0.035 * ns)
    ridge = _cov(_ellipse(nx - 0.03 * ns, fy + 0.01, 0.015, 0.16 * b, thin=True), soft)
    _lerp_(face_view, p["skin_dark"] * 0.9, torch.maximum(_cov(d_ball, soft), ridge).mul_(0.7))
    nu = (nx.abs() - 0.025 * ns) / (0.011 * ns)
    nv = (ny - 0.012 * ns) / (0.006 * ns)
    d_nostril = torch.sqrt(nu.mul_(nu).add_(nv.mul_(nv))).sub_(1).mul_(0.006 * ns)
    _lerp_(face_view, p["skin_dark"] * 0.45, _cov(d_nostril, k))

    # Mouth: a curve whose corners rise with smile; mouth_open parts the lips to show teeth.
    mx = (fx - 0.05 * ysin).div_(0.14)
    m2 = mx * mx
    w1 = (1 - m2).clamp_(min=0)
    my = (m2 - 0.3).mul_(p["smile"] * 0.07).add_(fy).sub_(0.45 * b)
    oh = (p["open"] ** 1.5 * 0.055) * w1 + 0.0045
    amy = my.abs()
    side = mx.abs_().sub_(1).mul_(0.14)
    d_lips = torch.maximum(amy - oh - (0.02 * w1 + 0.004), side - 0.006)
    _lerp_(face_view, p["lip"], _cov(d_lips, k))
    rows = _Rows(p["moustache"] > 0)
    if not rows.empty:
        # Over the upper lip, drooping towards the mouth corners.
        must_y = rows(fy) - rows(0.45 * b - 0.048) - 0.03 * rows(m2)
        d_must = _ellipse(rows(fx) - rows(0.05 * ysin), must_y, 0.14, 0.018 + 0.01 * rows(w1))
        rows.lerp_(face_view, rows(p["hair"]) * 0.9, _cov(d_must, rows(k)))
    d_in = torch.maximum(amy - oh, side)
    _lerp_(face_view, _rgb(0.30, 0.05, 0.07, dev), _cov(d_in, k))
    d_teeth = torch.maximum(d_in, my.add_(0.35 * oh))
    _lerp_(face_view, _rgb(0.95, 0.94, 0.88, dev), _cov(d_teeth, k).mul_(p["open"] > 0.2))

    # Glasses: two rims (one evaluation through |fx|), bridge and temple arms; faint lens reflection.
    rows = _Rows(p["glasses"] > 0)
    if not rows.empty:
        sfx, sk, seye_x = rows(afx), rows(k), rows(eye_x)
        gx = sfx - seye_x
        gy = rows(fy) - rows(eye_y + 0.005)
        d_lens = torch.sqrt((gx / 0.125) ** 2 + (gy / 0.09) ** 2).sub_(1).mul_(0.09)
        d_rim = d_lens.abs() - 0.011
        d_bridge = torch.maximum(sfx - (seye_x - 0.11), (gy + 0.025).abs_().sub_(0.009))
        d_arm = torch.maximum(seye_x + 0.11 - sfx, rows(hxf).abs() - rows(0.96 * a))
        d_arm = torch.maximum(d_arm, (gy + 0.035).abs_().sub_(0.008))
        frame = _cov(torch.minimum(torch.minimum(d_rim, d_bridge), d_arm), sk)
        rows.lerp_(face_view, _rgb(0.85, 0.92, 1.0, dev), _cov(d_lens, sk).mul_(0.12))
        rows.lerp_(face_view, rows(p["frame"]), frame)

    return img.mul_(p["tint"]).sub_(1.0).clamp_(-1, 1)
