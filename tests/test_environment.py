"""The conda environment file and pyproject.toml must pin exactly the same packages."""
import re
import tomllib

from conftest import ROOT


def pyproject_pins():
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    return dict(dep.split("==") for dep in deps)


def environment_pins():
    text = (ROOT / "environment.yml").read_text()
    return dict(re.findall(r"^\s*-\s*([A-Za-z0-9_.\-]+)==([^\s#]+)", text, re.M))


def test_every_dependency_is_pinned_exactly():
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    assert all("==" in dep for dep in deps), [dep for dep in deps if "==" not in dep]
    assert pyproject_pins()["torch"] == "2.13.0", "an unpinned torch pulls a multi-GB CUDA build"


def test_environment_yml_matches_pyproject():
    assert environment_pins() == pyproject_pins()


def test_installed_versions_match_the_pins():
    from importlib.metadata import version
    for name, pinned in pyproject_pins().items():
        assert version(name).split("+")[0] == pinned, f"{name}: installed {version(name)}, pinned {pinned}"
