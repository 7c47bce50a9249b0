"""SynthFaces factors of variation: counter-based sampling and the binary attributes derived from them.

Every image ``i`` of a SynthFaces stream is described by a fixed set of factors (head yaw, smile, hair colour,
...). Each factor of image ``i`` is a pure function of ``(seed, i, factor)``: a 32-bit integer hash
(Thomas Mueller's ``0x45d9f3b`` xor-shift-multiply mix, applied three times) of the seed, the factor's stream
id and the image index gives a uniform number in ``[0, 1)`` with 24 exact bits. No generator state is
carried from one image to the next, so image ``i`` is the same whether it is drawn alone, in a batch of 4096,
on the CPU or on a GPU; and because every factor reads its own hash stream, the factors are independent by
construction (``tests/test_synthfaces.py`` measures it).

Continuous factors are uniform on their range minus a small gap around every attribute threshold
(``ATTRIBUTE_GAP`` of the range on each side), so a binary attribute ``factor > t`` is never ambiguous: no
image sits on the fence between "smiling" and "not smiling", which is what lets the attribute classifier and
the SVM directions be judged against a clean ground truth. Positive rates stay exactly known. Categorical factors draw a category from fixed probabilities. The binary attributes (what the
SVM directions and the attribute classifier are trained on) are thresholds or category tests on single
factors, chosen so that every one is between 15% and 85% positive.
"""

from __future__ import annotations

import torch
from torch import Tensor

_MASK32 = 0xFFFFFFFF

# name -> (low, high) of a uniform distribution. The order is the public order of CONTINUOUS_FACTORS.
_CONTINUOUS_RANGES: dict[str, tuple[float, float]] = {
    # coarse: geometry
    "yaw": (-1.0, 1.0),  # -1 = turned to the viewer's left, +1 = to the right (about 40 degrees)
    "roll": (-1.0, 1.0),  # in-plane tilt, +1 = clockwise, about 14 degrees
    "face_length": (0.0, 1.0),  # round -> long
    "jaw_width": (0.0, 1.0),  # pointed chin -> square jaw
    "head_scale": (0.0, 1.0),  # smaller -> larger head
    "head_x": (-1.0, 1.0),  # horizontal position jitter
    "head_y": (-1.0, 1.0),  # vertical position jitter
    # middle: facial features
    "eye_open": (0.0, 1.0),  # closed -> wide open
    "smile": (-1.0, 1.0),  # frown -> smile (mouth-corner curvature)
    "mouth_open": (0.0, 1.0),
    "brow_raise": (-1.0, 1.0),  # lowered -> raised and arched
    "brow_tilt": (-1.0, 1.0),  # inner ends down (stern) -> inner ends up (worried)
    "nose_size": (0.0, 1.0),
    # fine: colour
    "skin_tone": (0.0, 1.0),  # light -> dark
    "lip_color": (0.0, 1.0),  # pale -> deep red
    "glasses_color": (0.0, 1.0),  # position along a frame palette (black, tortoise, red, blue, gold)
    "bg_hue": (0.0, 1.0),
    "bg_brightness": (0.0, 1.0),
    "bg_gradient": (-1.0, 1.0),  # direction and strength of the background gradient
    "light_tint": (-1.0, 1.0),  # cool -> warm light
    "clothes_hue": (0.0, 1.0),
}

# name -> (category names, probabilities). Stored as int64 category indices.
CATEGORICAL_FACTORS: dict[str, tuple[tuple[str, ...], tuple[float, ...]]] = {
    "hair_style": (("bald", "short", "long", "bun"), (0.22, 0.30, 0.30, 0.18)),
    "eyeglasses": (("none", "glasses"), (0.62, 0.38)),
    "beard": (("none", "moustache", "beard"), (0.55, 0.20, 0.25)),
    "hair_color": (("black", "brown", "blond", "red", "grey"), (0.24, 0.24, 0.22, 0.13, 0.17)),
    "iris_color": (("brown", "blue", "green", "grey"), (0.40, 0.30, 0.15, 0.15)),
}

CONTINUOUS_FACTORS: tuple[str, ...] = tuple(_CONTINUOUS_RANGES)
FACTORS: tuple[str, ...] = CONTINUOUS_FACTORS + tuple(CATEGORICAL_FACTORS)

FACTOR_GROUPS: dict[str, tuple[str, ...]] = {
    "coarse": ("yaw", "roll", "face_length", "jaw_width", "hair_style", "eyeglasses", "head_scale", "head_x",
               "head_y"),
    "middle": ("eye_open", "smile", "mouth_open", "brow_raise", "brow_tilt", "nose_size", "beard"),
    "fine": ("skin_tone", "hair_color", "iris_color", "lip_color", "glasses_color", "bg_hue", "bg_brightness",
             "bg_gradient", "light_tint", "clothes_hue"),
}  # fmt: skip

# Binary attribute -> (factor, test, threshold or category set). Derived from one factor each, so attributes
# that come from different factors are exactly as independent as their factors.
_ATTRIBUTE_RULES: dict[str, tuple[str, str, float | tuple[int, ...]]] = {
    "facing_left": ("yaw", "<", -0.3),
    "facing_right": ("yaw", ">", 0.3),
    "tilted_head": ("roll", "abs>", 0.5),
    "long_face": ("face_length", ">", 0.6),
    "wide_jaw": ("jaw_width", ">", 0.6),
    "bald": ("hair_style", "in", (0,)),
    "long_hair": ("hair_style", "in", (2,)),
    "hair_bun": ("hair_style", "in", (3,)),
    "eyeglasses": ("eyeglasses", "in", (1,)),
    "eyes_closed": ("eye_open", "<", 0.25),
    "smiling": ("smile", ">", 0.25),
    "frowning": ("smile", "<", -0.4),
    "mouth_open": ("mouth_open", ">", 0.6),
    "raised_brows": ("brow_raise", ">", 0.4),
    "big_nose": ("nose_size", ">", 0.65),
    "moustache": ("beard", "in", (1, 2)),
    "beard": ("beard", "in", (2,)),
    "dark_skin": ("skin_tone", ">", 0.6),
    "dark_hair": ("hair_color", "in", (0, 1)),
    "blond_hair": ("hair_color", "in", (2,)),
    "grey_hair": ("hair_color", "in", (4,)),
    "blue_eyes": ("iris_color", "in", (1,)),
    "red_lips": ("lip_color", ">", 0.7),
    "light_background": ("bg_brightness", ">", 0.6),
    "warm_light": ("light_tint", ">", 0.3),
}
BINARY_ATTRIBUTES: tuple[str, ...] = tuple(_ATTRIBUTE_RULES)

# Labels of the features drawn as mirror copies about the face's axis (eyes, brows, mouth): a face and its
# mirror image share them (yaw, roll, head_x and the facing_* labels flip; nose shading and hair do not mirror).
MIRROR_SYMMETRIC: tuple[str, ...] = (
    "eye_open", "eyes_closed", "smile", "smiling", "frowning", "mouth_open", "brow_raise", "brow_tilt",
    "raised_brows",
)  # fmt: skip

# Half-width of the excluded band around each attribute threshold, as a fraction of the factor's range.
ATTRIBUTE_GAP = 0.06


def _allowed_intervals(name: str) -> list[tuple[float, float]]:
    """The factor's range minus ``(t - gap, t + gap)`` around every threshold an attribute puts on it."""
    lo, hi = _CONTINUOUS_RANGES[name]
    gap = ATTRIBUTE_GAP * (hi - lo)
    cuts = []
    for factor, op, arg in _ATTRIBUTE_RULES.values():
        if factor == name and op in ("<", ">"):
            cuts.append(float(arg))
        elif factor == name and op == "abs>":
            cuts += [-float(arg), float(arg)]
    intervals, left = [], lo
    for t in sorted(cuts):
        intervals.append((left, t - gap))
        left = t + gap
    intervals.append((left, hi))
    return intervals


_ALLOWED = {name: _allowed_intervals(name) for name in _CONTINUOUS_RANGES}


def _gapped(u: Tensor, intervals: list[tuple[float, float]]) -> Tensor:
    """Map uniform ``u`` in [0, 1) monotonically and uniformly onto a union of disjoint intervals."""
    if len(intervals) == 1:
        ((lo, hi),) = intervals
        return lo + (hi - lo) * u
    lengths = torch.tensor([b - a for a, b in intervals], dtype=torch.float64)
    ends = torch.cumsum(lengths, 0) / lengths.sum()  # right edge of every interval in u-space
    starts = torch.cat([torch.zeros(1, dtype=torch.float64), ends[:-1]])
    lows = torch.tensor([a for a, _ in intervals], dtype=torch.float64)
    u64 = u.double().cpu()
    k = torch.bucketize(u64, ends, right=True).clamp_(max=len(intervals) - 1)
    x = lows[k] + (u64 - starts[k]) / (ends[k] - starts[k]) * lengths[k]
    return x.to(torch.float32).to(u.device)


# Hash streams: one per factor, then a block reserved for the renderer's stochastic detail.
_STREAM = {name: i + 1 for i, name in enumerate(FACTORS)}
DETAIL_STREAM_BASE = 1000


def hash32(x: Tensor | int) -> Tensor | int:
    """Mix 32-bit unsigned integers (held in int64) into well-distributed 32-bit hashes.

    The multiplier is below 2**27, so every product stays below 2**59 and int64 arithmetic never
    overflows: the result is bit-identical on every device and for Python ints.

    Args:
        x: int64 tensor (or int) with values in ``[0, 2**32)``.

    Returns:
        Hashes of the same shape, values in ``[0, 2**32)``.
    """
    x = x ^ (x >> 16)
    x = (x * 0x45D9F3B) & _MASK32
    x = x ^ (x >> 16)
    x = (x * 0x45D9F3B) & _MASK32
    return x ^ (x >> 16)


def hash_uniform(seed: int, stream: int, index: Tensor, salt: Tensor | int = 0) -> Tensor:
    """Counter-based uniform numbers: a pure function of (seed, stream, index, salt).

    Args:
        seed: non-negative integer seed.
        stream: which independent sequence (a factor or a detail channel).
        index: int64 tensor of image indices (any shape, any device).
        salt: optional extra counter broadcast against ``index`` (e.g. a cell number of a noise grid).

    Returns:
        float32 tensor broadcast from ``index`` and ``salt``, values in ``[0, 1)`` on a 2**-24 grid.
    """
    key = hash32(hash32((seed & _MASK32) ^ 0x5BD1E995) ^ ((stream * 0x27D4EB2F) & _MASK32))
    h = hash32((index & _MASK32) ^ key)
    h = hash32(h ^ ((index >> 32) & _MASK32))
    if not (isinstance(salt, int) and salt == 0):
        h = hash32(h ^ salt)
    return (h >> 8).to(torch.float32) * (1.0 / (1 << 24))


def sample_factors(
    n: int, *, seed: int, start: int = 0, device: str | torch.device = "cpu"
) -> dict[str, Tensor]:
    """Sample the factors of images ``start .. start + n - 1`` of the stream ``seed``.

    Args:
        n: number of images.
        seed: non-negative stream seed.
        start: index of the first image.
        device: where the tensors live; values do not depend on it.

    Returns:
        ``{factor: Tensor [n]}`` in the order of ``FACTORS``: float32 for ``CONTINUOUS_FACTORS`` (uniform on
        their range minus the ``ATTRIBUTE_GAP`` bands around attribute thresholds), int64 category indices
        for ``CATEGORICAL_FACTORS``.

    Raises:
        ValueError: if ``n``, ``seed`` or ``start`` is negative.
    """
    if n < 0 or seed < 0 or start < 0:
        raise ValueError(f"n, seed and start must be non-negative, got n={n}, seed={seed}, start={start}")
    index = torch.arange(start, start + n, dtype=torch.int64, device=device)
    out: dict[str, Tensor] = {}
    for name in _CONTINUOUS_RANGES:
        out[name] = _gapped(hash_uniform(seed, _STREAM[name], index), _ALLOWED[name])
    for name, (_, probs) in CATEGORICAL_FACTORS.items():
        u = hash_uniform(seed, _STREAM[name], index)
        cat = torch.zeros(n, dtype=torch.int64, device=device)
        edge = 0.0
        for p in probs[:-1]:
            edge += p
            cat += (u >= edge).to(torch.int64)
        out[name] = cat
    return out


def binary_attributes(factors: dict[str, Tensor]) -> dict[str, Tensor]:
    """Derive the binary attributes from factors.

    Args:
        factors: ``{factor: Tensor [N]}`` as returned by :func:`sample_factors` (extra keys are ignored).

    Returns:
        ``{attribute: bool Tensor [N]}`` in the order of ``BINARY_ATTRIBUTES``.
    """
    out: dict[str, Tensor] = {}
    for name, (factor, op, arg) in _ATTRIBUTE_RULES.items():
        v = factors[factor]
        if op == "<":
            out[name] = v < arg
        elif op == ">":
            out[name] = v > arg
        elif op == "abs>":
            out[name] = v.abs() > arg
        else:  # "in": category membership
            out[name] = torch.zeros_like(v, dtype=torch.bool)
            for c in arg:
                out[name] |= v == c
    return out


def attribute_matrix(factors: dict[str, Tensor]) -> Tensor:
    """Stack the binary attributes into one label matrix.

    Args:
        factors: ``{factor: Tensor [N]}``.

    Returns:
        float32 Tensor ``[N, len(BINARY_ATTRIBUTES)]`` of 0/1 in ``BINARY_ATTRIBUTES`` order.
    """
    attrs = binary_attributes(factors)
    return torch.stack([attrs[a] for a in BINARY_ATTRIBUTES], dim=1).to(torch.float32)
