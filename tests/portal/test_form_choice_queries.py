"""Issue 13: the form page lists a hospital's forms in a fixed number of queries (`forms_for_hospital`). The list
must pick exactly what `definition_for_hospital` picks for each form, default form first: the newest assignment,
a hospital's own before an all-hospital one of the same date."""
from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from assist_portal.formdefs.models import FormAssignment
from assist_portal.formdefs.selectors import definition_for_hospital, forms_for_hospital, hospital_forms
from tests.portal.test_second_form import covid_and_ehec  # noqa: F401 - fixture

pytestmark = [pytest.mark.django_db]


def agrees(hospital) -> list[str]:
    listed = forms_for_hospital(hospital)
    assert [d.pk for d in listed] == [definition_for_hospital(hospital, form=d.form).pk for d in listed]
    assert sorted(d.form for d in listed) == sorted(hospital_forms(hospital))
    return [d.form for d in listed]


def test_default_first_and_the_same_choice_as_one_form_at_a_time(covid_and_ehec, hospital, published):  # noqa: F811
    covid, ehec = covid_and_ehec
    assert agrees(hospital) == ["covid19", "ehec"]
    hospital.default_form = "ehec"
    hospital.save()
    assert agrees(hospital) == ["ehec", "covid19"]

    newer = published("covid19-2022-09")  # all hospitals, later: wins
    assert forms_for_hospital(hospital)[1].pk == newer.pk
    # Same date: the hospital's own assignment of the older version wins over the all-hospital newer one.
    at = timezone.now() + timedelta(seconds=1)
    FormAssignment.objects.create(definition=newer, hospital=None, effective_from=at)
    FormAssignment.objects.create(definition=covid, hospital=hospital, effective_from=at)
    assert forms_for_hospital(hospital, at=at + timedelta(seconds=1))[1].pk == covid.pk
    assert agrees(hospital) == ["ehec", "covid19"]


def test_two_queries_whatever_the_number_of_forms(covid_and_ehec, hospital):  # noqa: F811
    with CaptureQueriesContext(connection) as queries:
        forms_for_hospital(hospital)
    assert len(queries) == 2
