"""Every Terraform module tickpath ships (sweep providers, busbench triangle), checked offline.

``terraform validate`` runs for real on each module whose providers need no download: the modules
built only from Terraform's built-in ``terraform_data``, always; the AWS modules when a local
provider mirror is present (``TICKPATH_TF_PLUGIN_DIR``, default ``/opt/tf-plugins``), else they skip.
``-plugin-dir`` makes ``init`` install from that directory only, so it never reaches a registry.
Static checks with python-hcl2 cover every module whatever is installed: variables declared,
typed, described and used; outputs described; references to declared resources, data sources and
locals; template variables passed; no inbound rule from the whole internet. Module-specific
properties (the sweep's bucket and role, the triangle's ports) are in tests/sweep and tests/busbench.
"""

from __future__ import annotations

import functools
import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import hcl2
import pytest

import tickpath.busbench
import tickpath.sweep

ROOTS = {
    "sweep": Path(tickpath.sweep.__file__).resolve().parent / "providers",
    "busbench": Path(tickpath.busbench.__file__).resolve().parent / "terraform",
}
MODULES = {
    f"{root}/{d.relative_to(base).as_posix()}": d
    for root, base in ROOTS.items()
    for d in sorted({f.parent for f in base.rglob("*.tf")})
}
BUILTIN_ONLY = {"sweep/local", "busbench/baremetal"}
WORLD = ("0.0.0.0/0", "::/0")
TERRAFORM = shutil.which("terraform") or shutil.which("/usr/local/bin/terraform")
needs_terraform = pytest.mark.skipif(TERRAFORM is None, reason="terraform CLI not installed")


def _unquote(node: Any) -> Any:
    """python-hcl2 keeps HCL quotes on keys and string literals, and adds markers; drop both."""
    if isinstance(node, dict):
        return {_unquote(k): _unquote(v) for k, v in node.items() if not str(k).startswith("__")}
    if isinstance(node, list):
        return [_unquote(v) for v in node]
    if isinstance(node, str) and len(node) >= 2 and node[0] == node[-1] == '"':
        return node[1:-1]
    return node


def _load(path: Path) -> dict[str, list[Any]]:
    merged: dict[str, list[Any]] = {}
    for f in sorted(path.glob("*.tf")):
        with f.open() as fh:
            for key, blocks in _unquote(hcl2.load(fh)).items():
                merged.setdefault(key, []).extend(blocks)
    return merged


@functools.cache
def _doc(name: str) -> dict[str, list[Any]]:
    """A module's parsed HCL, on first use: parsing them all at import cost every pytest worker
    ~0.4 CPU-s at collection, also where none of these tests runs."""
    return _load(MODULES[name])


def _named(doc: dict[str, list[Any]], kind: str) -> dict[str, Any]:
    return {k: v for block in doc.get(kind, []) for k, v in block.items()}


def _typed(doc: dict[str, list[Any]], kind: str) -> dict[tuple[str, str], Any]:
    return {(t, n): body for block in doc.get(kind, []) for t, named in block.items() for n, body in named.items()}


def _providers(doc: dict[str, list[Any]]) -> set[str]:
    """Providers a module needs installed (``terraform`` is built in)."""
    used = {t.split("_", 1)[0] for kind in ("resource", "data") for t, _ in _typed(doc, kind)}
    for block in doc.get("terraform", []):
        for req in block.get("required_providers", []):
            used |= set(req)
    return used - {"terraform"}


def _plugin_dir() -> Path | None:
    d = Path(os.environ.get("TICKPATH_TF_PLUGIN_DIR", "/opt/tf-plugins"))
    return d if (d / "registry.terraform.io").is_dir() else None


def test_the_modules_without_providers_are_known() -> None:
    """Exactly the local sweep and the bare-metal triangle validate with no provider at all."""
    assert {"sweep/local", "sweep/aws/shared", "sweep/aws/candidate", "busbench/aws"} <= set(MODULES)
    assert {name for name in MODULES if not _providers(_doc(name))} == BUILTIN_ONLY


@pytest.mark.integration
@needs_terraform
def test_modules_are_terraform_fmt_canonical(tmp_path: Path) -> None:
    """``terraform fmt -check -recursive`` passes on both module trees."""
    rc = tmp_path / "terraformrc"
    rc.write_text("")
    env = {**os.environ, "TF_CLI_CONFIG_FILE": str(rc), "CHECKPOINT_DISABLE": "1"}
    for root in ROOTS.values():
        proc = subprocess.run(
            [str(TERRAFORM), "fmt", "-check", "-recursive", "-diff", str(root)],
            capture_output=True,
            text=True,
            env=env,
            timeout=60,
        )
        assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.integration
@needs_terraform
@pytest.mark.parametrize("name", sorted(MODULES))
def test_module_passes_terraform_validate_offline(name: str, tmp_path: Path) -> None:
    """init -backend=false from a local plugin directory only (empty for built-in modules), then validate."""
    needed = _providers(_doc(name))
    plugins = tmp_path / "no-plugins"
    plugins.mkdir()
    if needed:
        mirror = _plugin_dir()
        if mirror is None or not all(any(mirror.glob(f"*/*/{p}/*/*")) for p in needed):
            pytest.skip(f"{name} needs {', '.join(sorted(needed))}; no local provider mirror (TICKPATH_TF_PLUGIN_DIR)")
        plugins = mirror
    root, _, rel = name.partition("/")
    work = tmp_path / "tf"
    shutil.copytree(ROOTS[root], work)  # the whole tree: modules read ../ files
    rc = tmp_path / "terraformrc"
    rc.write_text("")
    env = {**os.environ, "TF_CLI_CONFIG_FILE": str(rc), "CHECKPOINT_DISABLE": "1", "TF_IN_AUTOMATION": "1"}
    init = [str(TERRAFORM), "init", "-backend=false", "-input=false", "-no-color", f"-plugin-dir={plugins}"]
    proc = subprocess.run(init, cwd=work / rel, capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    proc = subprocess.run(
        [str(TERRAFORM), "validate", "-json", "-no-color"],
        cwd=work / rel,
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    report = json.loads(proc.stdout)
    assert report["valid"] and report["warning_count"] == 0, report["diagnostics"]


@pytest.mark.parametrize("name", sorted(MODULES))
def test_variables_are_declared_typed_described_and_used(name: str) -> None:
    """Every var.X a module reads is declared; every declared variable has a type, a description, and a use."""
    doc = _doc(name)
    declared = _named(doc, "variable")
    text = json.dumps({k: v for k, v in doc.items() if k != "variable"}) + json.dumps(
        [b.get("validation", []) for b in declared.values()]
    )
    used = set(re.findall(r"\bvar\.([A-Za-z0-9_-]+)", text))
    assert used <= set(declared), f"undeclared: {sorted(used - set(declared))}"
    assert set(declared) <= used, f"declared but unused: {sorted(set(declared) - used)}"
    for var, body in declared.items():
        assert body.get("type"), f"variable {var} has no type"
        assert str(body.get("description", "")).strip(), f"variable {var} has no description"


@pytest.mark.parametrize("name", sorted(MODULES))
def test_outputs_are_described(name: str) -> None:
    """Every output says what it is and has a value."""
    for out, body in _named(_doc(name), "output").items():
        assert str(body.get("description", "")).strip(), f"output {out} has no description"
        assert "value" in body, out


@pytest.mark.parametrize("name", sorted(MODULES))
def test_references_name_declared_resources_data_and_locals(name: str) -> None:
    """What `validate` would catch, without a provider: no reference to an undeclared resource,
    data source or local."""
    doc = _doc(name)
    text = json.dumps(doc)
    resources, data = set(_typed(doc, "resource")), set(_typed(doc, "data"))
    types = {t for t, _ in resources} | {t for t, _ in data}
    prefixes = {t.split("_", 1)[0] for t in types} | {"terraform"}
    pattern = rf"(?<![\w.])((?:{'|'.join(sorted(prefixes))})_[a-z0-9_]+)\.([A-Za-z0-9_-]+)"
    refs = set(re.findall(pattern, text))  # not data.TYPE.NAME: the lookbehind skips a type after "."
    data_refs = set(re.findall(r"\bdata\.([a-z0-9_]+)\.([A-Za-z0-9_-]+)", text))
    assert data_refs <= data, f"undeclared data sources: {sorted(data_refs - data)}"
    assert refs <= resources, f"undeclared resources: {sorted(refs - resources)}"
    local_refs = set(re.findall(r"\blocal\.([A-Za-z0-9_]+)", text))
    assert local_refs <= set(_named(doc, "locals")), f"undeclared locals: {sorted(local_refs)}"


_TEMPLATE_WORDS = {"if", "else", "endif", "for", "in", "endfor", "true", "false", "null"}


@pytest.mark.parametrize("name", sorted(MODULES))
def test_templatefile_is_given_every_variable_its_template_reads(name: str) -> None:
    """templatefile(FILE, {..}) passes each name FILE's ${..} and %{..} use (else apply fails at boot)."""
    path = MODULES[name]
    for f in path.glob("*.tf"):
        source = f.read_text()
        for m in re.finditer(r'templatefile\("\$\{path\.module\}/([^"]+)",\s*\{(.*?)\}\)', source, re.S):
            passed = set(re.findall(r"^\s*([a-z_][a-z0-9_]*)\s*=", m.group(2), re.M))
            template = (path / m.group(1)).read_text().replace("$${", "").replace("%%{", "")
            read: set[str] = set()
            for expr in re.findall(r"[$%]\{~?(.*?)~?\}", template, re.S):
                expr = re.sub(r'"[^"]*"', "", expr)
                read |= {w for w in re.findall(r"(?<![\w.])[a-z_][a-z0-9_]*(?!\s*\()", expr)}
            missing = read - _TEMPLATE_WORDS - passed
            assert not missing, f"{m.group(1)} reads {sorted(missing)}, not passed by templatefile"
            assert passed and read, m.group(1)


def _ingress_sources(doc: dict[str, list[Any]]) -> list[tuple[str, Any]]:
    """(rule, source CIDRs) of every inbound rule, in the three ways AWS resources can write one."""
    out: list[tuple[str, Any]] = []
    for (rtype, rname), body in _typed(doc, "resource").items():
        if rtype == "aws_security_group":
            for i, rule in enumerate(body.get("ingress", [])):
                out.append((f"{rname}.ingress[{i}]", [rule.get("cidr_blocks"), rule.get("ipv6_cidr_blocks")]))
        elif rtype == "aws_security_group_rule" and body.get("type") == "ingress":
            out.append((rname, [body.get("cidr_blocks"), body.get("ipv6_cidr_blocks")]))
        elif rtype == "aws_vpc_security_group_ingress_rule":
            out.append((rname, [body.get("cidr_ipv4"), body.get("cidr_ipv6")]))
    return out


@pytest.mark.parametrize("name", sorted(MODULES))
def test_no_inbound_rule_admits_the_whole_internet_by_default(name: str) -> None:
    """No ingress CIDR is 0.0.0.0/0 or ::/0; a CIDR from a variable has no default and a validation
    that refuses the whole internet."""
    doc = _doc(name)
    variables = _named(doc, "variable")
    for rule, sources in _ingress_sources(doc):
        text = json.dumps(sources)
        assert not any(w in text for w in WORLD), f"{name}: {rule} admits the internet: {text}"
        for var in re.findall(r"\bvar\.([A-Za-z0-9_]+)", text):
            body = variables[var]
            assert "default" not in body, f"{name}: {rule} takes {var}, which has a default"
            conditions = json.dumps(body.get("validation", []))
            assert "0.0.0.0/" in conditions, f"{name}: {var} does not refuse 0.0.0.0/0"


def test_the_ingress_check_sees_every_way_to_open_a_port() -> None:
    """An inline block, a classic rule and a VPC rule from 0.0.0.0/0 or ::/0 are all found."""
    doc = {
        "resource": [
            {"aws_security_group": {"a": {"ingress": [{"cidr_blocks": ["0.0.0.0/0"], "from_port": 22}]}}},
            {"aws_security_group_rule": {"b": {"type": "ingress", "ipv6_cidr_blocks": ["::/0"]}}},
            {"aws_security_group_rule": {"out": {"type": "egress", "cidr_blocks": ["0.0.0.0/0"]}}},
            {"aws_vpc_security_group_ingress_rule": {"c": {"cidr_ipv4": "0.0.0.0/0"}}},
        ]
    }
    found = {rule for rule, src in _ingress_sources(doc) if any(w in json.dumps(src) for w in WORLD)}
    assert found == {"a.ingress[0]", "b", "c"}
