"""Every Python code block of README.md and docs/**/*.md runs, and the release metadata agrees.

The blocks of a page run in order, in one namespace (as a reader pasting them into one session would),
in a fresh temporary working folder; each block creates the data it reads. A marker on the line just
before a block's fence says how it runs:

- no marker: in the no-JVM process (``--spark-mode=none``), with the contexts of that process;
- ``<!-- test: spark -->``: in the Spark modes, with ``spark`` set to the tests' SparkSession, as in a
  notebook (a page with such blocks runs there whole, its other blocks included);
- ``<!-- test: compile-only: <reason> -->``: compiled, not run, for code that needs software this
  repository cannot install (Apache Airflow, databricks-connect and a workspace); the reason is shown.
"""

from __future__ import annotations

import contextlib
import logging
import re
import time
import traceback
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
MARKER = re.compile(r"^<!--\s*test:\s*(?P<kind>[\w-]+)\s*(?::\s*(?P<reason>.*?))?\s*-->$")
FENCE = re.compile(r"^(?P<indent>\s*)```(?P<lang>[\w+-]*)")
KINDS = ("spark", "compile-only")


@dataclass(frozen=True)
class Block:
    page: Path
    line: int  # of the opening fence, 1-based
    code: str
    kind: str  # "run", "spark" or "compile-only"
    reason: str = ""

    @property
    def where(self) -> str:
        return f"{_shown(self.page)}:{self.line}"


def _shown(page: Path) -> str:
    return str(page.relative_to(ROOT)) if page.is_relative_to(ROOT) else str(page)


def blocks(page: Path) -> list[Block]:
    """The page's python blocks with their markers; a marker that is malformed, unknown or not right
    before a python block is an error."""
    lines = page.read_text().splitlines()
    found: list[Block] = []
    i = 0
    while i < len(lines):
        fence = FENCE.match(lines[i])
        marker = MARKER.match(lines[i].strip())
        if lines[i].strip().startswith("<!-- test") and marker is None:
            raise ValueError(f"{_shown(page)}:{i + 1}: malformed test marker {lines[i].strip()!r}")
        if marker is not None:
            kind, reason = marker["kind"], marker["reason"] or ""
            nxt = FENCE.match(lines[i + 1]) if i + 1 < len(lines) else None
            if kind not in KINDS or nxt is None or nxt["lang"] != "python":
                raise ValueError(
                    f"{_shown(page)}:{i + 1}: a marker must be one of {KINDS} and stand on the line "
                    f"right before a ```python fence; got {lines[i].strip()!r}"
                )
            if kind == "compile-only" and not reason:
                raise ValueError(f"{_shown(page)}:{i + 1}: compile-only needs a reason")
        if fence is None:
            i += 1
            continue
        start, indent = i, fence["indent"]
        i += 1
        body: list[str] = []
        while i < len(lines) and not lines[i].startswith(f"{indent}```"):
            body.append(lines[i][len(indent) :])
            i += 1
        i += 1
        if fence["lang"] == "python":
            prev = MARKER.match(lines[start - 1].strip()) if start else None
            kind = prev["kind"] if prev else "run"
            found.append(Block(page, start + 1, "\n".join(body) + "\n", kind, (prev["reason"] or "") if prev else ""))
    return found


PAGE_BLOCKS = {page: blocks(page) for page in PAGES}
LOCAL_PAGES = [p for p, bs in PAGE_BLOCKS.items() if any(b.kind != "spark" for b in bs)]
SPARK_PAGES = [p for p, bs in PAGE_BLOCKS.items() if any(b.kind == "spark" for b in bs)]


def _id(page: Path) -> str:
    return str(page.relative_to(ROOT))


@contextlib.contextmanager
def _as_found() -> Iterator[None]:
    """What a page's blocks may change in this process, put back: the compute context, sparkdist's
    options, the logging set-up, warning filters."""
    import warnings

    import sparkdist as sd

    context = sd.set_compute_context(None)
    sd.set_compute_context(context)
    root, ours = logging.getLogger(), logging.getLogger("sparkdist")
    handlers, root_level, our_level = list(root.handlers), root.level, ours.level
    try:
        with warnings.catch_warnings():
            yield
    finally:
        sd.set_compute_context(context)
        sd.options.progress = None
        root.handlers[:], root.level, ours.level = handlers, root_level, our_level


def run_page(page: Path, kinds: tuple[str, ...], namespace: dict[str, Any]) -> int:
    """Run the page's blocks of ``kinds`` in order in ``namespace``, compile its compile-only blocks;
    a failure names the page, the block's line and the error. Returns the count of blocks run."""
    ran = 0
    for block in PAGE_BLOCKS[page]:
        code = compile(block.code, block.where, "exec")
        if block.kind not in kinds:
            continue
        started = time.monotonic()
        try:
            exec(code, namespace)
        except BaseException as err:
            shown = traceback.format_exception(type(err), err, err.__traceback__)
            raise AssertionError(f"the block at {block.where} failed:\n{block.code}\n{''.join(shown[-12:])}") from None
        ran += 1
        print(f"{block.where}: {block.kind} block ran in {time.monotonic() - started:.2f} s")
    return ran


@pytest.mark.parametrize("page", LOCAL_PAGES, ids=_id)
def test_page_blocks_run(page: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The page's blocks that need no cluster, in order, in the no-JVM process."""
    monkeypatch.chdir(tmp_path)
    with _as_found():
        ran = run_page(page, ("run",), {"__name__": f"docs_{page.stem}"})
    assert ran or any(b.kind == "compile-only" for b in PAGE_BLOCKS[page])


@pytest.mark.parametrize("page", SPARK_PAGES, ids=_id)
def test_page_blocks_run_on_spark(page: Path, spark: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The whole page, with ``spark`` the tests' SparkSession (its blocks marked spark need one)."""
    import sparkdist as sd

    monkeypatch.chdir(tmp_path)
    with _as_found():
        # the blocks without a marker ran in the no-JVM process already: here they only set the page up,
        # in this process; the spark blocks name their Spark context
        sd.set_compute_context(sd.LocalComputeContext())
        ran = run_page(page, ("run", "spark"), {"__name__": f"docs_{page.stem}", "spark": spark})
    assert ran >= sum(b.kind == "spark" for b in PAGE_BLOCKS[page]) > 0


def test_every_page_has_blocks_that_run_and_markers_are_well_formed() -> None:
    """The parser found the pages' blocks (parsing raises on a bad marker), every compile-only block
    says why, and the pages a user starts from have code that runs here."""
    total = sum(len(bs) for bs in PAGE_BLOCKS.values())
    assert total >= 40, total
    for page in ("README.md", "docs/index.md", "docs/getting-started.md", "docs/concepts.md"):
        assert any(b.kind in ("run", "spark") for b in PAGE_BLOCKS[ROOT / page]), page
    compile_only = [b for bs in PAGE_BLOCKS.values() for b in bs if b.kind == "compile-only"]
    assert all(b.reason for b in compile_only)
    assert len(compile_only) <= 3, [b.where for b in compile_only]  # the exception, not the rule


def test_marker_errors_name_the_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.md"
    bad.write_text("text\n<!-- test: sparkk -->\n```python\nx = 1\n```\n")
    with pytest.raises(ValueError, match=r"bad\.md:2: a marker must be one of"):
        blocks(bad)
    bad.write_text("<!-- test: compile-only -->\n```python\nx = 1\n```\n")
    with pytest.raises(ValueError, match="compile-only needs a reason"):
        blocks(bad)
    bad.write_text("<!-- test: spark -->\n\n```python\nx = 1\n```\n")
    with pytest.raises(ValueError, match="right before a ```python fence"):
        blocks(bad)
    bad.write_text("<!-- test spark -->\n```python\nx = 1\n```\n")
    with pytest.raises(ValueError, match="malformed test marker"):
        blocks(bad)
    bad.write_text("<!-- test: spark -->\n```python\nx = 1\n```\n```sh\nls\n```\n```python\ny = 2\n```\n")
    assert [(b.line, b.kind, b.code) for b in blocks(bad)] == [(2, "spark", "x = 1\n"), (8, "run", "y = 2\n")]


# -- release metadata ------------------------------------------------------------------------------


def _pyproject(key: str) -> str:
    """A ``key = "value"`` line of pyproject.toml (the first: [project] comes first)."""
    found = re.search(rf'^{re.escape(key)} = "([^"]+)"$', (ROOT / "pyproject.toml").read_text(), flags=re.M)
    assert found, key
    return found.group(1)


def test_version_agrees_everywhere() -> None:
    """pyproject, sparkdist.__version__, the installed metadata of this checkout and the newest
    release in the CHANGELOG name one version."""
    from importlib import metadata

    import sparkdist

    version = _pyproject("version")
    assert sparkdist.__version__ == version
    if Path(sparkdist.__file__).resolve().parent.parent == ROOT:  # installed from this checkout (editable)
        assert metadata.version("sparkdist") == version
    headings = re.findall(r"^## (.+)$", (ROOT / "CHANGELOG.md").read_text(), flags=re.M)
    assert headings[0] == "Unreleased", headings[:3]
    assert headings[1].split()[0] == version, headings[:3]


def test_project_urls_point_at_the_docs_and_the_repository() -> None:
    urls = {key: _pyproject(key) for key in ("Documentation", "Source", "Changelog")}
    site = (ROOT / "mkdocs.yml").read_text()
    site_url = re.search(r"^site_url:\s*(\S+)", site, flags=re.M)
    repo_url = re.search(r"^repo_url:\s*(\S+)", site, flags=re.M)
    assert site_url and repo_url
    assert urls["Documentation"] == site_url.group(1)
    assert urls["Source"] == repo_url.group(1)
    assert urls["Changelog"].startswith(repo_url.group(1))


def test_readme_links_lead_somewhere() -> None:
    """README's relative links (GitHub and the sdist show it; mkdocs does not check it) name files that
    exist, and its anchors into the docs pages name headings there."""
    text = (ROOT / "README.md").read_text()
    links = re.findall(r"\]\(([^)\s]+)\)", text)
    relative = [link for link in links if "://" not in link]
    assert len(relative) >= 10, relative
    for link in relative:
        path, _, anchor = link.partition("#")
        assert (ROOT / path).is_file(), link
        if anchor:
            headings = re.findall(r"^#+ (.+)$", (ROOT / path).read_text(), flags=re.M)
            slugs = {re.sub(r"[^\w\- ]", "", h).strip().lower().replace(" ", "-") for h in headings}
            assert anchor in slugs, (link, sorted(slugs))


def test_every_page_is_in_the_navigation() -> None:
    """mkdocs --strict warns about pages left out of ``nav`` only at INFO; here they fail."""
    nav = (ROOT / "mkdocs.yml").read_text().split("\nnav:", 1)[1]
    listed = set(re.findall(r":\s*(\S+\.md)\s*$", nav, flags=re.M))
    pages = {str(p.relative_to(ROOT / "docs")) for p in (ROOT / "docs").rglob("*.md")}
    assert pages == listed, (pages - listed, listed - pages)


# -- notebooks -------------------------------------------------------------------------------------

NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
SETUP_TAG = "sparkdist-setup"


def _cells(notebook: Path) -> list[tuple[str, list[str]]]:
    """(source, tags) of each code cell."""
    import json

    cells = json.loads(notebook.read_text())["cells"]
    return [("".join(c["source"]), c.get("metadata", {}).get("tags", [])) for c in cells if c["cell_type"] == "code"]


def _names(source: str) -> tuple[set[str], set[str]]:
    """(names a cell binds anywhere, names it reads), from its syntax tree."""
    import ast

    bound: set[str] = set()
    read: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Name):
            (read if isinstance(node.ctx, ast.Load) else bound).add(node.id)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            bound.add(node.name)
        elif isinstance(node, ast.arg):
            bound.add(node.arg)
        elif isinstance(node, ast.alias):
            bound.add((node.asname or node.name).split(".")[0])
        elif isinstance(node, ast.ExceptHandler) and node.name:
            bound.add(node.name)
    return bound, read


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_cells_need_only_the_setup_cells(notebook: Path) -> None:
    """On Databricks a reader runs cells in any order or skips some: each cell after the setup cells
    (tagged ``sparkdist-setup``: where things run, and the data) reads only names the setup cells or the
    cell itself define -- and ``spark``, which only the setup cell reads, and only on Databricks."""
    import builtins

    cells = _cells(notebook)
    setup = [source for source, tags in cells if SETUP_TAG in tags]
    assert setup and cells[0][1] == [SETUP_TAG], "the first code cell sets up where things run"
    assert "DATABRICKS_RUNTIME_VERSION" in setup[0] and "/Volumes/" in setup[0]
    available = set(dir(builtins)) | {"spark"}
    for source in setup:
        bound, _ = _names(source)
        available |= bound
    for source, tags in cells:
        if SETUP_TAG in tags:
            continue
        bound, read = _names(source)
        missing = read - bound - available
        assert not missing, f"{notebook.name}: a cell reads {sorted(missing)} from another cell:\n{source}"
        assert "spark" not in read or "spark" in bound, f"{notebook.name}: only the setup cell uses `spark`:\n{source}"
