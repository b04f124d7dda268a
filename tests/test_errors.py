"""One root exception, and a command line that prints what a user can fix as one line while a bug keeps its
traceback (issue 15, "Workflows written once")."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from nlp.analysis.ca import CAError
from nlp.analysis.sides import SideError
from nlp.annotations import AnnotationError
from nlp.cli import main
from nlp.cli._util import CLIError
from nlp.codebook import CodebookError
from nlp.distributed import DaskError
from nlp.encoder import EncoderError
from nlp.errors import CdpdError, ConfigError, DataError, ModelError, UsageError
from nlp.ingest import IngestError
from nlp.workspace import WorkspaceError

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("cls, legacy, code", [
    (CodebookError, ValueError, "codebook"), (IngestError, ValueError, "ingest"),
    (AnnotationError, ValueError, "annotations"), (EncoderError, ValueError, "encoder"),
    (WorkspaceError, RuntimeError, "workspace"), (ModelError, ValueError, "model"), (CAError, ValueError, "ca"),
    (DaskError, ValueError, "dask"), (ConfigError, ValueError, "config"), (DataError, ValueError, "data"),
    (UsageError, ValueError, "usage"), (CLIError, ValueError, "usage"), (SideError, RuntimeError, None),
])
def test_every_error_a_user_can_cause_has_one_root(cls, legacy, code):
    assert issubclass(cls, CdpdError) and issubclass(cls, legacy)  # code catching the old base still works
    if code is not None:
        assert cls.code == code
    assert SideError("side-empty", "x").code == "side-empty"


def test_models_module_still_exports_model_error():
    from nlp import models

    assert models.ModelError is ModelError


def test_a_user_error_is_one_line_and_a_bug_keeps_its_traceback(tmp_path, capsys, monkeypatch):
    def user_error(args):
        raise ConfigError("--foo must be positive, not -1")

    import nlp.cli as cli

    parser = cli.build_parser
    monkeypatch.setattr(cli, "build_parser", lambda: _with_func(parser(), "summary", user_error))
    assert main(["summary", "--workspace", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["cdpd summary: error: --foo must be positive, not -1"]

    def bug(args):
        raise ValueError("an internal invariant broke")

    monkeypatch.setattr(cli, "build_parser", lambda: _with_func(parser(), "summary", bug))
    with pytest.raises(ValueError, match="internal invariant"):  # not turned into a one-line "error"
        main(["summary", "--workspace", str(tmp_path)])


def _with_func(parser, command, func):
    sub = next(a for a in parser._actions if a.dest == "command")
    sub.choices[command].set_defaults(func=func)
    return parser


def test_an_operating_system_error_on_a_file_is_one_line_naming_it(tmp_path, capsys, monkeypatch):
    """Permissions or a full disk are the environment, not a bug: one line naming the file (as root, a real
    permission error cannot be provoked, so the command raises what the OS would)."""
    import nlp.cli as cli

    def denied(args):
        raise PermissionError(13, "Permission denied", "/data/out/report.html")

    parser = cli.build_parser
    monkeypatch.setattr(cli, "build_parser", lambda: _with_func(parser(), "summary", denied))
    assert main(["summary", "--workspace", str(tmp_path)]) == 2
    assert capsys.readouterr().err.strip().splitlines() == [
        "cdpd summary: error: /data/out/report.html: Permission denied"]

    def no_file(args):
        raise OSError("something without a file")

    monkeypatch.setattr(cli, "build_parser", lambda: _with_func(parser(), "summary", no_file))
    with pytest.raises(OSError):  # no file named: not an input problem, so it keeps its traceback
        main(["summary", "--workspace", str(tmp_path)])


def test_train_refuses_an_unknown_parameter_before_any_work(tmp_path, capsys):
    annotations = tmp_path / "a.jsonl"
    annotations.write_text(json.dumps({"id": "u1", "text": "Seattle and Kobe are sister cities.",
                                       "functions": ["twinning"], "domains": []}) + "\n")
    code = main(["train", "--annotations", str(annotations), "--params", '{"Cee": 4}', "-q"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1
    assert "has no parameter 'Cee'" in err[0] and "gate" in err[0]  # names what it takes


def test_train_explains_a_parameter_value_the_library_refuses(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("CDPD_MODELS", str(tmp_path / "models"))
    annotations = tmp_path / "a.jsonl"
    rows = [{"id": f"u{i}", "text": t, "functions": f, "domains": []} for i, (t, f) in enumerate([
        ("Seattle and Kobe renewed their sister-city agreement.", ["twinning"]),
        ("The council adopted the annual budget.", []),
        ("The mayor signed a twinning charter with Lyon.", ["twinning"]),
        ("Road repairs start on Monday.", [])])]
    annotations.write_text("".join(json.dumps(r) + "\n" for r in rows))
    code = main(["train", "--annotations", str(annotations), "--params", '{"C": "strong"}', "-q"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "Traceback" not in err[0]
    assert "cannot be fitted with the parameters" in err[0] and '"C": "strong"' in err[0]


def test_the_workspace_module_stands_alone():
    """The workspace stores and queries; it imports no parser, tagger pipeline or annotation reader (nor spaCy)."""
    code = ("import sys, nlp.workspace\n"
            "print(sorted(m for m in ('nlp.ingest', 'nlp.pipeline', 'nlp.annotations', 'nlp.text', 'spacy', "
            "'pandas') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_each_command_group_registers_its_own_commands():
    import argparse

    from nlp.cli import COMMAND_GROUPS, build_parser

    seen = {}
    for group in COMMAND_GROUPS:
        sub = argparse.ArgumentParser().add_subparsers(dest="command")
        group.register(sub, _parents())
        for name, parser in sub.choices.items():
            assert parser.get_default("func").__module__ == group.__name__  # the command lives in its group
            seen[name] = group.__name__
    every = next(a for a in build_parser()._actions if a.dest == "command").choices
    assert set(seen) == set(every) and len(seen) == len(every)


def _parents():
    import argparse
    from types import SimpleNamespace

    from nlp.cli.analysis import diagram_options

    blank = argparse.ArgumentParser(add_help=False)
    return SimpleNamespace(common=blank, meta=blank, dask=blank, diagram=diagram_options())


def test_cdpd_own_warnings_are_one_line(tmp_path):
    """A warning of cdpd's own (here: an ACTIVE file naming no model) reads as one line, not Python's
    file:line and source-line format (issue 15 robustness benchmark, finding 5)."""
    import os

    models = tmp_path / "models"
    models.mkdir()
    (models / "ACTIVE").write_text("../../elsewhere@x\n")
    env = {**os.environ, "CDPD_MODELS": str(models), "CDPD_LOG": str(tmp_path / "cdpd.log")}
    proc = subprocess.run([sys.executable, "-m", "nlp", "models", "list"], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=120)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 0 and lines and all(line.startswith("cdpd: warning: ") for line in lines), lines
    assert "not a model; ignored" in lines[0] and "warnings.warn" not in proc.stderr and ".py:" not in proc.stderr
    assert len(lines) == len(set(lines)) == 1  # said once, though two code paths read ACTIVE
