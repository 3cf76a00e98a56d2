"""The package layering of ARCHITECTURE.md, checked from the code's own imports.

Ranks, lowest first; a module may import its own rank or lower:

0. ``_graph``, ``_naming``, ``activations``, ``initializers``, ``regularizers``
1. ``layers``, ``ops`` (its functions record ``Operation`` nodes, a kind of layer)
2. ``model``
3. ``training.objectives``, ``training.optimizers``, and the public ``losses``, ``metrics``, ``optimizers``
4. ``training.core``
5. ``training.fit``, ``training.population`` and the public ``population``, and ``training/__init__.py``
   (it re-exports the pure step and ``FitSession``)
6. ``callbacks``, ``io``, ``utils``, ``ensemble``
7. ``tuners`` (above callbacks and io: it drives compile / fit / save_weights), ``export``, ``distribution``
   (it sets the distribution the fit session reads, kept in ``training.fit``), ``mixed_precision``
   (Keras's names for what ``layers`` and ``training.optimizers`` hold), and anything
   else: ``dagjax/__init__.py``, ...

Every import counts, at the top of a file or inside a function, relative ones resolved; those under
``if TYPE_CHECKING:`` never run and count for nothing. The one way up is ``MODEL_DELEGATIONS``: the
model's thin ``compile`` / ``fit`` / ... / ``save`` methods hand the call to the package that does
it, importing it inside the method. A new upward import anywhere else fails, naming file, line,
module and target.

Apart from rank, a module does not reach into another top-level package's private module
(``dagjax.model._functional``) for a name that package's ``__init__`` exports (``dagjax.model``).
"""

from __future__ import annotations

import ast
import pathlib
from typing import NamedTuple

REPO = pathlib.Path(__file__).resolve().parent.parent

RANKS = {
    "dagjax._graph": 0,
    "dagjax._naming": 0,
    "dagjax.activations": 0,
    "dagjax.initializers": 0,
    "dagjax.regularizers": 0,
    "dagjax.layers": 1,
    "dagjax.ops": 1,
    "dagjax.model": 2,
    "dagjax.training.objectives": 3,
    "dagjax.training.optimizers": 3,
    "dagjax.losses": 3,
    "dagjax.metrics": 3,
    "dagjax.optimizers": 3,
    "dagjax.training.core": 4,
    "dagjax.training.fit": 5,
    "dagjax.training.population": 5,
    "dagjax.population": 5,
    "dagjax.callbacks": 6,
    "dagjax.io": 6,
    "dagjax.utils": 6,
    "dagjax.ensemble": 6,
    "dagjax.tuners": 7,
    "dagjax.distribution": 7,
    "dagjax.mixed_precision": 7,
    "dagjax.backend": 7,
    "dagjax.saving": 7,
    "dagjax.applications": 7,
}
FACES = {"dagjax.training": 5}  # that package's __init__ alone; a new package under it ranks as any other
OTHER = 7

# (module, function): the upward targets it may import, inside that function only.
MODEL_DELEGATIONS = {
    ("dagjax.model._facade", "KerasFacade.compile"): {"dagjax.training.fit"},
    ("dagjax.model._facade", "KerasFacade.fit"): {"dagjax.callbacks"},
    ("dagjax.model._facade", "KerasFacade.evaluate"): {"dagjax.callbacks"},
    ("dagjax.model._facade", "KerasFacade.predict"): {"dagjax.callbacks", "dagjax.training.fit"},
    ("dagjax.model._facade", "KerasFacade.predict_on_batch"): {"dagjax.training.fit"},
    ("dagjax.model._facade", "KerasFacade.summary"): {"dagjax.utils"},
    ("dagjax.model._facade", "KerasFacade.save"): {"dagjax.io"},
    ("dagjax.model._facade", "KerasFacade.save_weights"): {"dagjax.io"},
    ("dagjax.model._facade", "KerasFacade.load_weights"): {"dagjax.io"},
    ("dagjax.model._facade", "KerasFacade.export"): {"dagjax.export"},
}


def rank(module: str) -> int:
    """The rank of a ``dagjax`` module: its own entry, else its nearest ranked package's, else ``OTHER``."""
    if module in FACES:
        return FACES[module]
    parts = module.split(".")
    for n in range(len(parts), 0, -1):
        found = RANKS.get(".".join(parts[:n]))
        if found is not None:
            return found
    return OTHER


class Import(NamedTuple):
    """One imported ``dagjax`` module, as a statement in ``module`` names it."""

    module: str  # the importing module
    file: str  # its path, relative to the repository
    line: int
    target: str  # the imported module (for ``from X import name``: ``X.name`` if a module, else ``X``)
    names: tuple  # for ``from X import a, b``: the names taken from ``target``
    function: str | None  # qualified name of the enclosing function, if any
    type_only: bool  # under ``if TYPE_CHECKING:``


def _module_name(repo: pathlib.Path, path: pathlib.Path) -> tuple[str, bool]:
    parts = path.relative_to(repo).with_suffix("").parts
    is_package = parts[-1] == "__init__"
    return ".".join(parts[:-1] if is_package else parts), is_package


def _is_module(repo: pathlib.Path, name: str) -> bool:
    path = repo.joinpath(*name.split("."))
    return (path / "__init__.py").is_file() or path.with_suffix(".py").is_file()


def _is_type_checking(test: ast.expr) -> bool:
    return any(
        (isinstance(n, ast.Name) and n.id == "TYPE_CHECKING")
        or (isinstance(n, ast.Attribute) and n.attr == "TYPE_CHECKING")
        for n in ast.walk(test)
    )


def _file_imports(repo: pathlib.Path, path: pathlib.Path) -> list[Import]:
    module, is_package = _module_name(repo, path)
    file = str(path.relative_to(repo))
    package = module.split(".") if is_package else module.split(".")[:-1]
    found: list[Import] = []

    def add(line: int, target: str, names: tuple, function: str | None, type_only: bool) -> None:
        found.append(Import(module, file, line, target, names, function, type_only))

    def visit(node: ast.AST, scope: tuple, function: str | None, type_only: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                inner = (*scope, child.name)
                visit(child, inner, ".".join(inner), type_only)
            elif isinstance(child, ast.ClassDef):
                visit(child, (*scope, child.name), function, type_only)
            elif isinstance(child, ast.If) and _is_type_checking(child.test):
                visit(ast.Module(body=child.body, type_ignores=[]), scope, function, True)
                visit(ast.Module(body=child.orelse, type_ignores=[]), scope, function, type_only)
            elif isinstance(child, ast.Import):
                for alias in child.names:
                    add(child.lineno, alias.name, (), function, type_only)
            elif isinstance(child, ast.ImportFrom):
                base = child.module or ""
                if child.level:  # relative: from the package, up ``level - 1`` packages
                    up = package[: len(package) - (child.level - 1)]
                    base = ".".join(up + ([child.module] if child.module else []))
                by_target: dict[str, list] = {}
                for alias in child.names:
                    sub = f"{base}.{alias.name}"
                    by_target.setdefault(sub if _is_module(repo, sub) else base, []).append(alias.name)
                for target, names in by_target.items():
                    add(child.lineno, target, tuple(names), function, type_only)
            else:
                visit(child, scope, function, type_only)

    visit(ast.parse(path.read_text(), filename=file), (), None, False)
    return found


def imports(repo: pathlib.Path = REPO) -> list[Import]:
    """Every import of a ``dagjax`` module in ``repo/dagjax/**/*.py``."""
    found = [i for path in sorted((repo / "dagjax").rglob("*.py")) for i in _file_imports(repo, path)]
    return [i for i in found if i.target == "dagjax" or i.target.startswith("dagjax.")]


def _delegation(imp: Import) -> set:
    return MODEL_DELEGATIONS.get((imp.module, imp.function), set())


def upward_imports(repo: pathlib.Path = REPO) -> list[str]:
    """``file:line: module (rank) imports target (rank)`` for every import that goes up, delegations aside."""
    found = []
    for imp in imports(repo):
        if imp.type_only or rank(imp.target) <= rank(imp.module):
            continue
        if any(imp.target == t or imp.target.startswith(t + ".") for t in _delegation(imp)):
            continue
        where = f"inside {imp.function}()" if imp.function else "at the top level"
        found.append(
            f"{imp.file}:{imp.line}: {imp.module} (rank {rank(imp.module)}) imports {imp.target} "
            f"(rank {rank(imp.target)}) {where}"
        )
    return found


def _top_package(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def _exported(repo: pathlib.Path, package: str) -> set:
    """The names ``package/__init__.py`` binds at its top level (what ``from package import name`` finds)."""
    init = repo.joinpath(*package.split("."), "__init__.py")
    if not init.is_file():
        return set()
    names = set()
    for node in ast.parse(init.read_text()).body:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            names.update((a.asname or a.name).split(".")[0] for a in node.names)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names.update(n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name))
    return names


def private_reaches(repo: pathlib.Path = REPO) -> list[str]:
    """Imports of another top-level package's private module for names its ``__init__`` exports."""
    found = []
    for imp in imports(repo):
        parts = imp.target.split(".")
        private = next((i for i, p in enumerate(parts) if p.startswith("_") and i > 0), None)
        if private is None or private < 2 or _top_package(imp.target) == _top_package(imp.module):
            continue
        package = ".".join(parts[:private])
        public = sorted(set(imp.names) & _exported(repo, package))
        if public:
            found.append(
                f"{imp.file}:{imp.line}: {imp.module} imports {', '.join(public)} from {imp.target}; "
                f"use `from {package} import {', '.join(public)}`"
            )
    return found


# ------------------------------------------------------------------ the package itself
def test_the_layout_is_there():
    """The ranked packages exist, so the checks below cannot pass on an empty tree."""
    missing = [name for name in RANKS if not _is_module(REPO, name)]
    assert not missing, f"ranked modules not found: {missing}; update RANKS with the layout"
    assert len({i.module for i in imports()}) > 40


def test_imports_only_go_down():
    found = upward_imports()
    assert not found, "upward imports (see ARCHITECTURE.md, 'Layout'):\n" + "\n".join(found)


def test_every_model_delegation_is_there():
    """Each allowed upward import is one the model makes: the allow-list names real functions."""
    used = {
        (imp.module, imp.function, t)
        for imp in imports()
        if not imp.type_only
        for t in _delegation(imp)
        if imp.target == t or imp.target.startswith(t + ".")
    }
    listed = [(m, f, t) for (m, f), targets in MODEL_DELEGATIONS.items() for t in targets]
    stale = [entry for entry in listed if entry not in used]
    assert not stale, f"MODEL_DELEGATIONS names imports the code no longer makes: {stale}"


def test_no_reaching_into_another_package_for_a_public_name():
    found = private_reaches()
    assert not found, "\n".join(found)


# ------------------------------------------------------------------ the checker, on planted trees
def _tree(tmp_path: pathlib.Path, files: dict) -> pathlib.Path:
    for name, text in files.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return tmp_path


_BASE = {
    "dagjax/__init__.py": "from dagjax.model import Model\n",
    "dagjax/_graph.py": "",
    "dagjax/layers/__init__.py": "from dagjax.layers._base import Layer as Layer\n",
    "dagjax/layers/_base.py": "from .._graph import x\n",
    "dagjax/model/__init__.py": "from dagjax.model._functional import Model as Model\n",
    "dagjax/model/_facade.py": (
        "class KerasFacade:\n    def fit(self):\n        from dagjax.callbacks import callback_list\n"
    ),
    "dagjax/model/_functional.py": "from dagjax.layers import Layer\n",
    "dagjax/training/__init__.py": "from dagjax.training.fit import FitSession\n",
    "dagjax/training/fit/__init__.py": "from ._session import FitSession\n",
    "dagjax/training/fit/_session.py": (
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from dagjax.model import Model\n"
    ),
    "dagjax/callbacks/__init__.py": "def callback_list(): pass\n",
}


def test_a_clean_tree_passes(tmp_path):
    repo = _tree(tmp_path, _BASE)
    assert upward_imports(repo) == [] and private_reaches(repo) == []


def test_upward_imports_are_caught_wherever_they_are(tmp_path):
    repo = _tree(tmp_path, {
        **_BASE,
        # relative, inside a function
        "dagjax/layers/_core.py": "def f():\n    from ..model import _functional\n",
        "dagjax/model/_functional.py": "from dagjax.training import fit\n",  # model, top level
        "dagjax/model/_facade.py": (  # a delegation importing what it may not, and a method not on the list
            "class KerasFacade:\n    def fit(self):\n        from dagjax.io import save\n"
            "    def other(self):\n        import dagjax.callbacks\n"
        ),
        "dagjax/_graph.py": "if TYPE_CHECKING:\n    pass\nelse:\n    from dagjax.layers import Layer\n",
    })
    assert upward_imports(repo) == [
        "dagjax/_graph.py:4: dagjax._graph (rank 0) imports dagjax.layers (rank 1) at the top level",
        "dagjax/layers/_core.py:2: dagjax.layers._core (rank 1) imports dagjax.model._functional (rank 2) "
        "inside f()",
        "dagjax/model/_facade.py:3: dagjax.model._facade (rank 2) imports dagjax.io (rank 6) inside "
        "KerasFacade.fit()",
        "dagjax/model/_facade.py:5: dagjax.model._facade (rank 2) imports dagjax.callbacks (rank 6) inside "
        "KerasFacade.other()",
        "dagjax/model/_functional.py:1: dagjax.model._functional (rank 2) imports dagjax.training.fit "
        "(rank 5) at the top level",
    ]


def test_reaching_into_a_private_module_is_caught(tmp_path):
    repo = _tree(tmp_path, {
        **_BASE,
        "dagjax/training/fit/_session.py": (
            "from typing import TYPE_CHECKING\n"
            "if TYPE_CHECKING:\n"
            "    from dagjax.model._functional import Model\n"
        ),
        # its own package: fine
        "dagjax/model/_sequential.py": "from dagjax.model._functional import Model\n",
    })
    assert private_reaches(repo) == [
        "dagjax/training/fit/_session.py:3: dagjax.training.fit._session imports Model from "
        "dagjax.model._functional; use `from dagjax.model import Model`"
    ]
