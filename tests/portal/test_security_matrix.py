"""Access control generated over every URL pattern of the project (walked from `get_resolver()`, not hand-picked)
× every kind of caller: anonymous, password-only (no second factor), physician and clerk of the hospital, a
physician of another hospital (404 on the hospital's objects), the hospital's administrator, a central admin, the
hospital's connector key and another hospital's key. A new URL without a declared policy fails here.

And: no page a central or hospital administrator can open shows a patient value; a clerk cannot confirm."""
from __future__ import annotations

import re
from dataclasses import dataclass

import pytest
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from tests.portal.conftest import PASSWORD

pytestmark = [pytest.mark.django_db, pytest.mark.security]

PUBLIC, SIGNED_IN, STAFF, PHYSICIAN, HOSPITAL_ADMIN, CENTRAL, CONNECTOR = (
    "public", "signed_in", "staff", "physician", "hospital_admin", "central", "connector")

#: Who may use a URL, by namespace; the exceptions by name. Every pattern must resolve to one of these.
NAMESPACE_POLICY = {"notifications": STAFF, "input": STAFF, "hospitaladmin": HOSPITAL_ADMIN, "central": CENTRAL,
                    "api": CONNECTOR}
NAME_POLICY = {
    "healthz": PUBLIC, "readyz": PUBLIC, "<root>": PUBLIC, "api:schema": PUBLIC,
    "accounts:login": PUBLIC, "accounts:enrol": PUBLIC, "accounts:home": PUBLIC, "accounts:logout": PUBLIC,
    "accounts:password_change": SIGNED_IN,
    # the sign-in's security-key step: only a session whose password was just verified gets anything from it
    "accounts:login_key": PUBLIC, "accounts:login_key_begin": PUBLIC, "accounts:login_key_complete": PUBLIC,
    # a person's own security keys: every human role, after two factors
    "accounts:keys": SIGNED_IN, "accounts:key_register_begin": SIGNED_IN, "accounts:key_register_complete": SIGNED_IN,
    # the review step of a confirmation: only a physician confirms (a clerk gets 403, another hospital 404)
    "notifications:review": PHYSICIAN,
}
#: Roles allowed for each human policy.
ALLOWED_ROLES = {SIGNED_IN: {"physician", "clerk", "hospital_admin", "central_admin"},
                 STAFF: {"physician", "clerk"}, PHYSICIAN: {"physician"}, HOSPITAL_ADMIN: {"hospital_admin"}, CENTRAL: {"central_admin"}}


@dataclass(frozen=True)
class Route:
    name: str
    route: str  # e.g. "notifications/<uuid:uuid>/"

    @property
    def policy(self) -> str | None:
        if self.name in NAME_POLICY:
            return NAME_POLICY[self.name]
        return NAMESPACE_POLICY.get(self.name.split(":", 1)[0]) if ":" in self.name else None

    @property
    def tenant_object(self) -> bool:
        """Bound to one hospital's notification (its uuid in the URL)."""
        return "<uuid:" in self.route


def _walk(patterns, prefix="", namespace=""):
    for p in patterns:
        if isinstance(p, URLResolver):
            ns = ":".join(x for x in (namespace, p.namespace or "") if x)
            yield from _walk(p.url_patterns, prefix + str(p.pattern), ns)
        elif isinstance(p, URLPattern):
            route = prefix + str(p.pattern)
            name = f"{namespace}:{p.name}" if namespace and p.name else (p.name or ("<root>" if not route else route))
            yield Route(name=name, route=route)


ROUTES = sorted(set(_walk(get_resolver().url_patterns)), key=lambda r: r.route)


def test_the_walk_sees_the_whole_project():
    names = {r.name for r in ROUTES}
    assert {"accounts:login", "notifications:form", "central:users", "hospitaladmin:staff", "api:extract-push",
            "healthz"} <= names
    assert len(ROUTES) >= 40


@pytest.mark.parametrize("route", ROUTES, ids=lambda r: r.name)
def test_every_url_has_a_declared_policy(route):
    assert route.policy is not None, f"{route.route} ({route.name}): declare who may use it in NAME_POLICY"


# --- The world: hospital A with a notification, hospital B, one account of each kind ------------------------------

@dataclass
class World:
    notification: object
    definition: object
    delivery: object
    hospital: object
    patient_name: str
    patient_birth: str
    clients: dict


@pytest.fixture
def world(settings, hospital, other_hospital, physician, clerk, hospital_admin, central_admin, make_user, published,
          push, login, django_capture_on_commit_callbacks):
    from assist_portal.delivery.models import Delivery
    from assist_portal.notifications import services
    from assist_portal.notifications.models import Extract

    settings.DEMO_MODE = True  # the demo pages are routes too
    definition = published("2021-03")
    assert push(Client(), "1100000002").status_code == 201
    notification = services.notification_open_from_extract(Extract.objects.get(), physician)
    values = dict(notification.values, **{"report.diagnosis_class": "confirmed_patient"})
    with django_capture_on_commit_callbacks(execute=False):
        services.notification_confirm(notification, physician, values, notification.lock_version)
    notification.refresh_from_db()
    Delivery.objects.update(status=Delivery.Status.DEAD)  # the redrive route needs a dead letter
    other_physician = make_user("dr_b", "physician", other_hospital)
    password_only = Client()
    assert password_only.login(username=physician.username, password=PASSWORD)
    clients = {
        "anonymous": Client(),
        "password_only": password_only,
        "physician": login(Client(), physician),
        "clerk": login(Client(), clerk),
        "other_physician": login(Client(), other_physician),
        "hospital_admin": login(Client(), hospital_admin),
        "central_admin": login(Client(), central_admin),
        "key": Client(HTTP_AUTHORIZATION="Api-Key key-h0001"),
        "other_key": Client(HTTP_AUTHORIZATION="Api-Key key-h0002"),
    }
    return World(notification=notification, definition=definition, delivery=Delivery.objects.get(), hospital=hospital,
                 patient_name=notification.values["patient.name"], patient_birth=notification.values["patient.birth_date"],
                 clients=clients)


def url_of(route: Route, world: World) -> str:
    """The route with real ids of hospital A's objects in it."""
    def value(match):
        converter, name = match.group(1), match.group(2)
        if converter == "uuid":
            return str(world.notification.uuid)
        if name == "item_id":
            return world.definition.definition["items"][0]["id"]
        if name == "token":
            return "not-a-real-launch-token"
        if "definitions/" in route.route:
            return str(world.definition.pk)
        if "hospitals/" in route.route:
            return str(world.hospital.pk)
        if "deliveries/" in route.route:
            return str(world.delivery.pk)
        raise AssertionError(f"no sample value for <{converter}:{name}> in {route.route}")

    return "/" + re.sub(r"<(?:(\w+):)?(\w+)>", value, route.route)


def _is_login_redirect(response) -> bool:
    return response.status_code == 302 and response["Location"].startswith(reverse("accounts:login"))


def expected(route: Route, caller: str) -> str:
    """'login' (sent to sign in), 'forbidden' (403), 'unauthenticated' (401), 'not_found' (404) or 'allowed'."""
    policy = route.policy
    if policy == PUBLIC:
        return "allowed"
    if policy == CONNECTOR:
        if caller == "key":
            return "allowed"
        if caller == "other_key":
            return "not_found" if route.tenant_object else "allowed"
        return "unauthenticated"  # a session, verified or not, never opens the connector API
    if caller in ("anonymous", "password_only", "key", "other_key"):
        return "login"
    role = "physician" if caller == "other_physician" else caller
    if role not in ALLOWED_ROLES[policy]:
        return "forbidden"
    if caller == "other_physician" and route.tenant_object:
        return "not_found"
    return "allowed"


CALLERS = ["anonymous", "password_only", "physician", "clerk", "other_physician", "hospital_admin", "central_admin",
           "key", "other_key"]


def check(route: Route, caller: str, method: str, response) -> None:
    want = expected(route, caller)
    where = f"{method} {route.route} as {caller}: {response.status_code}"
    if route.name == "readyz" and response.status_code == 503:
        return  # a readiness probe says 503 when no worker runs (none does here); it is public either way
    assert response.status_code < 500, where
    if route.policy == PUBLIC:
        return  # the sign-in pages, probes and the schema: anything but a server error
    if want == "login":
        assert _is_login_redirect(response), where + " (expected the sign-in page)"
    elif want == "forbidden":
        assert response.status_code == 403, where + " (expected 403)"
    elif want == "unauthenticated":
        assert response.status_code == 401, where + " (expected 401)"
    elif want == "not_found":  # (a route is refused for the wrong method first — a POST to a GET-only route, a GET
        # to a POST-only one: 405 is the same for every caller and hints at nothing)
        assert response.status_code in (404, 405), where + " (expected 404)"
    else:
        assert response.status_code not in (401, 403) and not _is_login_redirect(response), where + " (expected access)"


@pytest.mark.parametrize("caller", CALLERS)
def test_every_url_refuses_or_serves_each_caller_as_declared(world, caller):
    """GET of every route as `caller`; POST too for every route the caller may not use (and nothing happens)."""
    from assist_portal.audit.models import AuditEvent

    client = world.clients[caller]
    checked = 0
    for route in ROUTES:
        if route.name == "accounts:logout":
            continue  # would end the caller's session for the routes after it
        url = url_of(route, world)
        response = client.get(url)
        if hasattr(response, "streaming_content"):
            b"".join(response.streaming_content)
        check(route, caller, "GET", response)
        checked += 1
        if expected(route, caller) != "allowed":
            before = AuditEvent.objects.exclude(action__in=("launch.denied",)).count()
            check(route, caller, "POST", client.post(url, {"action": "confirm", "reset": "1", "unlock": "1"}))
            # Refused POSTs change nothing (only refusals may be audited).
            assert AuditEvent.objects.exclude(action__in=("launch.denied",)).count() == before, route.route
    assert checked == len(ROUTES) - 1


@pytest.mark.parametrize("caller", ["hospital_admin", "central_admin", "other_physician", "other_key"])
def test_no_page_shows_a_patient_value_to_anyone_outside_the_hospitals_staff(world, caller):
    """The central-admin (and hospital-admin) path to patient values fails: every URL pattern, real ids."""
    client = world.clients[caller]
    for route in ROUTES:
        if route.name == "accounts:logout":
            continue
        response = client.get(url_of(route, world))
        body = b"".join(response.streaming_content) if hasattr(response, "streaming_content") else response.content
        text = body.decode("utf-8", "replace")
        for secret in (world.patient_name, world.patient_birth):
            assert secret not in text, f"{route.route} shows a patient value to {caller}"
    # The staff of the hospital do see them (the check can fail).
    page = world.clients["physician"].get(reverse("notifications:form", args=[world.notification.uuid]))
    assert world.patient_name in page.content.decode()


def test_a_clerk_can_neither_confirm_nor_withdraw(world):
    from assist_portal.notifications.models import NotificationRevision

    n = world.notification
    before = NotificationRevision.objects.count()
    for action in ("confirm", "withdraw"):
        response = world.clients["clerk"].post(reverse("notifications:form", args=[n.uuid]),
                                               {"action": action, "lock_version": n.lock_version})
        assert response.status_code in (400, 403), action
    assert NotificationRevision.objects.count() == before
    page = world.clients["clerk"].get(reverse("notifications:form", args=[n.uuid])).content.decode()
    assert 'value="confirm"' not in page


def test_the_matrix_can_fail(world):
    """A route whose declared policy is wrong is caught (the checker is not vacuous)."""
    route = Route(name="central:users", route="central/users/")
    wrong = Route(name="hospitaladmin:pretend", route="central/users/")
    response = world.clients["central_admin"].get(url_of(route, world))
    check(route, "central_admin", "GET", response)
    with pytest.raises(AssertionError):
        check(wrong, "central_admin", "GET", response)
