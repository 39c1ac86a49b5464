"""Reads of form definitions. Which published definition is in effect — for a hospital, or for every hospital —
is computed here and nowhere else (`_assignments_in_effect`)."""
from __future__ import annotations

from django.db.models import F, Q, Subquery
from django.utils import timezone

import vocabulary
from assist_portal.sqlcache import CompiledQuery, model_first

from .catalogs import builtin_catalogs
from .models import FormAssignment, FormDefinition


def _assignments_in_effect(hospital, at):
    """Assignments of published definitions in effect at `at`: the hospital's own and the all-hospital ones
    (`hospital` — a Hospital or its id — None: the all-hospital ones only)."""
    qs = FormAssignment.objects.filter(effective_from__lte=at or timezone.now(),
                                       definition__status=FormDefinition.Status.PUBLISHED)
    if hospital is None:
        return qs.filter(hospital__isnull=True)
    return qs.filter(Q(hospital=hospital) | Q(hospital__isnull=True))


def definition_in_effect(*, form: str, hospital=None, at=None) -> FormDefinition | None:
    """The published definition of `form` in effect at `at`: the newest assignment of that form, a hospital's own
    assignment winning over an all-hospital one of the same date. Another form's assignments never count."""
    chosen = (
        _assignments_in_effect(hospital, at).filter(definition__form=form)
        .order_by("-effective_from", F("hospital_id").asc(nulls_last=True), "-id")
        .select_related("definition")
        .first()
    )
    return chosen.definition if chosen else None


def definition_id_in_effect(*, form: str, hospital=None, at=None) -> int | None:
    """The id of `definition_in_effect` (same choice), without loading the definition: the form page asks on
    every GET whether a draft's definition is still current (issue 13)."""
    return (
        _assignments_in_effect(hospital, at).filter(definition__form=form)
        .order_by("-effective_from", F("hospital_id").asc(nulls_last=True), "-id")
        .values_list("definition_id", flat=True)
        .first()
    )


def definition_id_in_effect_subquery(*, form, hospital, at=None) -> Subquery:
    """`definition_id_in_effect` as a subquery for another query's row (`form`, `hospital`: OuterRef or values),
    e.g. the form page's notification query checks in the same statement whether its draft's definition is still
    the current one (issue 13)."""
    chosen = (FormAssignment.objects.filter(effective_from__lte=at or timezone.now(),
                                            definition__status=FormDefinition.Status.PUBLISHED,
                                            definition__form=form)
              .filter(Q(hospital=hospital) | Q(hospital__isnull=True))
              .order_by("-effective_from", F("hospital_id").asc(nulls_last=True), "-id")
              .values("definition_id")[:1])
    return Subquery(chosen)


def hospital_forms(hospital, at=None) -> list[str]:
    """The forms a hospital can use at `at`, in the order they were first assigned to it."""
    seen: list[str] = []
    for form in (_assignments_in_effect(hospital, at).order_by("effective_from", "id")
                 .values_list("definition__form", flat=True)):
        if form not in seen:
            seen.append(form)
    return seen


def hospital_default_form(hospital, at=None) -> str | None:
    """The form a notification opens with unless the user picks another: the hospital's chosen default when it
    can use it, else the form of its earliest assignment in effect."""
    forms = hospital_forms(hospital, at)
    if hospital.default_form and hospital.default_form in forms:
        return hospital.default_form
    return forms[0] if forms else None


def definition_for_hospital(hospital, form: str | None = None, at=None) -> FormDefinition | None:
    """The published definition a hospital uses at `at` for `form` (None: its default form)."""
    form = form or hospital_default_form(hospital, at)
    if not form:
        return None
    return definition_in_effect(form=form, hospital=hospital, at=at)


_ASSIGNMENT_COLUMNS = ("definition__form", "effective_from", "hospital_id", "id", "definition_id")
# On every launch and form page (issue 13): compiled once per process (ADR 0018).
_ASSIGNMENTS = CompiledQuery(lambda hospital_id, at: (
    _assignments_in_effect(hospital_id, at).order_by("effective_from", "id").values_list(*_ASSIGNMENT_COLUMNS)))


def forms_for_hospital(hospital, at=None) -> list[FormDefinition]:
    """The definition in effect for each form the hospital can use, its default form first.

    Two queries whatever the number of forms (it is on every form page): the assignments in effect (ids only),
    then the chosen definitions. Same choice as `hospital_forms`, `hospital_default_form` and
    `definition_in_effect`."""
    if hospital is None:
        rows = list(_assignments_in_effect(None, at).order_by("effective_from", "id").values_list(*_ASSIGNMENT_COLUMNS))
    else:
        rows = _ASSIGNMENTS.rows(hospital.pk, at or timezone.now())
    forms = list(dict.fromkeys(r[0] for r in rows))  # first assigned first (hospital_forms)
    if not forms:
        return []
    default = hospital.default_form if hospital.default_form in forms else forms[0]
    ordered = [default, *[f for f in forms if f != default]]
    chosen: dict[str, int] = {}
    for form in ordered:  # newest date; the hospital's own before an all-hospital one; then the newest row
        mine = [r for r in rows if r[0] == form]
        best = min(mine, key=lambda r: (-r[1].timestamp(), r[2] is None, r[2] or 0, -r[3]))
        chosen[form] = best[4]
    if len(chosen) == 1:  # most hospitals: one form
        (only,) = chosen.values()
        definition = model_first(FormDefinition, "pk", only)
        definitions = {only: definition} if definition is not None else {}
    else:
        definitions = FormDefinition.objects.in_bulk(list(chosen.values()))
    return [definitions[chosen[f]] for f in ordered if chosen[f] in definitions]


def forms_known() -> list[str]:
    """Every form key the system knows: those of definitions (oldest first), then those only shipped."""
    forms: list[str] = []
    for form in FormDefinition.objects.order_by("created_at", "id").values_list("form", flat=True):
        if form not in forms:
            forms.append(form)
    for entry in builtin_catalogs():
        if entry.form not in forms:
            forms.append(entry.form)
    return forms


def form_labels() -> dict[str, str]:
    """form key → what people call it (the disease of its newest definition or shipped catalog)."""
    labels = {entry.form: f"{entry.disease} 発生届" if entry.disease else entry.title for entry in builtin_catalogs()}
    for row in FormDefinition.objects.order_by("created_at", "id").only("form", "definition", "title"):
        labels[row.form] = row.heading
    return labels


def definitions_current_for_all() -> list[FormDefinition]:
    """Per form, the definition in effect for every hospital (forms without an all-hospital assignment omitted)."""
    out = []
    for form in forms_known():
        definition = definition_in_effect(form=form)
        if definition is not None:
            out.append(definition)
    return out


def definition_diff_base(definition: FormDefinition) -> FormDefinition | None:
    """What a definition is compared with in the admin UI: the definition it was copied from, else the one of
    the same form in effect for every hospital, else the newest published one of the same form."""
    if definition.based_on_id:
        return definition.based_on
    base = definition_in_effect(form=definition.form)
    if base is None:
        base = (FormDefinition.objects.filter(form=definition.form, status=FormDefinition.Status.PUBLISHED)
                .exclude(pk=definition.pk).order_by("-published_at", "-id").first())
    return base if base is not None and base.pk != definition.pk else None


def item_set_version(definition: FormDefinition) -> str:
    """The item-set version the definition speaks (what the destination checks), e.g. 2022-09."""
    return str(definition.definition.get("version") or definition.version)


def definition_emr_items(definition: FormDefinition) -> frozenset[str] | None:
    """Item ids (and repeat-group ids) an EMR extract may fill in this definition: the definition's own
    ``emr_items`` when it carries them, else those of the shipped catalog of its form and version. None: no
    catalog says (a legacy catalog) — then any item of the definition may be filled."""
    declared = definition.definition.get("emr_items") if isinstance(definition.definition, dict) else None
    if not isinstance(declared, list):
        # Only the one field: copying the whole catalog cost a few ms per launch.
        shipped = vocabulary.emr_items(definition.form, item_set_version(definition))
        return frozenset(shipped) if shipped is not None else None
    if not isinstance(declared, list):
        return None
    return frozenset(str(i) for i in declared)
