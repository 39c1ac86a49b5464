"""One job per app, and an acyclic app graph: no app imports (at module level or inside a function) an app that
imports it back. The graph is built from the source, so an import hidden in a function body counts."""
from __future__ import annotations

import textwrap
from pathlib import Path

from tests.architecture.app_graph import build_graph, cycles, describe

#: Who may import whom. A new arrow is a design decision: add it here with the reason in the ADR (docs/adr/0009).
ALLOWED = {
    # the project's own modules: urls on top, celery (with the broker patch and the worker heartbeat) below it,
    # crypto at the bottom (a field type the models use)
    "assist_portal.urls": {"health"},
    "assist_portal.celery": {"assist_portal.broker", "health"},
    "assist_portal.broker": set(),
    "assist_portal.crypto": set(),
    "assist_portal.inputs": set(),  # strict parsing of request input (ids, dates, no NUL)
    "assist_portal.sqlcache": set(),  # querysets compiled to SQL once per process (hot queries, issue 13)
    "audit": {"assist_portal.sqlcache"},  # compiled INSERT of audit rows (issue 13, ADR 0020)
    "accounts": {"assist_portal.inputs", "assist_portal.sqlcache", "audit", "mapping"},
    "formdefs": {"assist_portal.sqlcache", "audit", "formengine", "vocabulary"},
    # broker: a task published in one LPUSH; sqlcache: compiled writes of the outbox rows (issue 13, ADR 0020)
    "delivery": {"assist_portal.broker", "assist_portal.crypto", "assist_portal.sqlcache", "audit", "hersys_client"},
    "health": {"delivery"},  # /healthz, /readyz, worker heartbeats: reads the outbox's age, nothing else
    # assist_portal.inputs: strict parsing of the physician id a draft is handed to (the worklist hand-off)
    "notifications": {"assist_portal.crypto", "assist_portal.inputs", "assist_portal.sqlcache", "accounts", "audit", "formdefs", "delivery",
                      "formengine", "vocabulary", "jpinput", "mapping", "hersys_client"},
    "api": {"assist_portal.inputs", "accounts", "audit", "notifications", "vocabulary", "mapping"},
    # hospitaladmin → notifications: the hospital's own effort report (notifications.effort: counts, no values)
    "hospitaladmin": {"accounts", "audit", "notifications"},
    "central": {"assist_portal.inputs", "accounts", "audit", "formdefs", "notifications", "delivery", "formengine", "vocabulary", "mapping",
                "hersys_client"},
    "vocabulary": set(),
    "jpinput": set(),
    "formengine": {"vocabulary", "jpinput"},
    "mapping": {"vocabulary"},
    "hersys_client": {"vocabulary"},
    "connector": {"mapping", "vocabulary"},
}


#: Arrows still being removed by work in flight (must be empty when the layout work is done).
PENDING: set[tuple[str, str]] = set()


def test_no_cycle_between_apps():
    edges = [e for e in build_graph() if (e.source, e.target) not in PENDING]
    found = cycles(edges)
    assert not found, "Import cycles between apps:\n" + "\n".join(" ⇄ ".join(c) for c in found) + "\n\n" + \
        describe([e for e in edges if any(e.source in c and e.target in c for c in found)])


def test_every_arrow_is_an_allowed_one():
    unexpected = [e for e in build_graph() if e.source in ALLOWED and e.target not in ALLOWED[e.source]
                  and (e.source, e.target) not in PENDING]
    assert not unexpected, "Imports the layout does not allow:\n" + describe(unexpected)


def test_the_detector_sees_imports_inside_functions(tmp_path: Path):
    """The checker itself can fail: a cycle hidden in a function body is found."""
    def write(rel: str, text: str = "") -> None:
        path = tmp_path / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))

    write("assist_portal/__init__.py")
    for app in ("one", "two"):
        write(f"assist_portal/{app}/__init__.py")
        write(f"assist_portal/{app}/apps.py")
    write("assist_portal/one/services.py", "from assist_portal.two.models import Thing\n")
    write("assist_portal/two/models.py", "def f():\n    from ..one import services\n    return services\n")
    assert cycles(build_graph(tmp_path)) == [["one", "two"]]


def test_every_audit_action_named_in_the_code_is_a_typed_one():
    """audit_record("…") with a literal that AuditAction lacks would raise only when that path runs: catch it here."""
    import ast

    from assist_portal.audit.events import AuditAction
    from tests.architecture.app_graph import ROOT

    known = {a.value for a in AuditAction}
    unknown = []
    for path in (ROOT / "assist_portal").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text("utf-8"))):
            if (isinstance(node, ast.Call) and getattr(node.func, "id", getattr(node.func, "attr", "")) == "audit_record"
                    and node.args):
                first = node.args[0]
                if isinstance(first, ast.JoinedStr):
                    unknown.append(f"{path.relative_to(ROOT)}:{node.lineno}: f-string action")
                elif isinstance(first, ast.Constant) and first.value not in known:
                    unknown.append(f"{path.relative_to(ROOT)}:{node.lineno}: {first.value}")
    assert not unknown, unknown
