"""Notebook -> PDF that a grader can read, with typeset math, offline.

The engine is nbconvert's web-PDF exporter (HTML printed by Chromium) with two
changes that make it work on a machine without internet:

- the browser is a locally installed Chromium (Debian's ``chromium``, or any
  Chrome/Chromium found on the PATH or named by ``DLCOURSE_CHROMIUM``), which
  Playwright drives through its ``executable_path``; Playwright never
  downloads a browser here;
- MathJax 2.7 comes from a local copy (Debian's ``libjs-mathjax``, an npm
  ``mathjax@2`` folder, or ``DLCOURSE_MATHJAX``) served to the page from
  memory, and every other request the page makes to the outside is refused
  (the stock template asks a CDN for require.js, which hangs offline).

The PDF is printed only after MathJax says it has typeset the page, so no
formula comes out as raw ``$\\frac{...}{...}$``. When no local MathJax exists
and the network is allowed, the CDN copy is used instead; when neither works
the PDF is still written and :class:`PdfResult` says the math is not typeset.

When no Chromium is available, LaTeX (``xelatex``) is used if it is
installed; otherwise :class:`PdfEngineMissing` says what to install.

It is one engine with its offline plumbing (browser, MathJax, request
routing, waiting for typesetting, the LaTeX fallback); kept in one file of
about 500 lines so that everything that can make a PDF differ is read in
one place.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import copy
import html as html_lib
import logging
import mimetypes
import os
import platform
import re
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path, PureWindowsPath
from urllib.parse import unquote, urlsplit

import nbformat

from ..core.config import chromium_override, mathjax_override

log = logging.getLogger("dlcourse.student.pdf")

PLAYWRIGHT_VERSION = "1.65.2"

# Where each platform installs Chrome, Chromium and Edge (all Chromium underneath, all driven the same
# way). The first that exists wins; then the names on PATH (CHROMIUM_NAMES).
LINUX_BROWSERS = (
    "/usr/bin/chromium",
    "/usr/bin/chromium-browser",
    "/usr/bin/google-chrome",
    "/usr/bin/google-chrome-stable",
    "/opt/google/chrome/chrome",
    "/usr/bin/microsoft-edge",
    "/usr/bin/microsoft-edge-stable",
    "/opt/microsoft/msedge/msedge",
    "/snap/bin/chromium",
)
# macOS: in /Applications, or in the user's own ~/Applications when installed without admin rights.
MACOS_BROWSERS = (
    "Google Chrome.app/Contents/MacOS/Google Chrome",
    "Chromium.app/Contents/MacOS/Chromium",
    "Microsoft Edge.app/Contents/MacOS/Microsoft Edge",
)
# Windows: under these folders (environment variables), machine-wide or per user. Edge comes with Windows.
WINDOWS_FOLDERS = ("PROGRAMFILES", "PROGRAMFILES(X86)", "LOCALAPPDATA")
WINDOWS_BROWSERS = (
    r"Google\Chrome\Application\chrome.exe",
    r"Chromium\Application\chrome.exe",
    r"Microsoft\Edge\Application\msedge.exe",
)
CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome",
                  "microsoft-edge", "microsoft-edge-stable", "msedge")
#: Linux's and macOS's system-wide places (the name callers knew).
CHROMIUM_CANDIDATES = (*LINUX_BROWSERS, *(f"/Applications/{app}" for app in MACOS_BROWSERS))

# Folders that hold MathJax 2 (the one with MathJax.js at its top).
MATHJAX_CANDIDATES = (
    "/usr/share/javascript/mathjax",  # Debian/Ubuntu libjs-mathjax
    "/usr/share/mathjax",
    "/usr/share/nodejs/mathjax",
    "/usr/lib/node_modules/mathjax",
    "/usr/local/lib/node_modules/mathjax",
    "/opt/homebrew/lib/node_modules/mathjax",
)

MATHJAX_CDN = "https://cdnjs.cloudflare.com/ajax/libs/mathjax/2.7.7/MathJax.js"
MATHJAX_CONFIG = "TeX-AMS_CHTML-full,Safe"

# The page is served from this made-up origin; Playwright answers every
# request to it from local files, so nothing goes to the network.
LOCAL_ORIGIN = "http://dlcourse-pdf.invalid"

# The launch flags of a quiet, offline, sandbox-free headless Chromium.
CHROMIUM_ARGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
)

INSTALL_HINT = (
    "No PDF engine found. The PDF is printed by a Chrome, Chromium or Edge browser through Playwright:\n"
    "    Windows:       Edge comes with Windows; or install Google Chrome (https://www.google.com/chrome/)\n"
    "    macOS:         install Google Chrome into Applications (or: brew install --cask chromium)\n"
    "    Debian/Ubuntu: sudo apt-get install chromium libjs-mathjax\n"
    f"    and, where it is missing: pip install playwright=={PLAYWRIGHT_VERSION}  (no browser download needed)\n"
    "or point DLCOURSE_CHROMIUM at the browser's program. With internet access,\n"
    "`--allow-browser-download` lets Playwright fetch its own Chromium instead (on Colab, use this).\n"
    "(A TeX installation with xelatex, e.g. `apt-get install texlive-xetex`, also works.)"
)

# Print CSS: long code lines wrap instead of running off the page, outputs are
# never cut to a scroll box, figures fit the page width, and a cell is not
# split from its first lines.
PRINT_CSS = """
<style id="dlcourse-print">
  @page { size: A4; margin: 14mm 12mm 16mm 12mm; }
  body { padding: 0 !important; }
  .jp-Notebook { padding: 0 !important; }
  pre, .jp-RenderedText pre, .highlight pre { white-space: pre-wrap !important;
       word-break: break-word; overflow-wrap: anywhere; }
  .jp-OutputArea-output, .jp-Cell-outputWrapper, .jp-OutputArea { overflow: visible !important;
       max-height: none !important; }
  img { max-width: 100% !important; height: auto !important; page-break-inside: avoid; break-inside: avoid; }
  .jp-InputArea { break-inside: avoid; }
  .dlcourse-handin-header { border: 2px solid #333; border-radius: 4px; padding: 10px 16px;
       margin: 0 0 18px 0; font-family: "DejaVu Sans", Arial, sans-serif; break-inside: avoid; }
  .dlcourse-handin-header h1 { font-size: 20px; margin: 0 0 6px 0; }
  .dlcourse-handin-header table { border-collapse: collapse; font-size: 14px; }
  .dlcourse-handin-header td { padding: 2px 14px 2px 0; vertical-align: top; border: none; }
  .dlcourse-handin-header td.k { color: #555; }
  .dlcourse-handin-header td.v { font-weight: bold; }
</style>
"""


class PdfEngineMissing(RuntimeError):
    """No way to make a PDF here; the message says what to install."""


@dataclass
class PdfResult:
    path: Path
    seconds: float
    engine: str  # "chromium (/usr/bin/chromium)", "latex", ...
    math: str  # "typeset", "no math", "NOT typeset (...)"

    @property
    def math_ok(self) -> bool:
        return not self.math.startswith("NOT")


# --------------------------------------------------------------------------
# Finding the tools.


def browser_places(system: str | None = None, environ=None, home: Path | None = None) -> list[str]:
    """Where ``system`` ("Linux", "Darwin", "Windows"; default this one) installs Chrome, Chromium and Edge."""
    system = system or platform.system()
    environ = os.environ if environ is None else environ
    if system == "Windows":
        folders = [environ[name] for name in WINDOWS_FOLDERS if environ.get(name)]
        return [str(PureWindowsPath(folder, browser)) for folder in folders for browser in WINDOWS_BROWSERS]
    if system == "Darwin":
        home = home or Path.home()
        return [str(Path(folder, app)) for folder in ("/Applications", home / "Applications") for app in MACOS_BROWSERS]
    return list(LINUX_BROWSERS)


def find_chromium() -> str | None:
    """A local Chrome, Chromium or Edge executable, or None."""
    explicit = chromium_override()
    if explicit:
        return explicit if os.access(explicit, os.X_OK) else None
    for candidate in browser_places():
        if os.access(candidate, os.X_OK):
            return candidate
    for name in CHROMIUM_NAMES:
        found = shutil.which(name)
        if found:
            return found
    return None


def find_mathjax(extra: list[Path] | None = None) -> Path | None:
    """A folder holding MathJax 2 (``MathJax.js`` and ``config/``), or None."""
    candidates = []
    if mathjax_override():
        candidates.append(mathjax_override())
    candidates += list(extra or [])
    here = Path.cwd()
    for folder in (here, *here.parents):
        candidates.append(folder / "node_modules" / "mathjax")
    # a conda or venv prefix (conda-forge's mathjax 2, or `npm install --prefix`)
    for prefix in {Path(sys.prefix), Path(os.environ.get("CONDA_PREFIX", sys.prefix))}:
        candidates += [prefix / "lib" / "mathjax", prefix / "share" / "javascript" / "mathjax",
                       prefix / "node_modules" / "mathjax", prefix / "lib" / "node_modules" / "mathjax"]
    candidates += [Path(p) for p in MATHJAX_CANDIDATES]
    for folder in candidates:
        if (folder / "MathJax.js").is_file() and (folder / "config").is_dir():
            return folder
    return None


def playwright_available() -> bool:
    try:
        import playwright.async_api  # noqa: F401
    except ImportError:
        return False
    return True


def latex_available() -> bool:
    return shutil.which("xelatex") is not None


def engine() -> str | None:
    """The engine :func:`notebook_to_pdf` would use: "chromium", "latex" or None."""
    if playwright_available() and find_chromium():
        return "chromium"
    if latex_available():
        return "latex"
    return None


def describe() -> str:
    """One paragraph on what is installed, for error messages and ``--check``."""
    chromium = find_chromium()
    mathjax = find_mathjax()
    playwright = ("installed" if playwright_available()
                  else f"not installed (pip install playwright=={PLAYWRIGHT_VERSION})")
    lines = [
        f"Browser:    {chromium or 'no Chrome, Chromium or Edge found (install one, or set DLCOURSE_CHROMIUM)'}",
        f"Playwright: {playwright}",
        f"MathJax:    {mathjax or 'not found (apt-get install libjs-mathjax, or set DLCOURSE_MATHJAX); '}"
        + ("" if mathjax else "formulas need internet"),
        f"LaTeX:      {shutil.which('xelatex') or 'not found (optional)'}",
    ]
    return "\n".join(lines)


# --------------------------------------------------------------------------
# The exporter.


def _webpdf_base():
    from nbconvert.exporters.webpdf import WebPDFExporter

    return WebPDFExporter


def _make_exporter_class():
    from traitlets import Bool, Float, Unicode

    WebPDFExporter = _webpdf_base()

    class LocalChromiumPDFExporter(WebPDFExporter):
        """nbconvert's WebPDFExporter, with a browser and MathJax of our choosing.

        nbconvert does not let one name the Chromium executable; this subclass
        launches the one in ``executable_path`` and serves the page, MathJax
        and the notebook's own files (images linked from markdown) from local
        folders.
        """

        executable_path = Unicode("", help="Chrome/Chromium to launch").tag(config=True)
        mathjax_dir = Unicode("", help="local MathJax 2 folder (with MathJax.js)").tag(config=True)
        files_dir = Unicode("", help="folder the notebook's relative links point into").tag(config=True)
        allow_network = Bool(False, help="let the page load things from the internet").tag(config=True)
        header_html = Unicode("", help="HTML put at the top of the first page").tag(config=True)
        footer_text = Unicode("", help="text in every page's footer, beside the page number").tag(config=True)
        math_timeout = Float(60.0, help="seconds to wait for MathJax").tag(config=True)
        has_math = Bool(True, help="the notebook's markdown has formulas").tag(config=True)

        math_status = "not run"

        def _init_resources(self, resources):
            resources = super()._init_resources(resources)
            if self.mathjax_dir:
                resources["mathjax_url"] = f"{LOCAL_ORIGIN}/__mathjax__/MathJax.js?config={MATHJAX_CONFIG}"
            return resources

        def run_playwright(self, html):
            html = _decorate(html, self.header_html)

            async def main():
                from playwright.async_api import async_playwright

                playwright = await async_playwright().start()
                try:
                    launch = dict(handle_sigint=False, handle_sigterm=False, handle_sighup=False,
                                  args=list(CHROMIUM_ARGS) + list(self.browser_args))
                    if self.executable_path:
                        launch["executable_path"] = self.executable_path
                    try:
                        browser = await playwright.chromium.launch(**launch)
                    except Exception as error:  # the message of Playwright is long; keep the first line
                        first = str(error).strip().splitlines()[0] if str(error).strip() else repr(error)
                        raise PdfEngineMissing(
                            f"Chromium at {self.executable_path or '(Playwright default)'} did not start: "
                            f"{first}\n\n{INSTALL_HINT}") from error
                    try:
                        page = await browser.new_page()
                        await page.route("**/*", lambda route: self._answer(route, html))
                        await page.emulate_media(media="print")
                        await page.goto(f"{LOCAL_ORIGIN}/__notebook__.html", wait_until="load")
                        self.math_status = await self._wait_for_math(page)
                        await page.wait_for_timeout(self.page_render_timeout)
                        footer = (
                            '<div style="width:100%; font-size:8px; color:#555; padding:0 12mm; '
                            'font-family: DejaVu Sans, Arial, sans-serif; display:flex; '
                            'justify-content:space-between;">'
                            f"<span>{html_lib.escape(self.footer_text)}</span>"
                            '<span>page <span class="pageNumber"></span> of <span class="totalPages"></span></span>'
                            "</div>")
                        return await page.pdf(
                            print_background=True, prefer_css_page_size=True,
                            display_header_footer=True, header_template="<span></span>",
                            footer_template=footer)
                    finally:
                        await browser.close()
                finally:
                    await playwright.stop()

            # A thread of its own: inside a Jupyter kernel an event loop is already running.
            with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
                return pool.submit(asyncio.run, main()).result()

        async def _answer(self, route, html):
            url = route.request.url
            if url.startswith(LOCAL_ORIGIN + "/"):
                path = unquote(urlsplit(url).path)
                if path == "/__notebook__.html":
                    await route.fulfill(status=200, content_type="text/html; charset=utf-8", body=html)
                    return
                if path.startswith("/__mathjax__/") and self.mathjax_dir:
                    target = _inside(Path(self.mathjax_dir), path[len("/__mathjax__/"):])
                elif self.files_dir:
                    target = _inside(Path(self.files_dir), path.lstrip("/"))
                else:
                    target = None
                if target is not None and target.is_file():
                    kind = mimetypes.guess_type(target.name)[0] or "application/octet-stream"
                    await route.fulfill(status=200, content_type=kind, body=target.read_bytes())
                else:
                    await route.fulfill(status=404, body="")
                return
            if url.startswith("data:") or self.allow_network:
                await route.continue_()
            else:
                await route.abort()

        async def _wait_for_math(self, page) -> str:
            if not self.has_math:
                return "no math"
            status = await page.evaluate(
                """(ms) => new Promise(resolve => {
                    if (!window.MathJax || !window.MathJax.Hub) { resolve('MathJax did not load'); return; }
                    const timer = setTimeout(() => resolve('MathJax timed out'), ms);
                    MathJax.Hub.Register.StartupHook('End', () => {
                        MathJax.Hub.Queue(() => {
                            clearTimeout(timer);
                            const typeset = document.querySelectorAll('.mjx-chtml, .MathJax_CHTML, .MathJax, .MathJax_SVG').length;
                            const errors = document.querySelectorAll('.MathJax_Error, .mjx-merror, merror').length;
                            if (!typeset) { resolve('MathJax found no formula'); return; }
                            resolve(errors ? 'typeset, ' + errors + ' formula(s) with TeX errors' : 'typeset');
                        });
                    });
                })""",
                int(self.math_timeout * 1000))
            return status if status.startswith("typeset") else f"NOT typeset ({status})"

    return LocalChromiumPDFExporter


_EXPORTER_CLASS = None


def exporter_class():
    global _EXPORTER_CLASS
    if _EXPORTER_CLASS is None:
        _EXPORTER_CLASS = _make_exporter_class()
    return _EXPORTER_CLASS


def _inside(root: Path, relative: str) -> Path | None:
    target = (root / relative).resolve()
    try:
        target.relative_to(root.resolve())
    except ValueError:
        return None
    return target


def _decorate(html: str, header_html: str) -> str:
    """Adds the print CSS and the first-page header to nbconvert's HTML."""
    html = html.replace("</head>", PRINT_CSS + "</head>", 1)
    if header_html:
        lower = html.lower()
        at = lower.find("<main")
        if at < 0:
            at = lower.find("<body")
        if at >= 0:
            end = html.find(">", at) + 1
            html = html[:end] + header_html + html[end:]
    return html


_MATH_MARKERS = re.compile(r"\$|\\\(|\\\[|\\begin\{")


def has_math(node) -> bool:
    """Whether any markdown cell has TeX math ($...$, \\(...\\), \\[...\\], environments)."""
    return any(cell.cell_type == "markdown" and _MATH_MARKERS.search(cell.source) for cell in node.cells)


def header_html(title: str, rows: list[tuple[str, str]]) -> str:
    """The box on top of page 1: a title and key/value rows (escaped here)."""
    body = "".join(
        f'<tr><td class="k">{html_lib.escape(k)}</td><td class="v">{html_lib.escape(v)}</td></tr>'
        for k, v in rows)
    return (f'<div class="dlcourse-handin-header"><h1>{html_lib.escape(title)}</h1>'
            f"<table>{body}</table></div>")


# --------------------------------------------------------------------------
# The entry point.


def notebook_to_pdf(
    notebook: str | Path | nbformat.NotebookNode,
    pdf_path: str | Path,
    *,
    title: str = "",
    header_rows: list[tuple[str, str]] | None = None,
    footer: str = "",
    files_dir: str | Path | None = None,
    allow_network: bool = False,
    allow_browser_download: bool = False,
) -> PdfResult:
    """Writes ``pdf_path`` from a notebook (a path or a node; never modified).

    ``title`` and ``header_rows`` make the box on page 1 (e.g. names and
    assignment); ``footer`` is printed on every page next to the page number.
    ``files_dir`` is where relative links in markdown (images) point
    (default: the notebook's folder). Raises :class:`PdfEngineMissing` when
    no engine is available.
    """
    start = time.perf_counter()
    if isinstance(notebook, (str, Path)):
        files_dir = files_dir or Path(notebook).parent
        node = nbformat.read(str(notebook), as_version=4)
    else:
        node = copy.deepcopy(notebook)
    pdf_path = Path(pdf_path)
    pdf_path.parent.mkdir(parents=True, exist_ok=True)

    chromium = find_chromium()
    if playwright_available() and (chromium or allow_browser_download):
        mathjax = find_mathjax()
        quiet = logging.getLogger("dlcourse.student.pdf.nbconvert")  # not "Alternative text is missing ..."
        quiet.setLevel(logging.ERROR)
        exporter = exporter_class()(log=quiet)
        exporter.executable_path = chromium or ""
        exporter.mathjax_dir = str(mathjax) if mathjax else ""
        exporter.files_dir = str(Path(files_dir).resolve()) if files_dir else ""
        exporter.allow_network = allow_network or allow_browser_download or not mathjax
        exporter.header_html = header_html(title, header_rows or []) if (title or header_rows) else ""
        exporter.footer_text = footer
        exporter.has_math = has_math(node)
        if not chromium:  # nbconvert's own route: download a Chromium (needs internet)
            exporter.allow_chromium_download = True
            _download_chromium()
        data, _ = exporter.from_notebook_node(node, resources={"metadata": {"name": title or pdf_path.stem}})
        pdf_path.write_bytes(data)
        seconds = time.perf_counter() - start
        result = PdfResult(pdf_path, seconds, f"chromium ({chromium or 'downloaded by Playwright'})",
                           exporter.math_status)
    elif latex_available():
        result = _latex_pdf(node, pdf_path, title, header_rows or [], files_dir, start)
    else:
        raise PdfEngineMissing(INSTALL_HINT + "\n\nWhat was found:\n" + describe())
    log.info("PDF %s: %.1f s, %s, math %s", pdf_path.name, result.seconds, result.engine, result.math)
    return result


def _download_chromium() -> None:
    import subprocess
    import sys

    subprocess.check_call([sys.executable, "-m", "playwright", "install", "chromium"])


def _latex_pdf(node, pdf_path: Path, title, header_rows, files_dir, start) -> PdfResult:
    """The LaTeX route (nbconvert's PDFExporter): math is typeset by TeX itself."""
    from nbconvert import PDFExporter

    if title or header_rows:
        lines = [f"**{title}**"] if title else []
        lines += [f"{k}: **{v}**" for k, v in header_rows]
        node.cells.insert(0, nbformat.v4.new_markdown_cell("  \n".join(lines)))
    exporter = PDFExporter()
    resources = {"metadata": {"name": title or pdf_path.stem, "path": str(files_dir or ".")}}
    data, _ = exporter.from_notebook_node(node, resources=resources)
    pdf_path.write_bytes(data)
    return PdfResult(pdf_path, time.perf_counter() - start, "latex (xelatex)", "typeset")


def main(argv: list[str] | None = None) -> int:
    """``python -m dlcourse.student.pdf NOTEBOOK [PDF]``: one notebook to PDF (for trying it out)."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m dlcourse.student.pdf", description=main.__doc__)
    parser.add_argument("notebook", nargs="?")
    parser.add_argument("pdf", nargs="?")
    parser.add_argument("--check", action="store_true", help="only say which engine would be used")
    args = parser.parse_args(argv)
    if args.check or not args.notebook:
        print(describe())
        print(f"engine:     {engine() or 'none'}")
        return 0 if engine() else 1
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    pdf = Path(args.pdf) if args.pdf else Path(args.notebook).with_suffix(".pdf")
    try:
        result = notebook_to_pdf(args.notebook, pdf, title=Path(args.notebook).stem)
    except PdfEngineMissing as error:
        print(error)
        return 2
    print(f"{result.path}: {result.seconds:.1f} s, {result.engine}, math {result.math}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
