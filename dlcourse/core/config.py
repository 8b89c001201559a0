"""Every setting dlcourse reads, in one place: the course's ``nbgrader_config.py`` and the ``DLCOURSE_*`` variables.

Three sources, each read here and nowhere else:

* ``c.Dlcourse.*`` in the course's ``nbgrader_config.py``: the :class:`Dlcourse` traitlets ``Configurable``
  (a typed trait with help text per setting; nbgrader ignores the section). The file is loaded as nbgrader
  loads it (traitlets' ``PyFileConfigLoader``, :func:`read_config`); a value of the wrong type is a
  :class:`SettingError` that names the setting.
* nbgrader's own settings that grading honours as stock nbgrader does (``c.IgnorePattern``,
  ``c.Execute.timeout``): :class:`CourseSettings`, from :func:`course_settings`.
* ``DLCOURSE_*`` environment variables: :data:`ENVIRONMENT` (name, meaning, default), read through
  :func:`environment` and the small accessors below it (one is listed but read elsewhere:
  ``DLCOURSE_KIT``, by the Colab set-up cell's own code, before the package is installed).

``dlcourse config`` prints all of them with their help, default and current value (:func:`describe`);
``dlcourse config --generate`` prints a commented ``c.Dlcourse`` block, as ``nbgrader generate_config`` does
(:func:`generate_config`). This module ships in the student kit: it imports the standard library, traitlets
and platformdirs only.
"""

from __future__ import annotations

import logging
import os
import re
import textwrap
from dataclasses import dataclass, field
from pathlib import Path

from traitlets import Bool, Int, List, TraitError, Unicode, Union
from traitlets.config import Config, Configurable
from traitlets.config.loader import PyFileConfigLoader

log = logging.getLogger(__name__)

CONFIG_NAME = "nbgrader_config.py"


def read_config(path: Path) -> Config:
    """The traitlets ``Config`` of an ``nbgrader_config.py`` (the file is run, as nbgrader runs it); an
    empty ``Config`` when there is no such file. A broken file raises: each caller decides what that means."""
    path = Path(path)
    if not path.is_file():
        return Config()
    return PyFileConfigLoader(path.name, path=str(path.parent)).load_config()


# --------------------------------------------------------------------------
# c.Dlcourse.*: dlcourse's own settings in nbgrader_config.py.


class SettingError(ValueError):
    """A ``c.Dlcourse.*`` setting has a value of the wrong kind; the message names it and says what fits."""


class Dlcourse(Configurable):
    """dlcourse's own course settings (``c.Dlcourse.*`` in ``nbgrader_config.py``; nbgrader ignores them)."""

    group_size = Int(2, min=1, help=(
        "How many students hand in one submission together. `dlcourse collect` lists a group of another "
        "size in reports/<assignment>/WARNINGS.txt (it still collects it); `dlcourse collect --group-size` "
        "overrides this for one run. See docs/lms.md.")).tag(config=True)

    strict_tests = Union([Bool(), List(Unicode())], default_value=[], help=(
        "The assignments (a list of names, or True for every assignment) whose test cells must all run "
        "in the grader, none in the student's kernel: `dlcourse release` refuses such an assignment while "
        "one of its test cells would run in the student's kernel. See docs/authoring.md.")).tag(config=True)


def _setting_error(error: TraitError, path: Path) -> SettingError:
    """The traitlets message, led by the setting's name as the course writes it."""
    match = re.search(r"'(\w+)' trait", str(error))
    name = f"c.Dlcourse.{match.group(1)}" if match else "a c.Dlcourse setting"
    return SettingError(f"{name} in {path} has a value that does not fit: {error}. Correct it there "
                        "(`dlcourse config` lists every setting with what it takes)")


def dlcourse_settings(root: Path, config: Config | None = None) -> Dlcourse:
    """The ``c.Dlcourse`` settings of ``root/nbgrader_config.py`` (``config``: that file, already read).

    A file that does not run gives the defaults (it is nbgrader's to report); a value of the wrong kind
    raises :class:`SettingError`; a setting dlcourse does not know is logged as a warning.
    """
    path = Path(root) / CONFIG_NAME
    if config is None:
        try:
            config = read_config(path)
        except Exception:  # a broken config is nbgrader's to report
            log.debug("%s does not load; dlcourse's settings are the defaults", path, exc_info=True)
            return Dlcourse()
    section = config.get("Dlcourse", Config())
    known = set(Dlcourse.class_trait_names(config=True))
    for unknown in sorted(set(section) - known):
        log.warning("%s: c.Dlcourse.%s is not a dlcourse setting (they are: %s); it is ignored",
                    path, unknown, ", ".join(sorted(known)))
    try:
        return Dlcourse(config=Config({"Dlcourse": Config({k: v for k, v in section.items() if k in known})}))
    except TraitError as error:
        raise _setting_error(error, path) from error


@dataclass
class CourseSettings:
    """What grading takes from ``nbgrader_config.py`` (as stock nbgrader would)."""

    ignore_pattern: str = ""  # c.IgnorePattern.pattern, when c.IgnorePattern.enabled
    cell_timeout: float | None = None  # c.Execute.timeout, else c.ExecutePreprocessor.timeout
    strict_tests: list[str] | bool = field(default_factory=list)  # c.Dlcourse.strict_tests

    def strict(self, assignment: str) -> bool:
        """Whether ``assignment`` must have no test cell that runs in the student's kernel."""
        return self.strict_tests is True or (isinstance(self.strict_tests, (list, tuple))
                                             and assignment in self.strict_tests)


def course_settings(root: Path) -> CourseSettings:
    """The settings of ``root/nbgrader_config.py`` (defaults when it is missing or broken; a ``c.Dlcourse``
    value of the wrong kind raises :class:`SettingError`)."""
    settings = CourseSettings()
    try:
        config = read_config(Path(root) / CONFIG_NAME)
    except Exception:  # a broken config is nbgrader's to report
        return settings
    ignore = config.get("IgnorePattern", {})
    if ignore.get("enabled", False) and ignore.get("pattern", ""):
        settings.ignore_pattern = str(ignore["pattern"])
        re.compile(settings.ignore_pattern)
    for section in ("Execute", "ExecutePreprocessor"):
        if "timeout" in config.get(section, {}) and config[section]["timeout"] is not None \
                and float(config[section]["timeout"]) > 0:
            settings.cell_timeout = float(config[section]["timeout"])
            break
    strict = dlcourse_settings(root, config).strict_tests
    settings.strict_tests = True if strict is True else [str(a) for a in strict] if strict else []
    return settings


# --------------------------------------------------------------------------
# DLCOURSE_*: the environment variables.


@dataclass(frozen=True)
class EnvironmentVariable:
    name: str
    meaning: str
    default: str  # what holds while it is unset (or empty)
    internal: bool = False  # set by dlcourse for its own processes, not by a user


#: The zygote of the fork engine, from its grader (:mod:`dlcourse.sandbox.fork`, :mod:`dlcourse.sandbox.child`).
ZYGOTE_SOCKET, ZYGOTE_LISTEN_FD = "DLCOURSE_ZYGOTE_SOCKET", "DLCOURSE_ZYGOTE_LISTEN_FD"
ZYGOTE_KEY, ZYGOTE_CHILDREN = "DLCOURSE_ZYGOTE_KEY", "DLCOURSE_ZYGOTE_CHILDREN"
#: Set (to 1) on a cluster worker that may grade without isolation.
WORKER_UNISOLATED = "DLCOURSE_WORKER_UNISOLATED"

#: Every ``DLCOURSE_*`` variable dlcourse reads: name -> what it means and what holds while it is unset.
ENVIRONMENT: dict[str, EnvironmentVariable] = {v.name: v for v in (
    EnvironmentVariable("DLCOURSE_ROOT", "the course a command works on (as --course)",
                        "the nearest folder at or above the working directory with nbgrader_config.py"),
    EnvironmentVariable("DLCOURSE_DATA", "the folder of the data sets (MNIST/raw/, cifar-10-batches-py/)",
                        "data/ beside the package (~/dlcourse-data for a kit installed into site-packages)"),
    EnvironmentVariable("DLCOURSE_DEVICE", "where notebooks train (data.pick_device): cpu, cuda or mps",
                        "CUDA if there is a GPU, else Apple's MPS, else the CPU"),
    EnvironmentVariable("DLCOURSE_CACHE", "this machine's cache folder (the reference solutions' checks)",
                        "the user cache folder (platformdirs: $XDG_CACHE_HOME/dlcourse, else ~/.cache/dlcourse)"),
    EnvironmentVariable("DLCOURSE_ENGINE", "how `dlcourse grade` runs a notebook: fork or kernel (as --engine)",
                        "fork"),
    EnvironmentVariable("DLCOURSE_CLUSTER", "the Dask scheduler `dlcourse grade` grades on, or local:N "
                        "(as --cluster; docs/cluster.md)", "none: grading on this machine"),
    EnvironmentVariable("DLCOURSE_CLUSTER_TLS", "the folder of `dlcourse cluster-certs` (as --tls)", "no TLS"),
    EnvironmentVariable("DLCOURSE_PROFILE", "a file where `dlcourse grade` writes where its seconds went (JSON; "
                        "bench/profile_grading.py)", "not written"),
    EnvironmentVariable("DLCOURSE_SERVE_DATABASE", "the SQLAlchemy URL of the hand-in service's database "
                        "(as `dlcourse serve --database`)", "sqlite:///COURSE/serve/serve.db"),
    EnvironmentVariable("DLCOURSE_TOKEN", "a student's personal token for `dlcourse handin --submit URL` "
                        "(as --token)", "none: --token must be given"),
    EnvironmentVariable("DLCOURSE_LAB_TOKEN", "the Jupyter token of `dlcourse lab --exam`", "one Jupyter makes"),
    EnvironmentVariable("DLCOURSE_CHROMIUM", "the Chrome/Chromium executable that prints notebooks to PDF",
                        "the first Chrome/Chromium on the PATH"),
    EnvironmentVariable("DLCOURSE_MATHJAX", "a folder holding MathJax 2 for PDFs",
                        "libjs-mathjax's folder, or a mathjax@2 folder at or above the working directory"),
    EnvironmentVariable("DLCOURSE_KIT", "where a notebook's Colab set-up cell finds or clones the student kit "
                        "(read by that cell's own code, before the package is installed: "
                        "dlcourse.student.colab.setup_cell)", "/content/<the kit's repository name>"),
    EnvironmentVariable("DLCOURSE_COLAB_NOTEBOOK", "the kit's notebook this Colab runtime works on (set by the "
                        "notebook's Colab set-up cell)", "not on Colab, or the set-up cell has not run", internal=True),
    EnvironmentVariable(WORKER_UNISOLATED, "1: this cluster worker may grade without isolation (set by "
                        "`dlcourse worker --no-isolation` and `--cluster local:N --no-isolation`)",
                        "isolated grading only", internal=True),
    EnvironmentVariable(ZYGOTE_SOCKET, "the socket of the fork engine's zygote that the workers of one "
                        "`dlcourse grade` share", "each worker starts its own", internal=True),
    EnvironmentVariable(ZYGOTE_LISTEN_FD, "the shared zygote's listening socket (a file descriptor)",
                        "not shared", internal=True),
    EnvironmentVariable(ZYGOTE_KEY, "the options the shared zygote was started for", "none", internal=True),
    EnvironmentVariable(ZYGOTE_CHILDREN, "after how many children the shared zygote retires", "never",
                        internal=True),
)}


def environment(name: str) -> str | None:
    """The value of the ``DLCOURSE_*`` variable ``name`` (None while it is unset or empty).

    Raises ``KeyError`` for a name :data:`ENVIRONMENT` does not list: a new variable is documented there first.
    """
    if name not in ENVIRONMENT:
        raise KeyError(f"{name} is not listed in dlcourse.core.config.ENVIRONMENT: add it there (name, "
                       "meaning, default) before reading it")
    return os.environ.get(name) or None


def root_override() -> str | None:
    """``$DLCOURSE_ROOT``: the course folder, if set."""
    return environment("DLCOURSE_ROOT")


def data_override() -> Path | None:
    """``$DLCOURSE_DATA``: the data sets' folder, if set."""
    value = environment("DLCOURSE_DATA")
    return Path(value).expanduser() if value else None


def cache_dir() -> Path:
    """This machine's dlcourse cache folder (it need not exist): ``$DLCOURSE_CACHE``, else the user cache."""
    value = environment("DLCOURSE_CACHE")
    if value:
        return Path(value)
    import platformdirs

    return Path(platformdirs.user_cache_dir("dlcourse", appauthor=False))


def device_override() -> str | None:
    """``$DLCOURSE_DEVICE``: the torch device notebooks train on, if set (lower case, no spaces)."""
    value = (environment("DLCOURSE_DEVICE") or "").strip().lower()
    return value or None


def serve_database() -> str | None:
    """``$DLCOURSE_SERVE_DATABASE``: the hand-in service's database URL, if set."""
    return environment("DLCOURSE_SERVE_DATABASE")


def default_engine() -> str | None:
    """``$DLCOURSE_ENGINE`` when it names an engine (fork, kernel), else None."""
    value = environment("DLCOURSE_ENGINE")
    if value and value not in ("fork", "kernel"):
        log.warning("DLCOURSE_ENGINE=%s is not an engine (fork or kernel); it is ignored", value)
        return None
    return value


def default_cluster() -> str | None:
    """``$DLCOURSE_CLUSTER``: the default of ``dlcourse grade --cluster``."""
    return environment("DLCOURSE_CLUSTER")


def default_tls() -> str | None:
    """``$DLCOURSE_CLUSTER_TLS``: the default of ``--tls DIR``."""
    return environment("DLCOURSE_CLUSTER_TLS")


def worker_unisolated() -> bool:
    """Whether this cluster worker was told it may grade without isolation (``$DLCOURSE_WORKER_UNISOLATED=1``)."""
    return environment(WORKER_UNISOLATED) == "1"


def profile_path() -> Path | None:
    """``$DLCOURSE_PROFILE``: where ``dlcourse grade`` writes its timings, if set."""
    value = environment("DLCOURSE_PROFILE")
    return Path(value) if value else None


def submit_token() -> str | None:
    """``$DLCOURSE_TOKEN``: the student's token for the hand-in service, if set."""
    return environment("DLCOURSE_TOKEN")


def colab_notebook() -> str | None:
    """``$DLCOURSE_COLAB_NOTEBOOK``: the kit-relative path of the notebook this Colab runtime works on, if set."""
    return environment("DLCOURSE_COLAB_NOTEBOOK")


def lab_token() -> str | None:
    """``$DLCOURSE_LAB_TOKEN``: the exam lab's Jupyter token, if set."""
    return environment("DLCOURSE_LAB_TOKEN")


def chromium_override() -> str | None:
    """``$DLCOURSE_CHROMIUM``: the browser that prints PDFs, if set."""
    return environment("DLCOURSE_CHROMIUM")


def mathjax_override() -> Path | None:
    """``$DLCOURSE_MATHJAX``: the MathJax 2 folder for PDFs, if set."""
    value = environment("DLCOURSE_MATHJAX")
    return Path(value) if value else None


# --------------------------------------------------------------------------
# What `dlcourse config` prints.


def generate_config() -> str:
    """A commented ``c.Dlcourse`` block for ``nbgrader_config.py`` (each setting, its help and default)."""
    return Dlcourse.class_config_section()


def _wrapped(text: str) -> list[str]:
    return textwrap.wrap(text, width=100, initial_indent="    ", subsequent_indent="    ", break_on_hyphens=False)


def describe(root: Path) -> str:
    """Every ``c.Dlcourse`` setting (help, default, the course's value) and every ``DLCOURSE_*`` variable."""
    current = dlcourse_settings(root)
    lines = [f"c.Dlcourse settings (nbgrader_config.py of {root}):", ""]
    for name, trait in sorted(Dlcourse.class_traits(config=True).items()):
        lines += [f"c.Dlcourse.{name} = {getattr(current, name)!r}", f"    default: {trait.default()!r}",
                  *_wrapped(trait.help), ""]
    lines += ["Environment variables (unset: the default holds):", ""]
    for variable in ENVIRONMENT.values():
        value = os.environ.get(variable.name)
        shown = repr(value) if value else "unset"
        lines += [f"{variable.name} = {shown}" + ("  (set by dlcourse itself)" if variable.internal else ""),
                  *_wrapped(f"{variable.meaning}; default: {variable.default}"), ""]
    return "\n".join(lines).rstrip() + "\n"
