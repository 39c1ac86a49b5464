"""Named constants for the item ids, group ids, form keys and value codes that code relies on.

Code outside this package never types an item id as a string literal (tests/architecture enforces it): it
imports the constant from here, so a renamed or removed item is one edit and a failing test
(``tests/architecture/test_vocabulary_ids.py`` checks that every constant exists in at least one catalog).
Only what code needs is named; everything else about an item lives in the catalogs.
"""
from __future__ import annotations

# --- forms -----------------------------------------------------------------------------------------------------
FORM_COVID19 = "covid19"

# --- groups (repeat groups; their rows are lists of {row key: value}) ------------------------------------------
TESTS = "tests"

# --- items -----------------------------------------------------------------------------------------------------
REPORT_DIAGNOSIS_CLASS = "report.diagnosis_class"
REPORT_NOTIFICATION_TARGET = "report.notification_target"
REPORT_REPORT_DATE = "report.report_date"
REPORT_PHYSICIAN_NAME = "report.physician_name"
REPORT_FACILITY_NAME = "report.facility_name"
REPORT_FACILITY_ADDRESS = "report.facility_address"
REPORT_FACILITY_PHONE = "report.facility_phone"

PATIENT_NAME = "patient.name"
PATIENT_NAME_KANA = "patient.name_kana"
PATIENT_SEX = "patient.sex"
PATIENT_BIRTH_DATE = "patient.birth_date"
PATIENT_AGE = "patient.age"
PATIENT_POSTAL_CODE = "patient.postal_code"
PATIENT_ADDRESS = "patient.address"
PATIENT_PHONE = "patient.phone"
PATIENT_RESIDENCE_ADDRESS = "patient.residence_address"
PATIENT_GUARDIAN_NAME = "patient.guardian_name"
PATIENT_GUARDIAN_ADDRESS = "patient.guardian_address"

CLINICAL_FIRST_VISIT_DATE = "clinical.first_visit_date"
CLINICAL_DIAGNOSIS_DATE = "clinical.diagnosis_date"
CLINICAL_DEATH_DATE = "clinical.death_date"

TESTS_METHOD = "tests.method"
TESTS_SPECIMEN = "tests.specimen"
TESTS_COLLECTION_DATE = "tests.collection_date"
TESTS_RESULT = "tests.result"
TESTS_RESULT_DATE = "tests.result_date"

RISK_FACTORS = "risk.factors"

CARE_HOSPITALIZED = "care.hospitalized"
CARE_ADMISSION_DATE = "care.admission_date"
CARE_DISCHARGE_DATE = "care.discharge_date"


def row_key(item_id: str) -> str:
    """The key of a repeat-group item inside a row: ``tests.method`` → ``method``."""
    return item_id.split(".", 1)[1]


#: The keys of a row of the tests group, in catalog order.
TEST_ROW_KEYS = tuple(row_key(i) for i in (TESTS_METHOD, TESTS_SPECIMEN, TESTS_COLLECTION_DATE, TESTS_RESULT,
                                            TESTS_RESULT_DATE))

# --- value codes ---------------------------------------------------------------------------------------------
CLASS_CONFIRMED_PATIENT = "confirmed_patient"
CLASS_SUSPECTED_PATIENT = "suspected_patient"

SEX_MALE = "male"
SEX_FEMALE = "female"

YES = "yes"
NO = "no"

METHOD_PCR = "pcr"
SPECIMEN_NASOPHARYNGEAL_SWAB = "nasopharyngeal_swab"

RESULT_POSITIVE = "positive"
RESULT_NEGATIVE = "negative"
RESULT_PENDING = "pending"

#: Which item each value-code constant belongs to (checked against the catalogs' value sets).
VALUE_CODES: dict[str, tuple[str, ...]] = {
    REPORT_DIAGNOSIS_CLASS: (CLASS_CONFIRMED_PATIENT, CLASS_SUSPECTED_PATIENT),
    PATIENT_SEX: (SEX_MALE, SEX_FEMALE),
    CARE_HOSPITALIZED: (YES, NO),
    TESTS_METHOD: (METHOD_PCR,),
    TESTS_SPECIMEN: (SPECIMEN_NASOPHARYNGEAL_SWAB,),
    TESTS_RESULT: (RESULT_POSITIVE, RESULT_NEGATIVE, RESULT_PENDING),
}
