"""Reference figures: what a correct solution draws, shown beside each exercise whose figure depends on the student.

    python source/make_reference_figures.py                    # every figure whose data set is here
    python source/make_reference_figures.py a5_rnn_attention   # the figures of one assignment
    python source/make_reference_figures.py --list             # the figures, and which ones exist

For each master that has a figure in :data:`FIGURES` it runs the master (solutions included, test cells
left out) in a Jupyter kernel started by :class:`dlcourse.sandbox.kernel.KernelSession`, in a scratch copy of the
assignment's folder, with matplotlib's Agg backend and the notebook's full-run budget (what a student's
notebook runs, not the grading run). The figures a listed cell draws are saved as small PNGs under
``source/<assignment>/figures/`` and a locked markdown cell that shows them ("Reference figure: what a
correct solution gives") is put right after that cell, where ``dlcourse release`` carries both
(nbgrader copies the assignment's folder; the student kit copies the release).

Which figures: those a cell draws from code the student writes (a plot function of theirs, or a given
cell that plots what their layers, optimisers or models compute). Figures of given code alone (A7's
learning curves, A4's sample images) look the same for everyone and get none. A figure must never give
away what the student has to work out or report, so :data:`NO_REFERENCE` leaves out, with the reason, A1's
graph of A (it is the answer to ``build_A``) and the learning curves of A3 (MNIST) and A4 (VGG16), whose
final accuracies and shapes the written questions ask the student to report from their own run.

Figures that need MNIST or CIFAR-10 are made only when that data set is where :func:`dlcourse.data.data_root`
looks; otherwise they are skipped (and an earlier reference cell of theirs stays only while its PNG does).
A reference figure shows the real data set or is not made: point ``$DLCOURSE_DATA`` only at the real files,
never at the tests' stand-ins (tests/stand_in_data.py puts Fashion-MNIST under MNIST's names, which this
script cannot tell apart). Training them runs the full budget (A4's VGG16 takes hours on a CPU; use a GPU).

Rerunning is safe: PNGs are rewritten, the reference cells updated in place, the rest of each notebook
left as it was (nbformat reads and writes it).
"""

from __future__ import annotations

import argparse
import base64
import io
import json
import shutil
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import nbformat

SOURCE = Path(__file__).resolve().parent
FIGURES_FOLDER = "figures"
#: Resolution of the saved figures: enough to read the labels, small enough to commit (a few tens of kB).
DPI = 80
#: Colours kept per PNG: plots have few, and a palette image is a fraction of the size of a full-colour one.
PALETTE_COLOURS = 96
#: The largest a reference PNG may be (tests/content/test_reference_figures.py checks it).
MAX_BYTES = 80_000
CELL_TIMEOUT_S = 4 * 3600
CAPTION = "**Reference figure**: what a correct solution gives"
CAPTION_NOTE = ("(drawn from the course's own solution by `source/make_reference_figures.py`; "
                "yours may differ in small details, such as random draws or colours, not in what it shows).")


@dataclass(frozen=True)
class Figure:
    """The figures one cell of a master draws."""

    notebook: str            # "<assignment>/<notebook stem>"
    cell: str                # grade_id of the cell that draws them
    names: tuple[str, ...]   # one PNG per figure, in the order the cell draws them
    data: str | None = None  # "mnist" / "cifar10": made only where that data set is
    alt: str = ""            # what the figure shows (the image's alternative text)

    @property
    def assignment(self) -> str:
        return self.notebook.split("/")[0]

    @property
    def master(self) -> Path:
        return SOURCE / f"{self.notebook}.ipynb"

    def paths(self, source: Path = SOURCE) -> list[Path]:
        return [source / self.assignment / FIGURES_FOLDER / f"{name}.png" for name in self.names]

    @property
    def reference_id(self) -> str:
        """grade_id (and cell id) of the markdown cell that shows the figure."""
        return f"{self.cell}_reference"


FIGURES: tuple[Figure, ...] = (
    Figure("a2_optimisers/a2_optimisers", "adamw_figure", ("adamw_decay",),
           alt="|θ| over the steps for Adam + L2 penalty and AdamW, for the noisy and the flat coordinate"),
    Figure("a2_optimisers/a2_optimisers", "ewma_figure", ("ewma",),
           alt="a noisy series with its moving averages, with and without bias correction"),
    Figure("a3_layers/a3_layers", "a3_layers_setup_16", ("activations",),
           alt="ReLU and Sigmoid: forward pass and derivative"),
    Figure("a3_layers/a3_layers", "a3_layers_setup_32", ("spirals",),
           alt="TwoLayerNet on the spirals: training loss and decision regions"),
    Figure("a3_layers/a3_mnist", "a3_mnist_setup_17", ("mnist_predictions",), data="mnist",
           alt="test digits with the predicted and the true class"),
    Figure("a4_convnets/a4_convnets", "edges_demo", ("edges",),
           alt="a bright square and the responses of the two Sobel filters"),
    Figure("a4_convnets/a4_vgg_cifar", "show_examples", ("vgg_examples",), data="cifar10",
           alt="test images with their class probabilities"),
    Figure("a5_rnn_attention/a5_rnn_attention", "gradient_norms_figure", ("gradient_norms",),
           alt="size of the gradient with respect to each input step, for three scales of W_hh"),
    Figure("a5_rnn_attention/a5_rnn_attention", "causal_influence_figure", ("causal_influence",),
           alt="size of dy_i/dx_j for causal self-attention: zero above the diagonal"),
    Figure("a6_autoencoders/a6_autoencoders", "train_mnist", ("autoencoder_loss", "reconstructions"), data="mnist",
           alt="the autoencoder's training loss per epoch; test digits and their reconstructions"),
)

#: Cells that draw from the student's code and get no reference figure on purpose, with the reason.
NO_REFERENCE: dict[tuple[str, str], str] = {
    ("a1_autodiff/a1_autodiff", "show_A"): "the drawn graph of A (its nodes, their values and gradients) is the "
                                           "answer to build_A, which the student must work out",
    # Learning curves whose end points and shapes a written question asks the student to report from their run.
    ("a3_layers/a3_mnist", "a3_mnist_setup_15"): "mnist_written asks for the final training and test accuracy",
    ("a4_convnets/a4_vgg_cifar", "plot_history"): "results_written asks for the final accuracies and what the "
                                                  "curves show",
    ("a4_convnets/a4_vgg_cifar", "training_batchnorm"): "batchnorm_written asks how BatchNorm and Dropout change "
                                                        "the curves and the final test accuracy",
}

# Run in the kernel before the master: every figure that plt.show() would show is kept (in order) instead.
_KERNEL_PRELUDE = """
import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as _reference_plt
_reference_shown = []
def _reference_show(*args, **kwargs):
    for number in _reference_plt.get_fignums():
        figure = _reference_plt.figure(number)
        if figure not in _reference_shown:
            _reference_shown.append(figure)
_reference_plt.show = _reference_show
"""
_KERNEL_FORGET = "_reference_plt.close('all'); _reference_shown.clear()"
_KERNEL_SAVE = """
import base64 as _reference_b64, io as _reference_io, json as _reference_json
_reference_show()
_reference_pngs = []
for _reference_figure in _reference_shown:
    _reference_buffer = _reference_io.BytesIO()
    _reference_figure.savefig(_reference_buffer, format="png", dpi={dpi}, bbox_inches="tight", facecolor="white")
    _reference_pngs.append(_reference_b64.b64encode(_reference_buffer.getvalue()).decode())
print("REFERENCE-PNGS " + _reference_json.dumps(_reference_pngs))
_reference_plt.close("all"); _reference_shown.clear()
"""


def data_available(name: str | None) -> bool:
    """Whether the real data set ``name`` is where the notebooks load it from (never downloads)."""
    if name is None:
        return True
    from dlcourse.data import DataMissingError, load_cifar10, load_mnist

    load = {"mnist": load_mnist, "cifar10": load_cifar10}[name]
    try:
        load(train=False, download=False)
    except (DataMissingError, OSError, RuntimeError):
        return False
    return True


def small_png(png: bytes) -> bytes:
    """``png`` as a palette image, compressed as far as PNG goes."""
    from PIL import Image

    image = Image.open(io.BytesIO(png)).convert("RGB").quantize(colors=PALETTE_COLOURS)
    out = io.BytesIO()
    image.save(out, format="PNG", optimize=True)
    return out.getvalue()


def _code_cells(notebook):
    from dlcourse.core.notebook import grade_id, is_test_cell, strip_magics

    for cell in notebook.cells:
        if cell.cell_type == "code" and not is_test_cell(cell):
            yield grade_id(cell), strip_magics(cell.source)


def render(master: Path, figures: list[Figure]) -> dict[str, list[bytes]]:
    """Run ``master`` (solutions in, test cells out) and return each listed cell's figures as PNG bytes."""
    from dlcourse.sandbox.kernel import KernelSession

    wanted = {figure.cell: figure for figure in figures}
    notebook = nbformat.read(str(master), as_version=4)
    found: dict[str, list[bytes]] = {}
    with tempfile.TemporaryDirectory(prefix="dlcourse-figures-") as scratch:
        workdir = Path(scratch) / master.parent.name
        shutil.copytree(master.parent, workdir, ignore=shutil.ignore_patterns(FIGURES_FOLDER, ".*", "*.pt"))
        session = KernelSession(workdir, env={"MPLBACKEND": "Agg"})
        session.start()
        try:
            _run(session, _KERNEL_PRELUDE, "the figure capture")
            for cell_id, source in _code_cells(notebook):
                _run(session, source, f"{master.name} cell {cell_id}")
                if cell_id in wanted:
                    found[cell_id] = _collect(session, wanted[cell_id])
                    print(f"  {cell_id}: {len(found[cell_id])} figure(s)", flush=True)
                else:
                    _run(session, _KERNEL_FORGET, "closing figures")
                if wanted.keys() <= found.keys():
                    break
        finally:
            session.shutdown()
    missing = wanted.keys() - found.keys()
    if missing:
        raise RuntimeError(f"{master.name} has no code cell {sorted(missing)}: update FIGURES")
    return found


def _run(session, source: str, what: str):
    run = session.execute(source, timeout=CELL_TIMEOUT_S)
    if run.status != "ok":
        raise RuntimeError(f"{what} failed ({run.status}): {run.error_name}: {run.error_value}")
    return run


def _collect(session, figure: Figure) -> list[bytes]:
    run = _run(session, _KERNEL_SAVE.format(dpi=DPI), f"saving the figures of {figure.cell}")
    text = "".join(o.get("text", "") for o in run.outputs if o.get("output_type") == "stream")
    line = next(line for line in text.splitlines() if line.startswith("REFERENCE-PNGS "))
    pngs = [small_png(base64.b64decode(blob)) for blob in json.loads(line.split(" ", 1)[1])]
    if len(pngs) != len(figure.names):
        raise RuntimeError(f"{figure.notebook} cell {figure.cell} drew {len(pngs)} figures; "
                           f"FIGURES names {len(figure.names)}: {figure.names}")
    return pngs


def reference_cell(figure: Figure):
    """The locked markdown cell that shows ``figure``'s PNGs (paths relative to the notebook)."""
    images = "\n\n".join(f"![Reference figure: {figure.alt}]({FIGURES_FOLDER}/{name}.png)" for name in figure.names)
    cell = nbformat.v4.new_markdown_cell(f"{CAPTION} {CAPTION_NOTE}\n\n{images}")
    cell.id = figure.reference_id.replace("_", "-")[:64]
    cell.metadata["nbgrader"] = {"grade": False, "grade_id": figure.reference_id, "locked": True,
                                 "schema_version": 3, "solution": False, "task": False}
    return cell


def place_reference_cells(master: Path, figures: list[Figure], source: Path = SOURCE) -> bool:
    """Put (or update, or take out) each figure's reference cell after its cell; True if the notebook changed."""
    from dlcourse.core.notebook import grade_id

    notebook = nbformat.read(str(master), as_version=4)
    before = nbformat.writes(notebook)
    for figure in figures:
        cells = [c for c in notebook.cells if grade_id(c) != figure.reference_id]
        if all(path.is_file() for path in figure.paths(source)):
            at = next(i for i, c in enumerate(cells) if grade_id(c) == figure.cell)
            cells.insert(at + 1, reference_cell(figure))
        notebook.cells = cells
    if nbformat.writes(notebook) == before:
        return False
    nbformat.write(notebook, str(master))
    return True


def make(assignments: list[str] | None = None) -> list[str]:
    """Make the reference figures (of ``assignments``, default all) whose data are here; return what was skipped."""
    chosen = [f for f in FIGURES if not assignments or f.assignment in assignments]
    skipped = []
    by_master: dict[Path, list[Figure]] = {}
    for figure in chosen:
        by_master.setdefault(figure.master, []).append(figure)
    for master, figures in by_master.items():
        ready = [f for f in figures if data_available(f.data)]
        skipped += [f"{f.notebook} {f.cell}: no {f.data} data set here" for f in figures if f not in ready]
        if ready:
            print(f"{master.relative_to(SOURCE)}: running the master for {len(ready)} cell(s)", flush=True)
            rendered = render(master, ready)
            for figure in ready:
                for path, png in zip(figure.paths(), rendered[figure.cell]):
                    path.parent.mkdir(exist_ok=True)
                    path.write_bytes(png)
                    print(f"  wrote {path.relative_to(SOURCE.parent)} ({len(png) / 1000:.0f} kB)")
        place_reference_cells(master, figures)
    return skipped


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("assignments", nargs="*", help="assignments (default: all)")
    parser.add_argument("--list", action="store_true", help="list the figures and which of them exist")
    args = parser.parse_args(argv)
    if args.list:
        for figure in FIGURES:
            for path in figure.paths():
                state = f"{path.stat().st_size / 1000:.0f} kB" if path.is_file() else "missing"
                print(f"{figure.notebook:40s} {figure.cell:28s} {path.relative_to(SOURCE.parent)} ({state}"
                      f"{', needs ' + figure.data if figure.data else ''})")
        return 0
    unknown = sorted(set(args.assignments) - {f.assignment for f in FIGURES})
    if unknown:
        parser.error(f"no figures listed for {', '.join(unknown)}; "
                     f"those with figures: {', '.join(sorted({f.assignment for f in FIGURES}))}")
    skipped = make(args.assignments or None)
    for line in skipped:
        print(f"skipped {line}")
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(SOURCE.parent))
    sys.exit(main())
