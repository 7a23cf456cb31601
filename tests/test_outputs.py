"""Output files: nothing written outside the target, through a link, over the net file, or left stale."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from archplan.cli import cli
from archplan.outputs import MANIFEST

ROOT = Path(__file__).resolve().parent.parent
LENET = str(ROOT / "examples" / "lenet.yaml")
TWO_OUTPUTS = """archplan: 1
name: two
inputs:
  x: [1, 4]
layers:
  - {name: a, op: linear, out_features: 3}
  - {name: b, op: linear, out_features: 2, in: x}
outputs: [a, b]
"""


def invoke(*args: str):
    result = CliRunner().invoke(cli, list(args))
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert "Traceback" not in result.output and "internal error" not in result.output
    return result


def test_a_link_planted_in_outdir_is_replaced_not_followed(tmp_path):
    out, target = tmp_path / "out", tmp_path / "precious.txt"
    out.mkdir()
    target.write_text("keep me")
    (out / "model.py").symlink_to(target)
    (out / "train.py").symlink_to(tmp_path / "nowhere")  # dangling
    result = invoke("generate", LENET, "-o", str(out), "--force")
    assert result.exit_code == 0, result.output
    assert target.read_text() == "keep me"
    assert not (out / "model.py").is_symlink() and "class LeNet" in (out / "model.py").read_text()
    assert not (out / "train.py").is_symlink() and not (tmp_path / "nowhere").exists()


def test_files_of_an_earlier_net_are_removed_and_others_kept(tmp_path):
    out = tmp_path / "out"
    assert invoke("generate", LENET, "-o", str(out)).exit_code == 0
    assert (out / "train.py").exists()
    (out / "notes.txt").write_text("mine")
    two = tmp_path / "two.yaml"
    two.write_text(TWO_OUTPUTS)
    result = invoke("generate", str(two), "-o", str(out), "--force")
    assert result.exit_code == 0, result.output
    assert not (out / "train.py").exists()  # two outputs: no trainer, and the old one is gone
    assert (out / "notes.txt").read_text() == "mine"
    assert (out / MANIFEST).read_text().split() == ["model.py", "README.md", "test_model.py", "ruff.toml"]


def test_an_edited_manifest_cannot_delete_other_files(tmp_path):
    out = tmp_path / "out"
    assert invoke("generate", LENET, "-o", str(out)).exit_code == 0
    (out / "notes.txt").write_text("mine")
    (out / MANIFEST).write_text("notes.txt\n../outside.txt\n")
    (tmp_path / "outside.txt").write_text("mine too")
    assert invoke("generate", LENET, "-o", str(out), "--force").exit_code == 0
    assert (out / "notes.txt").exists() and (tmp_path / "outside.txt").exists()


def test_generate_refuses_bad_outdirs_before_writing(tmp_path):
    afile = tmp_path / "afile"
    afile.write_text("x")
    assert invoke("generate", LENET, "-o", str(afile)).exit_code in (1, 2)
    dangling = tmp_path / "dangling"
    dangling.symlink_to(tmp_path / "nowhere")
    result = invoke("generate", LENET, "-o", str(dangling))
    assert result.exit_code == 1 and "symbolic link" in result.output
    out = tmp_path / "out"
    out.mkdir()
    (out / "model.py").mkdir()  # a folder where a file must go: nothing at all is written
    result = invoke("generate", LENET, "-o", str(out), "--force")
    assert result.exit_code == 1 and "is a folder" in result.output
    assert sorted(p.name for p in out.iterdir()) == ["model.py"]
    assert invoke("generate", LENET, "-o", str(tmp_path / "new" / "deeper")).exit_code == 0  # created


@pytest.mark.parametrize("option", ["-o", "--chart"])
def test_render_refuses_bad_targets(tmp_path, option):
    suffix = ".dot" if option == "-o" else ".png"
    cases = {
        str(tmp_path / "missing" / f"x{suffix}"): "does not exist",
        str(tmp_path / f"folder{suffix}"): "is a folder",
        str(tmp_path / f"dangling{suffix}"): "symbolic link",
        f"/proc/archplan-test{suffix}": "cannot write",
    }
    (tmp_path / f"folder{suffix}").mkdir()
    (tmp_path / f"dangling{suffix}").symlink_to(tmp_path / "nowhere")
    for target, message in cases.items():
        result = invoke("render", LENET, option, target)
        assert result.exit_code == 1 and message in result.output, (target, result.output)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([f"folder{suffix}", f"dangling{suffix}"])
    assert not any((tmp_path / f"folder{suffix}").iterdir())


def test_render_never_overwrites_the_net_file(tmp_path):
    net = tmp_path / "net.yaml"
    text = Path(LENET).read_text()
    net.write_text(text)
    result = invoke("render", str(net), "-o", str(net), "--format", "dot")
    assert result.exit_code == 1 and "net file" in result.output
    assert net.read_text() == text


def test_without_a_layout_program_an_existing_dot_file_is_kept(tmp_path, monkeypatch):
    monkeypatch.setenv("ARCHPLAN_DOT", "")  # no layout program at all
    existing = tmp_path / "net.dot"
    existing.write_text("mine")
    result = invoke("render", LENET, "-o", str(tmp_path / "net.svg"))
    assert result.exit_code == 1 and "was not written" in result.output
    assert existing.read_text() == "mine"
    result = invoke("render", LENET, "-o", str(tmp_path / "other.svg"))
    assert result.exit_code == 1 and (tmp_path / "other.dot").read_text().startswith("digraph")


def test_written_files_are_complete_and_not_world_writable(tmp_path):
    out = tmp_path / "d.dot"
    assert invoke("render", LENET, "-o", str(out)).exit_code == 0
    assert out.read_text().rstrip().endswith("}")
    assert not os.stat(out).st_mode & 0o002
    assert not list(tmp_path.glob(".*.tmp"))
