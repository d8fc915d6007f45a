import json

from typer.testing import CliRunner

from aacscore import __version__
from aacscore.cli import app

runner = CliRunner()


def test_version() -> None:
    res = runner.invoke(app, ["--version"])
    assert res.exit_code == 0
    assert res.output.strip() == f"aacscore {__version__}"


def test_help_lists_commands() -> None:
    res = runner.invoke(app, ["--help"])
    assert res.exit_code == 0
    assert "info" in res.output


def test_info_json() -> None:
    res = runner.invoke(app, ["info", "--json"])
    assert res.exit_code == 0, res.output
    data = json.loads(res.output)
    assert data["aacscore"] == __version__
    assert data["versions"]["torch"].startswith("2.13.0")
    assert data["versions"]["pydicom"] != "not installed"
    assert data["device"].startswith(("cpu", "cuda"))
    assert data["weights_dir"].endswith("models")


def test_info_text() -> None:
    res = runner.invoke(app, ["info"])
    assert res.exit_code == 0
    assert "monai" in res.output
