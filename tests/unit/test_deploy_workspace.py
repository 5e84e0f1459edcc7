"""harness.config, deploy.workspace, deploy.override, deploy.variables: the root applied unchanged.

The root is never written to; Terraform runs in a mirror with a generated override that
points every aws provider block at the emulator; variables are checked before Terraform runs.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from harness import config
from harness.deploy import override, variables
from harness.deploy.workspace import Workspace
from harness.errors import DeployError

ROOT = Path(__file__).resolve().parents[2]


def project(tmp_path: Path) -> Path:
    """A project with a root that uses a sibling module and a file two levels up."""
    (tmp_path / "infra" / "modules" / "m").mkdir(parents=True)
    (tmp_path / "infra" / "live").mkdir()
    (tmp_path / "build").mkdir()
    (tmp_path / "build" / "app.zip").write_bytes(b"zip")
    (tmp_path / "infra" / "modules" / "m" / "main.tf").write_text('output "x" { value = 1 }\n')
    (tmp_path / "infra" / "live" / "main.tf").write_text(
        'module "m" { source = "../modules/m" }\n'
        'locals { zip = filemd5("${path.module}/../../build/app.zip") }\n'
        'provider "aws" { region = var.region }\n'
        'provider "aws" {\n  alias  = "replica"\n  region = "eu-west-1"\n}\n'
        'variable "region" { default = "us-east-2" }\n'
        'variable "owner" { type = string }\n'
    )
    for private in (".terraform", "terraform.tfstate"):
        (tmp_path / "infra" / "live" / private).mkdir() if private == ".terraform" else (
            tmp_path / "infra" / "live" / private
        ).write_text("{}")
    (tmp_path / "infra" / "live" / ".terraform.lock.hcl").write_text("# lock\n")
    return tmp_path


def test_the_mirror_resolves_relative_paths_and_leaves_the_root_alone(tmp_path: Path) -> None:
    proj = project(tmp_path / "proj")
    root = proj / "infra" / "live"
    before = sorted(p.name for p in root.iterdir())
    ws = Workspace.for_root(root, proj, tmp_path / "run")
    directory = ws.prepare()
    assert directory == tmp_path / "run" / "tree" / "infra" / "live"
    assert (directory / "main.tf").is_symlink()
    assert (directory / "../modules/m/main.tf").resolve() == (proj / "infra/modules/m/main.tf").resolve()
    assert (directory / "../../build/app.zip").read_bytes() == b"zip"
    assert not (directory / ".terraform").exists() and not (directory / "terraform.tfstate").exists()
    lock = directory / ".terraform.lock.hcl"
    assert lock.is_file() and not lock.is_symlink()  # a copy: Terraform may rewrite it
    assert ws.real_path(f"error in {directory}/main.tf") == f"error in {root}/main.tf"
    ws.prepare()  # a second run rebuilds the mirror
    assert sorted(p.name for p in root.iterdir()) == before


def test_the_override_points_every_aws_provider_at_the_emulator(tmp_path: Path) -> None:
    root = project(tmp_path) / "infra" / "live"
    text = override.render(
        root,
        lambda service: "http://127.0.0.1:2" if service == "rds" else "http://127.0.0.1:1",
        tmp_path / "state.tfstate",
        "us-east-1",
    )
    providers = re.findall(r'provider "aws" \{(.*?)\n\}', text, flags=re.S)
    assert len(providers) == 2
    default, replica = providers
    assert 'region = "${var.region}"' in default and "alias" not in default
    assert 'alias = "replica"' in replica and 'region = "eu-west-1"' in replica
    for block in providers:
        assert 'access_key                  = "test"' in block
        assert "skip_credentials_validation = true" in block
        assert "s3_use_path_style = true" in block
        assert 'sqs = "http://127.0.0.1:1"' in block
        assert 'rds = "http://127.0.0.1:2"' in block
    assert f'backend "local" {{\n    path = "{tmp_path / "state.tfstate"}"' in text


def test_variables_are_checked_before_terraform_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = project(tmp_path) / "infra" / "live"
    monkeypatch.delenv("TF_VAR_owner", raising=False)
    with pytest.raises(DeployError, match=r"needs a value for owner \(main.tf\)") as info:
        variables.arguments(root, {}, [], "harness.toml")
    assert "TF_VAR_owner" in str(info.value) and "[terraform.vars]" in str(info.value)
    with pytest.raises(
        DeployError, match=r"sets colour, which .* does not declare \(its variables: owner, region\)"
    ):
        variables.arguments(root, {"owner": "me", "colour": "red"}, [], "harness.toml")
    assert variables.arguments(root, {"owner": "me", "region": "eu-west-3"}, [], "h") == [
        "-var=owner=me",
        "-var=region=eu-west-3",
    ]
    var_file = tmp_path / "prod.tfvars.json"
    var_file.write_text(json.dumps({"owner": "ops"}))
    assert variables.arguments(root, {}, [var_file], "h") == [f"-var-file={var_file}"]
    monkeypatch.setenv("TF_VAR_owner", "env")
    assert variables.arguments(root, {}, [], "h") == []


def test_config_is_found_upward_and_checked(tmp_path: Path) -> None:
    proj = project(tmp_path)
    (proj / "harness.toml").write_text('[terraform]\nroot = "infra/live"\nvars = { owner = "me" }\n')
    nested = proj / "infra" / "modules"
    loaded = config.load(nested)
    assert loaded.root == (proj / "infra" / "live").resolve()
    assert loaded.terraform.vars == {"owner": "me"}
    (proj / "harness.toml").write_text('[terraform]\nroot = "infra/live"\nroots = "x"\n')
    with pytest.raises(config.ConfigError, match=r"harness.toml: \[terraform.roots\] Extra inputs"):
        config.load(proj)
    (proj / "harness.toml").write_text('[terraform]\nroot = "nowhere"\n')
    with pytest.raises(config.ConfigError, match=r"\[terraform.root\] nowhere is not a directory"):
        config.load(proj)
    (proj / "harness.toml").unlink()
    (proj / "pyproject.toml").write_text('[tool.harness.terraform]\nroot = "infra/live"\n')
    assert config.load(proj).source == proj / "pyproject.toml"


def test_the_project_config_names_the_one_root() -> None:
    loaded = config.load(ROOT)
    assert loaded.root == ROOT / "terraform" / "stack"
    assert not (ROOT / "terraform" / "envs").exists()  # no second root
