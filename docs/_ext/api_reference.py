"""The API reference, written from the public packages' ``__all__`` each time the docs build.

Every public name gets a row in its package's page, linking to the one place where the object is
documented (from its docstring, by ``sphinx.ext.autodoc``): ``optim.X`` for a name exported at the
top level, else the first package below that exports it. ``optim``'s own names are split into pages
by the part of the library that defines them (optimizers, transformations, schedules, training,
...), and the optimizers and transformations into sections by module, so that a new public name
lands in the right place without editing the docs.

Importing this module needs neither Sphinx nor a build: ``tests/test_docs_site.py`` calls
:func:`write_pages` to check that every public name is in the reference's source.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib
import inspect
import pathlib
import textwrap

# The public packages, as the docstring checker lists them, and the public modules of ``models``.
PACKAGES = (
    "optim",
    "optim.assignment",
    "optim.checkpoint",
    "optim.contrib",
    "optim.experimental",
    "optim.losses",
    "optim.microbatching",
    "optim.perturbations",
    "optim.precision",
    "optim.projections",
    "optim.quantized",
    "optim.schedules",
    "optim.second_order",
    "optim.train",
    "optim.transforms",
    "optim.tree",
    "optim.tree_utils",
    "models",
    "models.datasets",
    "models.losses",
    "models.text",
)


@dataclasses.dataclass(frozen=True)
class Group:
    """A page of ``optim``'s top-level names: those defined under one of ``homes``."""

    slug: str
    title: str
    intro: str
    homes: tuple[str, ...]


# ``optim``'s top-level names, by the module that defines them. The last group takes the rest.
GROUPS = (
    Group(
        "core",
        "Core: the optimizer protocol",
        "What every optimizer is made of: ``GradientTransformation`` (optax's class, shared), "
        "``chain``, ``apply_updates``, the state records and the type aliases.",
        ("optim.base", "optax", "typing", "collections"),
    ),
    Group(
        "optimizers",
        "Optimizers",
        "The optimizers with optax's names, arguments and defaults, and the ``scale_by_*`` "
        "building block that holds each one's update rule.",
        ("optim.optimizers", "optim.contrib"),
    ),
    Group(
        "transformations",
        "Transformations and combinators",
        "Building blocks to chain (clipping, weight decay, momentum, ...) and wrappers that "
        "change how a transformation applies (masks, partitions, accumulation, lookahead).",
        ("optim.transforms",),
    ),
    Group(
        "schedules",
        "Schedules",
        "Functions of the step count, themselves pytrees (every float argument is a leaf), "
        "accepted wherever a learning rate or weight decay goes.",
        ("optim.schedules",),
    ),
    Group(
        "training",
        "Training",
        "``fit`` (a compiled ``lax.scan`` training loop), sweeps, hypergradients, and gradients "
        "over the trainable leaves of a model.",
        ("optim.train", "optim.grad"),
    ),
    Group(
        "precision",
        "Precision and memory-lean state",
        "Optimizer state in bfloat16 or 8 bits, stochastic rounding, Kahan summation and mixed "
        "precision.",
        ("optim.precision",),
    ),
    Group(
        "losses-top",
        "Losses at the top level",
        "The losses optax also exports at its top level (all of them are in "
        ":doc:`optim.losses <optim.losses>`).",
        ("optim.losses",),
    ),
    Group(
        "utilities",
        "Numerics, linear algebra and trees",
        "Numerically safe primitives, linear algebra for optimizers, moment estimates of "
        "pytrees, microbatching and distributions.",
        (),
    ),
)

# Section titles inside a group page, by defining module (others use their module's docstring).
SECTIONS = {
    "optim.optimizers._adam": "Adam and the variants that keep its two moments",
    "optim.optimizers._adam_variants": "Adam's relatives: AdaBelief, RAdam, Yogi, Adan, NovoGrad",
    "optim.optimizers._adagrad": "AdaGrad and AdaDelta",
    "optim.optimizers._rmsprop": "RMSProp",
    "optim.optimizers._sgd": "Stochastic gradient descent",
    "optim.optimizers._sign": "Sign-based methods: Lion, signSGD, Signum, Rprop",
    "optim.optimizers._trust_ratio": "Layer-wise trust ratios: LARS, LAMB, Fromage",
    "optim.optimizers._factorized": "Factored and memory-lean: Adafactor, SM3",
    "optim.optimizers._optimistic": "Optimistic methods for min-max problems",
    "optim.optimizers._polyak": "Polyak step sizes",
    "optim.optimizers._lbfgs": "L-BFGS",
    "optim.optimizers._linesearch": "Line searches",
    "optim.contrib._dog": "Distance over gradients",
    "optim.transforms._accumulation": "Momentum, moving averages, gradient accumulation",
    "optim.transforms._adding": "Weight decay and gradient noise",
    "optim.transforms._clipping": "Clipping",
    "optim.transforms._combining": "Partitions and named chains",
    "optim.transforms._conditionality": "Conditional transformations",
    "optim.transforms._constraining": "Constraints",
    "optim.transforms._freezing": "Freezing",
    "optim.transforms._hyperparams": "Reading and replacing hyperparameters",
    "optim.transforms._incremental": "Slow copies of the parameters",
    "optim.transforms._layouts": "Flat layouts",
    "optim.transforms._lookahead": "Lookahead",
    "optim.transforms._masking": "Masking",
    "optim.transforms._monitoring": "Monitoring",
    "optim.transforms._normalizing": "Normalising updates",
    "optim.transforms._scaling": "Scaling",
    "optim.transforms._stateless": "Stateless transformations",
}

# Groups whose pages are split into sections by defining module.
SECTIONED = ("optimizers", "transformations")


@dataclasses.dataclass(frozen=True)
class Name:
    """One public name: where it is exported, the object, and where that object is documented."""

    package: str
    name: str
    obj: object
    canonical: str  # the full name whose entry holds the docstring

    @property
    def full(self) -> str:
        return f"{self.package}.{self.name}"


def public_names(package: str) -> list[str]:
    """A package's public names: its ``__all__`` (every package listed here has one)."""
    module = importlib.import_module(package)
    names = getattr(module, "__all__", None)
    if names is None:
        names = [n for n in dir(module) if not n.startswith("_")]
    return list(names)


def _home(obj: object) -> str:
    target = obj.func if isinstance(obj, functools.partial) else obj
    return getattr(target, "__module__", None) or ""


def _shareable(obj: object) -> bool:
    """Whether two exports of ``obj`` are one thing (documented once) rather than equal values."""
    return not isinstance(obj, (bool, int, float, str, bytes, type(None)))


def packages() -> list[str]:
    """``PACKAGES`` and the public modules they export (``optim.experimental.aggregating``)."""
    found = list(PACKAGES)
    for package in found:  # grows while it is read: submodules of submodules are found too
        module = importlib.import_module(package)
        for name in public_names(package):
            obj = getattr(module, name)
            if inspect.ismodule(obj) and obj.__name__.startswith(("optim.", "models.")):
                if obj.__name__ not in found:
                    found.append(obj.__name__)
    return found


def collect() -> dict[str, list[Name]]:
    """Every public name of every package, each pointing to the entry that documents it.

    An object exported under several names is documented once: under the name it was defined
    with (``partition`` rather than its alias ``multi_transform``), in the first package that
    exports it by that name, else under its first name.
    """
    exports: dict[str, list[tuple[str, object]]] = {}
    canonical: dict[int, str] = {}
    for package in packages():
        module = importlib.import_module(package)
        exports[package] = [(name, getattr(module, name)) for name in public_names(package)]
        for name, obj in exports[package]:
            if _shareable(obj) and name == getattr(obj, "__name__", None):
                canonical.setdefault(id(obj), f"{package}.{name}")
    collected: dict[str, list[Name]] = {}
    for package, names in exports.items():
        rows = []
        for name, obj in names:
            full = f"{package}.{name}"
            if inspect.ismodule(obj):
                full = obj.__name__
            elif _shareable(obj):
                full = canonical.setdefault(id(obj), full)
            rows.append(Name(package, name, obj, full))
        collected[package] = rows
    return collected


def _documented_here(row: Name) -> bool:
    return not inspect.ismodule(row.obj) and row.canonical == row.full


def _is_type_alias(obj: object) -> bool:
    return _home(obj).startswith(("typing", "collections")) and not inspect.isclass(obj)


def _directive(obj: object) -> str:
    if _is_type_alias(obj):
        return "autodata"  # shown as "alias of ..."
    if inspect.isclass(obj):
        return "autoclass"
    if callable(obj):
        return "autofunction"
    return "autodata"


def _summary(obj: object) -> str:
    """The first paragraph of a docstring, on one line (rst: it renders inside a table cell)."""
    if not (inspect.isclass(obj) or callable(obj) or inspect.ismodule(obj)):
        return ""
    if _is_type_alias(obj):
        return "A type alias (see its entry)."
    doc = inspect.getdoc(obj) or ""
    paragraph = doc.strip().split("\n\n")[0]
    if paragraph.lstrip().startswith(".."):
        return ""
    return " ".join(line.strip() for line in paragraph.splitlines())


def _reading_order(rows: list[Name]) -> list[Name]:
    """Functions first (the optimizers and transformations a reader looks for), then classes
    (mostly state records), then type aliases and other values, then modules; by name within
    each kind."""

    def kind(row: Name) -> int:
        if inspect.ismodule(row.obj):
            return 3
        if _is_type_alias(row.obj) or not callable(row.obj):
            return 2
        return 1 if inspect.isclass(row.obj) else 0

    return sorted(rows, key=lambda row: (kind(row), row.name.lower()))


def _table(rows: list[Name]) -> str:
    lines = [".. list-table::", "   :widths: 30 70", "   :class: api-summary", ""]
    for row in rows:
        role = ":doc:" if inspect.ismodule(row.obj) else ":py:obj:"
        lines.append(f"   * - {role}`{row.name} <{row.canonical}>`")
        summary = _summary(row.obj)
        lines.append(f"     - {summary}" if summary else "     -")
    return "\n".join(lines) + "\n"


def _readable_signature(cls: type) -> str:
    """The class's signature, where a default that prints as ``<... object at 0x...>`` (a
    ``jax.nn.relu``) is written by its name; empty when every default prints well."""
    try:
        signature = inspect.signature(cls)
    except (TypeError, ValueError):
        return ""
    ugly = False
    parameters = []
    for parameter in signature.parameters.values():
        if parameter.default is not inspect.Parameter.empty and repr(parameter.default).startswith(
            "<"
        ):
            ugly = True
            name = getattr(parameter.default, "__name__", "...")
            parameters.append(f"{parameter.name}={name}")
        else:
            parameters.append(str(parameter.replace(annotation=inspect.Parameter.empty)))
    return f"({', '.join(parameters)})" if ugly else ""


def _entry(row: Name) -> str:
    directive = _directive(row.obj)
    options = ""
    if directive == "autoclass":
        # Fields are documented by the class's Attributes (or Args) section, not twice.
        fields = _fields(row.obj)
        options = "   :members:\n"
        if row.obj.__bases__ != (object,):  # "Bases: object" says nothing
            options += "   :show-inheritance:\n"
        if fields:
            options += f"   :exclude-members: {', '.join(fields)}\n"
    elif directive == "autodata" and not _is_type_alias(row.obj):
        options = "   :no-value:\n"
    signature = _readable_signature(row.obj) if directive == "autoclass" else ""
    return f".. {directive}:: {row.canonical}{signature}\n{options}"


def _fields(cls: type) -> list[str]:
    if dataclasses.is_dataclass(cls):
        return [field.name for field in dataclasses.fields(cls)]
    return list(getattr(cls, "_fields", ()))


def _heading(text: str, underline: str) -> str:
    return f"{text}\n{underline * len(text)}\n"


def _group_of(row: Name) -> Group:
    home = _home(row.obj)
    for group in GROUPS:
        if any(home == h or home.startswith(h + ".") for h in group.homes):
            return group
    return GROUPS[-1]


def _section_title(module: str) -> str:
    if module in SECTIONS:
        return SECTIONS[module]
    doc = (importlib.import_module(module).__doc__ or module).strip()
    return doc.split(":")[0].split(".")[0].strip()


def _group_page(group: Group, rows: list[Name]) -> str:
    parts = [_heading(group.title, "="), textwrap.fill(group.intro, 100) + "\n"]
    parts.append(
        "Exported at the top level as ``optim.<name>``. Part of :doc:`the optim package <optim>`.\n"
    )
    if group.slug in SECTIONED:
        by_module: dict[str, list[Name]] = {}
        for row in rows:
            by_module.setdefault(_home(row.obj), []).append(row)
        for module in sorted(
            by_module,
            key=lambda m: list(SECTIONS).index(m) if m in SECTIONS else len(SECTIONS),
        ):
            parts.append(_heading(_section_title(module), "-"))
            section = _reading_order(by_module[module])
            parts.append(_table(section))
            parts.extend(_entry(row) for row in section if _documented_here(row))
    else:
        rows = _reading_order(rows)
        parts.append(_table(rows))
        parts.extend(_entry(row) for row in rows if _documented_here(row))
    return "\n".join(parts)


def _package_page(package: str, rows: list[Name], groups: list[Group]) -> str:
    module = importlib.import_module(package)
    title = f"``{package}``"
    # The module's own target, so that :mod:`optim.contrib` links here.
    parts = [f".. py:module:: {package}\n", _heading(title, "=")]
    doc = (module.__doc__ or "").strip().split("\n\n")[0]
    if doc:
        parts.append(" ".join(line.strip() for line in doc.splitlines()) + "\n")
    if package == "optim":
        parts.append(
            "``optim``'s top-level names are documented on these pages, by the part of the "
            "library that defines them; the table below lists every one.\n"
        )
        parts.append("\n".join(f"- :doc:`{group.title} <{group.slug}>`" for group in groups) + "\n")
        parts.append(_heading("Every top-level name", "-"))
        parts.append(_table(_reading_order(rows)))
        return "\n".join(parts)
    own = [row for row in rows if _documented_here(row)]
    elsewhere = len(rows) - len(own)
    if elsewhere:
        parts.append(
            f"{elsewhere} of these {len(rows)} names are the same objects as names documented "
            "elsewhere (a top-level ``optim.<name>``, or an earlier package): their rows link "
            "there.\n"
        )
    parts.append(_table(_reading_order(rows)))
    parts.extend(_entry(row) for row in _reading_order(own))
    return "\n".join(parts)


INDEX = """\
API reference
=============

Generated from the docstrings of every public name: ``optim``'s ``__all__``, each public
subpackage's ``__all__`` and ``models``. Every name appears in its package's table; each object is
documented once, under ``optim.<name>`` where it is exported at the top level (as optax documents
``optax.adam``), with the rows of other packages linking to that entry.

.. toctree::
   :caption: optim, by part
   :maxdepth: 1

{groups}

.. toctree::
   :caption: Packages
   :maxdepth: 1

{packages}
"""


def pages() -> dict[str, str]:
    """Every page of the reference: file name (under ``docs/api``) to reStructuredText."""
    collected = collect()
    top = [row for row in collected["optim"] if not inspect.ismodule(row.obj)]
    grouped: dict[str, list[Name]] = {group.slug: [] for group in GROUPS}
    for row in top:
        grouped[_group_of(row).slug].append(row)
    groups = [group for group in GROUPS if grouped[group.slug]]
    result = {f"{group.slug}.rst": _group_page(group, grouped[group.slug]) for group in groups}
    for package, rows in collected.items():
        result[f"{package}.rst"] = _package_page(package, rows, groups)
    result["index.rst"] = INDEX.format(
        groups="\n".join(f"   {group.slug}" for group in groups),
        packages="\n".join(f"   {package}" for package in collected),
    )
    return result


def write_pages(directory: pathlib.Path) -> list[pathlib.Path]:
    """Write the reference into ``directory``, touching only the pages whose text changed."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    wanted = pages()
    for stale in directory.glob("*.rst"):
        if stale.name not in wanted:
            stale.unlink()
    for name, text in wanted.items():
        path = directory / name
        if not path.exists() or path.read_text() != text:
            path.write_text(text)
        written.append(path)
    return written


def aliases() -> dict[str, str]:
    """Every public full name that is not where its object is documented, to the name that is
    (``optim.precision.stochastic_rounding`` to ``optim.stochastic_rounding``), and every bare
    public name to its first package's entry (a docstring's :class:`CosineDecaySchedule`)."""
    found: dict[str, str] = {}
    bare: dict[str, str] = {}
    for rows in collect().values():
        for row in rows:
            if inspect.ismodule(row.obj):
                continue
            if row.full != row.canonical:
                found[row.full] = row.canonical
            bare.setdefault(row.name, row.canonical)
    return {**bare, **found}


def setup(app):
    public_aliases: dict[str, str] = {}

    def generate(app):
        write_pages(pathlib.Path(app.srcdir) / "api")
        public_aliases.update(aliases())

    def resolve_alias(app, env, node, contnode):
        """A reference to any public path of an object (a docstring's ``optim.precision.X``, a
        guide's ``optim.quantized.Y``) links to the entry that documents it."""
        canonical = public_aliases.get(node.get("reftarget", ""))
        if node.get("refdomain") != "py" or canonical is None:
            return None
        return env.get_domain("py").resolve_xref(
            env, node["refdoc"], app.builder, "obj", canonical, node, contnode
        )

    app.connect("builder-inited", generate)
    app.connect("missing-reference", resolve_alias)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
