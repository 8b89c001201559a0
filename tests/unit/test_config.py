"""dlcourse.core.config: the c.Dlcourse Configurable, the DLCOURSE_* table and `dlcourse config`. No kernels."""

from __future__ import annotations

import ast
import logging
import random
import re
import subprocess
import sys
from pathlib import Path

import pytest

from dlcourse import cli
from dlcourse.core import config
from dlcourse.core.course import CourseLayout
from dlcourse.lms.roster import DEFAULT_GROUP_SIZE, required_group_size

PACKAGE = Path(config.__file__).resolve().parents[1]
ENVIRONMENT_NAME = re.compile(r"^DLCOURSE_[A-Z0-9_]+$")


def write_config(root: Path, body: str) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / config.CONFIG_NAME).write_text("c = get_config()\n" + body)
    return root


def test_every_setting_read_from_a_config_is_the_value_written_there(tmp_path):
    rng = random.Random(25)
    for trial in range(20):
        size = rng.randint(1, 40)
        strict = rng.choice([True, False, [f"ps{rng.randrange(9)}" for _ in range(rng.randint(0, 4))]])
        root = write_config(tmp_path / str(trial), f"c.Dlcourse.group_size = {size}\nc.Dlcourse.strict_tests = {strict!r}\n")
        settings = config.dlcourse_settings(root)
        assert (settings.group_size, settings.strict_tests) == (size, strict)
        assert required_group_size(CourseLayout(root)) == size
        course = config.course_settings(root)
        for name in ("ps0", "ps3", "other"):
            assert course.strict(name) == (strict is True or (isinstance(strict, list) and name in strict)), strict


def test_without_a_config_or_with_a_broken_one_the_settings_are_the_defaults(tmp_path):
    broken = write_config(tmp_path / "broken", "c.Dlcourse.group_size = (\n")
    for root in (tmp_path / "none", broken):
        root.mkdir(exist_ok=True)
        settings = config.dlcourse_settings(root)
        assert (settings.group_size, settings.strict_tests) == (DEFAULT_GROUP_SIZE, []) == (2, [])
        assert required_group_size(CourseLayout(root)) == 2


@pytest.mark.parametrize("line, setting", [
    ("c.Dlcourse.group_size = 'two'", "c.Dlcourse.group_size"),
    ("c.Dlcourse.group_size = 0", "c.Dlcourse.group_size"),
    ("c.Dlcourse.strict_tests = 'ps1'", "c.Dlcourse.strict_tests"),
    ("c.Dlcourse.strict_tests = ['ps1', 2]", "c.Dlcourse.strict_tests"),
])
def test_a_value_of_the_wrong_kind_is_an_error_that_names_the_setting_and_the_command_to_list_them(
        tmp_path, line, setting):
    root = write_config(tmp_path, line + "\n")
    for read in (config.dlcourse_settings, config.course_settings, lambda r: required_group_size(CourseLayout(r))):
        with pytest.raises(config.SettingError) as raised:
            read(root)
        assert str(raised.value).startswith(f"{setting} in {root / config.CONFIG_NAME}")
        assert "`dlcourse config`" in str(raised.value)


def test_a_setting_dlcourse_does_not_know_is_warned_with_the_known_names(tmp_path, caplog):
    root = write_config(tmp_path, "c.Dlcourse.group_sise = 3\n")
    with caplog.at_level(logging.WARNING, logger="dlcourse.core.config"):
        assert config.dlcourse_settings(root).group_size == 2
    assert "c.Dlcourse.group_sise is not a dlcourse setting (they are: group_size, strict_tests)" in caplog.text


def test_the_generated_block_documents_every_setting_and_loads_back_as_the_defaults(tmp_path):
    block = config.generate_config()
    traits = config.Dlcourse.class_traits(config=True)
    for name, trait in traits.items():
        assert f"# c.Dlcourse.{name} = {trait.default()!r}" in block
        assert trait.help.split()[0] in block and len(trait.help) > 40, name
    uncommented = "\n".join(line[2:] for line in block.splitlines() if line.startswith("# c.Dlcourse."))
    root = write_config(tmp_path, uncommented + "\n")
    settings = config.dlcourse_settings(root)
    assert {name: getattr(settings, name) for name in traits} == {name: t.default() for name, t in traits.items()}


def test_dlcourse_config_prints_each_setting_with_its_default_and_the_courses_value_and_each_variable(
        tmp_path, capsys, monkeypatch):
    root = write_config(tmp_path, "c.Dlcourse.group_size = 3\nc.Dlcourse.strict_tests = ['ps1']\n")
    for name in config.ENVIRONMENT:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("DLCOURSE_DATA", str(tmp_path / "my-data"))
    assert cli.main(["--course", str(root), "config"]) == 0
    text = capsys.readouterr().out
    assert "c.Dlcourse.group_size = 3\n    default: 2\n    How many students" in text
    assert "c.Dlcourse.strict_tests = ['ps1']\n    default: []\n" in text
    for name, variable in config.ENVIRONMENT.items():
        assert re.search(rf"^{name} = ", text, re.M), name
    assert f"DLCOURSE_DATA = {str(tmp_path / 'my-data')!r}" in text and "DLCOURSE_CACHE = unset" in text


def test_dlcourse_config_generate_prints_the_commented_block(capsys):
    assert cli.main(["config", "--generate"]) == 0
    assert capsys.readouterr().out == config.generate_config()


def test_a_command_refuses_a_bad_setting_with_exit_1_and_the_settings_name(tmp_path, capsys):
    root = write_config(tmp_path, "c.Dlcourse.group_size = -1\n")
    assert cli.main(["--course", str(root), "config"]) == 1
    assert capsys.readouterr().err.startswith("dlcourse config: c.Dlcourse.group_size in ")


# -- DLCOURSE_*: listed once, read in one place ---------------------------------


def _environment_names_and_reads() -> tuple[set[str], list[str]]:
    """Every DLCOURSE_* name written in dlcourse/, and each os.environ/os.getenv read of one outside config.py."""
    names, reads, constants, trees = set(), [], {}, {}
    for path in sorted(PACKAGE.rglob("*.py")):  # first every name, and every constant that holds one
        trees[path] = tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and ENVIRONMENT_NAME.match(node.value):
                names.add(node.value)
            if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant) \
                    and isinstance(node.value.value, str) and ENVIRONMENT_NAME.match(node.value.value):
                constants.update({t.id: node.value.value for t in node.targets if isinstance(t, ast.Name)})
    for path, tree in trees.items():
        if path.name == "config.py" and path.parent.name == "core":
            continue
        for node in ast.walk(tree):
            key = None
            if isinstance(node, ast.Call) and ast.unparse(node.func) in ("os.environ.get", "os.getenv") and node.args:
                key = node.args[0]
            elif isinstance(node, ast.Subscript) and ast.unparse(node.value) == "os.environ" \
                    and isinstance(node.ctx, ast.Load):
                key = node.slice
            if key is None:
                continue
            # a literal, a constant of this module (NAME) or of another (module.NAME)
            value = key.value if isinstance(key, ast.Constant) else \
                constants.get(getattr(key, "id", None) or getattr(key, "attr", None))
            if isinstance(value, str) and value.startswith("DLCOURSE_"):
                reads.append(f"{path.relative_to(PACKAGE.parent)}:{node.lineno}: {ast.unparse(node)}")
    return names, reads


def test_every_DLCOURSE_variable_is_in_the_table_and_read_only_through_config():
    names, reads = _environment_names_and_reads()
    assert names, "the scan found no DLCOURSE_ name at all: it is broken"
    assert names <= set(config.ENVIRONMENT), sorted(names - set(config.ENVIRONMENT))
    assert not reads, "read DLCOURSE_* through dlcourse.core.config:\n" + "\n".join(reads)
    for variable in config.ENVIRONMENT.values():
        assert variable.meaning and variable.default, variable.name


def test_the_scan_sees_a_direct_read_of_a_variable(tmp_path, monkeypatch):
    fake = tmp_path / "dlcourse"
    (fake / "core").mkdir(parents=True)
    (fake / "core" / "config.py").write_text("")
    (fake / "reader.py").write_text('import os\nNAME = "DLCOURSE_NEW"\nA = os.environ.get(NAME)\n'
                                    'B = os.environ["DLCOURSE_ROOT"]\nos.environ["DLCOURSE_ROOT"] = "w"\n')
    (fake / "other.py").write_text('import os\nfrom . import reader\nC = os.getenv(reader.NAME, "")\n')
    monkeypatch.setattr(sys.modules[__name__], "PACKAGE", fake)
    names, reads = _environment_names_and_reads()
    assert names == {"DLCOURSE_NEW", "DLCOURSE_ROOT"}
    assert sorted(r.split(": ", 1)[0] for r in reads) == ["dlcourse/other.py:3", "dlcourse/reader.py:3",
                                                          "dlcourse/reader.py:4"]


def test_a_variable_not_in_the_table_cannot_be_read(monkeypatch):
    monkeypatch.setenv("DLCOURSE_NOT_LISTED", "x")
    with pytest.raises(KeyError, match="DLCOURSE_NOT_LISTED is not listed"):
        config.environment("DLCOURSE_NOT_LISTED")


def test_an_empty_variable_counts_as_unset_and_the_accessors_read_their_own(monkeypatch, tmp_path):
    monkeypatch.setenv("DLCOURSE_CLUSTER", "")
    assert config.default_cluster() is None
    monkeypatch.setenv("DLCOURSE_CLUSTER", "tcp://10.0.0.1:8786")
    monkeypatch.setenv("DLCOURSE_PROFILE", str(tmp_path / "t.json"))
    monkeypatch.setenv("DLCOURSE_WORKER_UNISOLATED", "1")
    assert config.default_cluster() == "tcp://10.0.0.1:8786" and config.profile_path() == tmp_path / "t.json"
    assert config.worker_unisolated()
    monkeypatch.setenv("DLCOURSE_WORKER_UNISOLATED", "yes")
    assert not config.worker_unisolated()  # only "1", as before
    for engine in ("fork", "kernel"):
        monkeypatch.setenv("DLCOURSE_ENGINE", engine)
        assert config.default_engine() == engine
    monkeypatch.setenv("DLCOURSE_ENGINE", "forks")
    assert config.default_engine() is None


def test_the_cache_is_the_override_else_the_user_cache_folder_platformdirs_names(monkeypatch, tmp_path):
    from dlcourse.grading.reference import machine_cache

    monkeypatch.setenv("DLCOURSE_CACHE", str(tmp_path / "mine"))
    assert config.cache_dir() == machine_cache() == tmp_path / "mine"
    monkeypatch.delenv("DLCOURSE_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert config.cache_dir() == machine_cache() == tmp_path / "xdg" / "dlcourse"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert config.cache_dir() == tmp_path / "home" / ".cache" / "dlcourse"


def test_the_command_line_shows_the_clusters_progress_lines_and_warnings_but_not_other_info():
    script = ("import logging\nfrom dlcourse import cli\ncli.show_library_messages()\n"
              "logging.getLogger('dlcourse.grading.cluster').info('cluster: scheduler tcp://x')\n"
              "logging.getLogger('dlcourse.grading.autotest').info('not shown')\n"
              "logging.getLogger('dlcourse.core.config').warning('a warning, %s', 'shown')\n")
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    assert run.stderr == "cluster: scheduler tcp://x\na warning, shown\n"
