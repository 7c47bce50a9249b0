"""Directions: InterFaceGAN SVM directions (from the classifier or from your own clicks), GANSpace PCA and SeFa.

Fit "which way in W is a smile?", edit with sliders (row range and conditional toggles per slot), compare
SVM / PCA / SeFa on one seed, plot the classifier's scores along the edit path, and measure how linearly
separable the attributes are in Z and in W (StyleGAN paper, Sec. 4.2).
"""

from __future__ import annotations

import tempfile
import threading
import uuid
from dataclasses import dataclass
from pathlib import Path

import gradio as gr

from app import models
from app.common import model_recipe, parse_seed, parse_seed_list, recipe_image, require_model, user_errors
from app.config import REPO_ROOT
from app.state import Shared
from core import directions as cd
from core.directions import views
from core.directions.evaluate import separability_z_vs_w
from core.directions.guided import guided_edit
from core.errors import StyleScopeError
from core.images import make_grid, to_pil
from core.render import recipe_ws, render_tensor

DIRECTIONS_DIR = REPO_ROOT / "assets" / "directions"
DEFAULT_CLASSIFIER = REPO_ROOT / "assets" / "models" / "synthfaces-classifier.safetensors"
SESSION_DIR = Path(tempfile.gettempdir()) / "stylescope-directions"
N_SLOTS = 3
MAX_LABEL_SEEDS = 64
MAX_FIT_SAMPLES = 20_000
STEPS = (-2.0, -1.0, 0.0, 1.0, 2.0)
ROW_CHOICES = ["all", "coarse", "middle", "fine"]
EXPLAIN = (
    "**InterFaceGAN**: label samples (with the attribute classifier or by clicking), fit a linear SVM in W, "
    "and move across its boundary: `w' = w + alpha * v`, where `v` is the SVM normal `n` stretched by the "
    "covariance of W (`v = S n / n.S n`, the most typical way across; in Z it is `n` itself). Strengths are "
    "in standard deviations of the data along `n`. **Rows** restrict an edit to a layer group; **keep fixed** makes the direction "
    "orthogonal to other directions (conditional manipulation), so those attributes stay put."
)

_lock = threading.Lock()
_sets: dict[tuple[str, int], cd.DirectionSet] = {}
_scorers: dict[tuple[str, int, str], cd.ClassifierScorer] = {}


@dataclass
class DirectionsTab:
    set_file: gr.Dropdown
    upload: gr.File
    set_path: gr.State
    set_info: gr.Markdown
    download: gr.File
    classifier: gr.Textbox
    attribute: gr.Dropdown
    samples: gr.Slider
    space: gr.Radio
    fit: gr.Button
    fit_info: gr.Markdown
    label_seeds: gr.Textbox
    label_show: gr.Button
    label_grid: gr.Gallery
    label_yes: gr.CheckboxGroup
    label_name: gr.Textbox
    label_csv: gr.File
    label_fit: gr.Button
    seed: gr.Textbox
    psi: gr.Slider
    slots: list[tuple[gr.Dropdown, gr.Slider, gr.Dropdown, gr.Dropdown]]
    render: gr.Button
    image: gr.Image
    recipe: gr.Code
    cmp_svm: gr.Dropdown
    cmp_pca: gr.Dropdown
    cmp_sefa: gr.Dropdown
    cmp_go: gr.Button
    cmp_image: gr.Image
    plot_dir: gr.Dropdown
    plot_go: gr.Button
    plot: gr.Plot
    sep_samples: gr.Slider
    sep_go: gr.Button
    sep_table: gr.Dataframe
    g_attribute: gr.Dropdown
    g_target: gr.Radio
    g_free: gr.Dropdown
    g_steps: gr.Slider
    g_hold: gr.Slider
    g_go: gr.Button
    g_info: gr.Markdown


# ---------------------------------------------------------------------------------------------- stores
def get_set(path: str) -> cd.DirectionSet:
    """Process-wide cache of loaded direction sets, keyed by path and modification time."""
    p = Path(path)
    key = (str(p.resolve()), p.stat().st_mtime_ns)
    with _lock:
        if key not in _sets:
            _sets[key] = cd.load_directions(p)
        return _sets[key]


def get_scorer(path: str) -> cd.ClassifierScorer:
    p = Path(path or DEFAULT_CLASSIFIER)
    if not p.is_file():
        raise gr.Error(f"no attribute classifier at {p}", print_exception=False)
    key = (str(p.resolve()), p.stat().st_mtime_ns, str(models.device()))
    with _lock:
        if key not in _scorers:
            _scorers[key] = cd.load_scorer(p, device=models.device())
        return _scorers[key]


def shipped_sets() -> list[str]:
    return [str(p) for p in sorted(DIRECTIONS_DIR.glob("*.safetensors"))] if DIRECTIONS_DIR.is_dir() else []


def names_of(set_path: str, method: str | None = None) -> list[str]:
    if not set_path:
        return []
    s = get_set(set_path)
    return [
        n
        for n in s.base_names()
        if method is None or s[n].method in (method if isinstance(method, tuple) else (method,))
    ]


def _save_session_set(dirs: cd.DirectionSet) -> str:
    """Sessions never overwrite shipped files: every change is written to a fresh temporary set."""
    path = SESSION_DIR / f"{uuid.uuid4().hex}.safetensors"
    cd.save_directions(dirs, path)
    return str(path)


def _session_base(set_path: str, model: str) -> cd.DirectionSet:
    G = models.get(model)
    digest = models.digest(model)
    if set_path:
        base = get_set(set_path)
        if base.model_hash in (None, digest):
            return cd.DirectionSet(
                [base[n] for n in base.base_names()], model_hash=digest, num_ws=G.num_ws,
                layer_groups=G.layer_groups, meta=base.meta,
            )  # fmt: skip
    return cd.DirectionSet(model_hash=digest, num_ws=G.num_ws, layer_groups=G.layer_groups)


def _quality(d: cd.Direction) -> str:
    """``"svm, acc 0.94, edits 0.77"``: method, SVM validation accuracy, measured edit success when known."""
    parts = [d.method]
    if d.accuracy:
        parts.append(f"acc {d.accuracy:.2f}")
    if isinstance(d.meta.get("edit_success"), float):
        parts.append(f"edits {d.meta['edit_success']:.2f}")
    return ", ".join(parts)


def _set_updates(set_path: str):
    """Outputs after the set changed: state, info, download, slot/compare/plot dropdown choices."""
    dirs = get_set(set_path) if set_path else None
    allnames = names_of(set_path)
    info = "No directions loaded." if not dirs else (
        f"**{len(dirs)} directions** (model {dirs.model_hash or '?'}): "
        + ", ".join(f"{n} ({_quality(dirs[n])})" for n in allnames[:40])
    )  # fmt: skip
    svm = names_of(set_path, ("svm", "user"))
    pca, sefa = names_of(set_path, "pca"), names_of(set_path, "sefa")
    slot = [gr.update(choices=allnames, value=None) for _ in range(N_SLOTS)]
    conds = [gr.update(choices=allnames, value=[]) for _ in range(N_SLOTS)]
    return (
        set_path, info, set_path or None,
        *slot, *conds,
        gr.update(choices=svm, value=svm[0] if svm else None),
        gr.update(choices=pca, value=pca[0] if pca else None),
        gr.update(choices=sefa, value=sefa[0] if sefa else None),
        gr.update(choices=allnames, value=svm[0] if svm else None),
    )  # fmt: skip


# ---------------------------------------------------------------------------------------------- handlers
def load_set(choice: str, upload, model: str):
    """Open a shipped set or an uploaded ``.safetensors`` set; must belong to the current model."""
    path = upload if upload else choice
    if not path:
        return _set_updates("")
    with user_errors():
        dirs = get_set(str(path))
        if model and dirs.model_hash and dirs.model_hash != models.digest(model):
            raise gr.Error(
                f"these directions were fitted on model {dirs.model_hash}, not on the current model",
                print_exception=False,
            )
    return _set_updates(str(path))


def matching_set(model: str) -> str:
    """The first shipped direction set fitted on ``model`` (``""`` when none is), for automatic loading."""
    if not model:
        return ""
    digest = models.digest(model)
    for path in shipped_sets():
        try:
            if get_set(path).model_hash == digest:
                return path
        except StyleScopeError:
            continue  # a broken shipped file must not stop the page from loading
    return ""


def load_matching_set(model: str):
    """On page load / model change: open the shipped set of this model if there is one, silently otherwise."""
    return _set_updates(matching_set(model))


def attributes_of(classifier: str) -> gr.Dropdown:
    with user_errors():
        scorer = get_scorer(classifier) if Path(classifier or DEFAULT_CLASSIFIER).is_file() else None
        names = [*scorer.attributes, *scorer.available_factors] if scorer else []
    return gr.update(choices=names, value=names[0] if names else None)


def fit_classifier(model, set_path, classifier, attribute, samples, space, progress=gr.Progress()):
    """Collect ``samples`` scored latents, fit the attribute's SVM direction and add it to the session set."""
    require_model(model)
    if not attribute:
        raise gr.Error("choose an attribute", print_exception=False)
    with user_errors():
        scorer = get_scorer(classifier).for_column(attribute)
        with models.use(model) as G:
            s = cd.collect(
                G, scorer, int(samples), space=space, progress=lambda d, t: progress((d, t), desc="collect")
            )
            d = cd.fit_attribute_direction(
                s, attribute, space=space, num_ws=G.num_ws, covariance=cd.w_covariance(G),
                threshold=scorer.threshold_of(attribute),
            )  # fmt: skip
        dirs = _session_base(set_path, model)
        dirs.add(d)
        new = _save_session_set(dirs)
    msg = f"**{attribute}**: validation accuracy **{d.accuracy:.3f}** on {len(s)} samples ({space})."
    return (*_set_updates(new), msg)


def show_label_grid(model: str, seeds_text: str, psi: float):
    """Images of the seeds to label, captioned with their seeds; resets the 'yes' choices."""
    require_model(model)
    seeds = parse_seed_list(seeds_text, limit=MAX_LABEL_SEEDS)
    with user_errors(), models.use(model) as G:
        imgs = [
            to_pil(render_tensor(G, model_recipe(model, seed=s, truncation_psi=float(psi))))[0] for s in seeds
        ]
    return [(im, f"seed {s}") for im, s in zip(imgs, seeds, strict=True)], gr.update(choices=seeds, value=[])


def toggle_label(seeds_text: str, yes: list, evt: gr.SelectData):
    """Clicking an image toggles it between 'yes' and 'no'."""
    seeds = parse_seed_list(seeds_text, limit=MAX_LABEL_SEEDS)
    seed = seeds[evt.index]
    yes = [int(y) for y in yes or []]
    return sorted(set(yes) ^ {seed})


def fit_labels(model, set_path, seeds_text, yes, name, csv_file, psi):
    """Fit a direction from clicked labels (ticked = yes) or from an uploaded seed,label CSV."""
    require_model(model)
    name = (name or "").strip() or "my_attribute"
    with user_errors():
        if csv_file:
            seeds, labels = cd.read_label_csv(csv_file)
        else:
            seeds = parse_seed_list(seeds_text, limit=MAX_LABEL_SEEDS)
            labels = [s in {int(y) for y in yes or []} for s in seeds]
        with models.use(model) as G:
            s = cd.samples_from_labels(G, seeds, labels, name=name, truncation_psi=float(psi))
            d = cd.fit_attribute_direction(s, name, ratio=0.5, method="user", covariance=cd.w_covariance(G))
        dirs = _session_base(set_path, model)
        dirs.add(d)
        new = _save_session_set(dirs)
    msg = f"**{name}**: fitted on {len(seeds)} labelled seeds, validation accuracy **{d.accuracy:.3f}**."
    return (*_set_updates(new), msg)


def _edits(set_path: str, slot_values) -> dict[str, float]:
    """Recipe ``{variant name: alpha}`` from the slots (strength in std units -> alpha = k * scale)."""
    dirs = get_set(set_path)
    out: dict[str, float] = {}
    for i in range(N_SLOTS):
        name, k, rows, conds = slot_values[4 * i : 4 * i + 4]
        if not name or not k:
            continue
        d = dirs.variant(name, rows=rows or None, conditions=[c for c in conds or [] if c != name])
        out[d.name] = round(float(k) * dirs[name].scale, 6)
    return out


def render_edit(model, set_path, seed, psi, *slot_values):
    """``/edit``: the seed with every slot's edit applied; the image embeds its recipe."""
    require_model(model)
    if not set_path:
        raise gr.Error("load or fit a direction first", print_exception=False)
    with user_errors():
        recipe = model_recipe(
            model, seed=parse_seed(seed), truncation_psi=float(psi), directions=_edits(set_path, slot_values)
        )
        with models.use(model) as G:
            img = recipe_image(render_tensor(G, recipe, directions=get_set(set_path)), recipe)
    return img, recipe.to_json(indent=1)


def compare(model, set_path, seed, psi, svm, pca, sefa):
    """SVM / PCA / SeFa strips of one seed (rows), strengths -2..2 std (columns)."""
    require_model(model)
    names = [n for n in (svm, pca, sefa) if n]
    if not set_path or not names:
        raise gr.Error("load directions and choose at least one to compare", print_exception=False)
    with user_errors(), models.use(model) as G:
        dirs = get_set(set_path)
        grid = views.compare_directions(
            G, [dirs[n] for n in names], parse_seed(seed), steps=STEPS, truncation_psi=float(psi)
        )
    return to_pil(make_grid(grid, nrow=len(STEPS), padding=2, pad_value=1.0))[0]


def plot_path(model, set_path, classifier, name, seed, psi):
    """Classifier probabilities along the edit path of one direction (matplotlib)."""
    require_model(model)
    if not set_path or not name:
        raise gr.Error("choose a direction to plot", print_exception=False)
    steps = [x / 2 for x in range(-6, 7)]
    with user_errors():
        d = get_set(set_path)[name]
        scorer = get_scorer(classifier).for_column(d.attribute)
        with models.use(model) as G:
            s = views.scores_along_path(
                G, scorer, d, parse_seed(seed), steps=steps, truncation_psi=float(psi)
            )
    return views.plot_scores(
        steps, s, scorer.attributes, highlight=[d.attribute or name], title=f"{name}, seed {seed}"
    )


def binary_attributes_of(classifier: str):
    """Choices of the guided edit's attribute and of its 'may change' list: the classifier's binary labels."""
    with user_errors():
        scorer = get_scorer(classifier) if Path(classifier or DEFAULT_CLASSIFIER).is_file() else None
        names = list(scorer.binary) if scorer else []
    return gr.update(choices=names, value=names[0] if names else None), gr.update(choices=names, value=[])


def guided(model, classifier, attribute, target, free, steps, hold, seed, psi, progress=gr.Progress()):
    """Per-face edit: follow the classifier's gradient until ``attribute`` reaches ``target``; keep the rest."""
    require_model(model)
    if not attribute:
        raise gr.Error("choose an attribute", print_exception=False)
    with user_errors():
        scorer = get_scorer(classifier)
        keep = [a for a in scorer.binary if a != attribute and a not in (free or [])]
        base = model_recipe(model, seed=parse_seed(seed), truncation_psi=float(psi))
        with models.use(model) as G:
            r = guided_edit(
                G, scorer, recipe_ws(G, base), attribute, covariance=cd.w_covariance(G), keep=keep,
                target=None if target == "flip" else target == "yes", steps=int(steps), pixel_weight=float(hold),
                progress=lambda d, t: progress((d, t), desc="guided edit"),
            )  # fmt: skip
            recipe = model_recipe(model, seed=base.seed, ws=r.ws[0].tolist())
            img = recipe_image(render_tensor(G, recipe), recipe)
    i = scorer.attributes.index(attribute)
    moved = sorted(((abs(float(r.scores[0, j] - r.before[0, j])), a) for j, a in enumerate(scorer.binary)
                    if a != attribute), reverse=True)[:3]  # fmt: skip
    info = (
        f"**{attribute}**: {float(r.before[0, i]):.2f} -> {float(r.scores[0, i]):.2f} "
        f"({'reached' if bool(r.reached[0]) else 'not reached'} in {r.steps} steps); largest other changes: "
        + ", ".join(f"{a} {d:.2f}" for d, a in moved)
    )
    return img, recipe.to_json(indent=1), info


def measure_separability(model, classifier, samples, progress=gr.Progress()):
    """Linear separability of every classifier attribute in Z and in W (lower is better)."""
    require_model(model)
    with user_errors():
        scorer = get_scorer(classifier)
        with models.use(model) as G:
            s = cd.collect(
                G, scorer, int(samples), seed=10**6, progress=lambda d, t: progress((d, t), desc="collect")
            )
        return views.separability_table(separability_z_vs_w(s))


# ---------------------------------------------------------------------------------------------- layout
def build(shared: Shared) -> DirectionsTab:
    gr.Markdown(EXPLAIN)
    sets = shipped_sets()
    with gr.Row():
        set_file = gr.Dropdown(
            sets, value=sets[0] if sets else None, label="Direction set", allow_custom_value=True, scale=3
        )
        upload = gr.File(
            label="…or upload a set (.safetensors)", file_types=[".safetensors"], type="filepath", scale=2
        )
        download = gr.File(label="Download this set", interactive=False, scale=2)
    set_path = gr.State("")
    set_info = gr.Markdown("No directions loaded.", elem_id="dir-set-info")
    with gr.Accordion("Fit a direction", open=not sets):
        with gr.Tab("From the attribute classifier"):
            with gr.Row():
                classifier = gr.Textbox(
                    str(DEFAULT_CLASSIFIER), label="Classifier file", max_lines=1, scale=3
                )
                attribute = gr.Dropdown([], label="Attribute", scale=2)
                samples = gr.Slider(200, MAX_FIT_SAMPLES, 2000, step=100, label="Samples", scale=2)
                space = gr.Radio(["w", "w+", "z"], value="w", label="Space", scale=1)
            fit = gr.Button("Collect and fit", variant="primary", elem_id="dir-fit")
        with gr.Tab("Label your own"):
            with gr.Row():
                label_seeds = gr.Textbox("0-23", label="Seeds to label", max_lines=1)
                label_name = gr.Textbox("my_attribute", label="Name", max_lines=1)
                label_show = gr.Button("Show samples")
            label_grid = gr.Gallery(
                label="Click an image to toggle yes / no", columns=8, allow_preview=False, height="auto"
            )
            label_yes = gr.CheckboxGroup([], label="Yes (ticked); every other shown seed counts as no")
            with gr.Row():
                label_csv = gr.File(
                    label="…or a CSV of seed,label", file_types=[".csv", ".txt"], type="filepath"
                )
                label_fit = gr.Button("Fit from labels", variant="primary")
        fit_info = gr.Markdown()
    with gr.Row():
        with gr.Column(scale=1, min_width=320):
            with gr.Row():
                seed = gr.Textbox("1", label="Seed", max_lines=1)
                psi = gr.Slider(-1, 2, 0.7, step=0.05, label="Truncation psi")
            slots = []
            for i in range(N_SLOTS):
                with gr.Group():
                    name = gr.Dropdown([], label=f"Direction {i + 1}", allow_custom_value=False)
                    strength = gr.Slider(-4, 4, 0, step=0.1, label="Strength (std)")
                    with gr.Row():
                        rows = gr.Dropdown(
                            ROW_CHOICES,
                            value="all",
                            label="Rows",
                            allow_custom_value=True,
                            info="group or 0-3,6",
                        )
                        conds = gr.Dropdown([], value=[], multiselect=True, label="Keep fixed (conditional)")
                slots.append((name, strength, rows, conds))
            render = gr.Button("Render edit", variant="primary", elem_id="dir-render")
        with gr.Column(scale=1):
            image = gr.Image(label="Edited", type="pil", format=shared.config.image_format, interactive=False)
            recipe = gr.Code(label="Recipe", language="json")
    with gr.Accordion("Compare SVM / PCA / SeFa on this seed", open=False):
        with gr.Row():
            cmp_svm = gr.Dropdown([], label="SVM direction")
            cmp_pca = gr.Dropdown([], label="PCA direction")
            cmp_sefa = gr.Dropdown([], label="SeFa direction")
            cmp_go = gr.Button("Compare")
        cmp_image = gr.Image(label="Rows: SVM, PCA, SeFa; columns: -2..+2 std", type="pil", interactive=False)
    with gr.Accordion("Attribute scores along the edit path", open=False):
        with gr.Row():
            plot_dir = gr.Dropdown([], label="Direction")
            plot_go = gr.Button("Plot")
        plot = gr.Plot()
    with gr.Accordion("Separability in Z vs W (StyleGAN paper)", open=False):
        with gr.Row():
            sep_samples = gr.Slider(200, MAX_FIT_SAMPLES, 2000, step=100, label="Samples")
            sep_go = gr.Button("Measure")
        sep_table = gr.Dataframe(
            headers=["attribute", "H(Y|X) Z", "H(Y|X) W", "SVM acc Z", "SVM acc W"], interactive=False
        )
    with gr.Accordion("Guided edit of this seed (per face, follows the classifier)", open=False):
        gr.Markdown(
            "Where no single direction works (the model's W is curved for that attribute), follow the "
            "classifier's gradient at this face instead: the latent moves until the label flips while every "
            "other attribute is held, unless you let it change. The result is stored as explicit `ws` in the recipe."
        )
        with gr.Row():
            g_attribute = gr.Dropdown([], label="Attribute", scale=2)
            g_target = gr.Radio(["flip", "yes", "no"], value="flip", label="Target", scale=1)
            g_free = gr.Dropdown(
                [], value=[], multiselect=True, label="May change (e.g. related labels)", scale=3
            )
            g_steps = gr.Slider(10, 200, 40, step=10, label="Steps", scale=2)
            g_hold = gr.Slider(0, 1000, 100, step=10, label="Hold the rest of the image", scale=2)
        g_go = gr.Button("Guided edit", elem_id="dir-guided")
        g_info = gr.Markdown()
    return DirectionsTab(
        set_file, upload, set_path, set_info, download, classifier, attribute, samples, space, fit, fit_info,
        label_seeds, label_show, label_grid, label_yes, label_name, label_csv, label_fit, seed, psi, slots,
        render, image, recipe, cmp_svm, cmp_pca, cmp_sefa, cmp_go, cmp_image, plot_dir, plot_go, plot,
        sep_samples, sep_go, sep_table, g_attribute, g_target, g_free, g_steps, g_hold, g_go, g_info,
    )  # fmt: skip


def wire(h: DirectionsTab, shared: Shared) -> None:
    ev = dict(concurrency_id="model", concurrency_limit=shared.config.concurrency_limit)
    set_outputs = [h.set_path, h.set_info, h.download, *(s[0] for s in h.slots), *(s[3] for s in h.slots),
                   h.cmp_svm, h.cmp_pca, h.cmp_sefa, h.plot_dir]  # fmt: skip
    slot_inputs = [c for slot in h.slots for c in slot]
    private = dict(api_visibility="private")
    gr.on([shared.demo.load, shared.model.change], load_matching_set, shared.model, set_outputs, **private)
    gr.on([h.set_file.input, h.upload.change], load_set, [h.set_file, h.upload, shared.model], set_outputs,
          **private)  # fmt: skip
    gr.on([shared.demo.load, h.classifier.submit], attributes_of, h.classifier, h.attribute, **private)
    h.fit.click(fit_classifier, [shared.model, h.set_path, h.classifier, h.attribute, h.samples, h.space],
                [*set_outputs, h.fit_info], api_name="fit_direction", **ev)  # fmt: skip
    h.label_show.click(
        show_label_grid, [shared.model, h.label_seeds, h.psi], [h.label_grid, h.label_yes], **private, **ev
    )
    h.label_grid.select(toggle_label, [h.label_seeds, h.label_yes], h.label_yes, queue=False, **private)
    h.label_fit.click(fit_labels, [shared.model, h.set_path, h.label_seeds, h.label_yes, h.label_name, h.label_csv,
                                   h.psi], [*set_outputs, h.fit_info], **private, **ev)  # fmt: skip
    render_in = [shared.model, h.set_path, h.seed, h.psi, *slot_inputs]
    gr.on([h.render.click, h.seed.submit, *(s[1].release for s in h.slots)], render_edit, render_in,
          [h.image, h.recipe], api_name="edit", trigger_mode="always_last", **ev)  # fmt: skip
    h.cmp_go.click(compare, [shared.model, h.set_path, h.seed, h.psi, h.cmp_svm, h.cmp_pca, h.cmp_sefa], h.cmp_image,
                   api_name="compare_directions", **ev)  # fmt: skip
    h.plot_go.click(plot_path, [shared.model, h.set_path, h.classifier, h.plot_dir, h.seed, h.psi], h.plot,
                    **private, **ev)  # fmt: skip
    gr.on([shared.demo.load, h.classifier.submit], binary_attributes_of, h.classifier, [h.g_attribute, h.g_free],
          **private)  # fmt: skip
    guided_in = [
        shared.model,
        h.classifier,
        h.g_attribute,
        h.g_target,
        h.g_free,
        h.g_steps,
        h.g_hold,
        h.seed,
        h.psi,
    ]
    h.g_go.click(guided, guided_in, [h.image, h.recipe, h.g_info], api_name="guided_edit", **ev)
    h.sep_go.click(measure_separability, [shared.model, h.classifier, h.sep_samples], h.sep_table,
                   api_name="separability", **ev)  # fmt: skip
