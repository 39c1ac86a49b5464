"""Format-independent assembly: the parsers collect facts (with provenance); this module picks the episode's
values (first visit, admission, physician, tests, risk factors) and builds the result object of the contract."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from vocabulary import ids

MAX_TESTS = 4
EPISODE_LOOKBACK_DAYS = 14   # a first visit / admission belongs to the COVID-19 episode if not earlier than this
VISIT_CHAIN_GAP_DAYS = 7


@dataclass
class Event:
    date: str
    prov: str
    physician: str | None = None
    physician_prov: str | None = None
    admit_date: str | None = None   # for discharges: the admission they close (PV1-44), if given
    from_discharge: bool = False    # an admission known only from a discharge message's PV1-44


@dataclass
class Diagnosis:
    date: str | None
    prov: str
    suspected: bool = False


@dataclass
class Condition:
    factor: str
    code: str
    prov: str
    resolved: bool = False


@dataclass
class Test:
    method: str | None
    specimen: str | None
    collection_date: str | None
    result: str | None
    result_date: str | None
    prov: dict[str, str] = field(default_factory=dict)
    key: str = ""      # identity of the order/observation (newest wins for the same key)
    stamp: str = ""    # sortable recency (file timestamp / issued)
    cancelled: bool = False   # a cancel of the record `key` (a key ending in "|*" covers every key it prefixes)
    preliminary: bool = False


@dataclass
class Facts:
    items: dict[str, Any] = field(default_factory=dict)
    provenance: dict[str, str] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    suggestions: dict[str, dict[str, Any]] = field(default_factory=dict)
    visits: list[Event] = field(default_factory=list)
    admissions: list[Event] = field(default_factory=list)
    discharges: list[Event] = field(default_factory=list)
    physicians: list[Event] = field(default_factory=list)   # other sources (ordering provider ...)
    diagnoses: list[Diagnosis] = field(default_factory=list)
    conditions: list[Condition] = field(default_factory=list)
    tests: list[Test] = field(default_factory=list)
    admission_cancelled: bool = False

    def warn(self, msg: str | None) -> None:
        if msg and msg not in self.warnings:
            self.warnings.append(msg)

    def put(self, item: str, value_warning: tuple[Any, str | None], prov: str) -> bool:
        """Set an item from a normaliser's (value, warning). Returns True if set."""
        value, warning = value_warning
        self.warn(f"{item}: {warning}" if warning else None)
        if value in (None, "", []):
            return False
        self.items[item] = value
        self.provenance[item] = prov
        return True


def _d(s: str) -> date:
    return date.fromisoformat(s)


def _episode(f: Facts) -> tuple[date | None, date | None]:
    """Start and end of the COVID-19 episode: confirmed diagnosis dates and SARS-CoV-2 specimen dates."""
    ds = [_d(x.date) for x in f.diagnoses if x.date and not x.suspected]
    ds += [_d(t.collection_date) for t in f.tests if t.collection_date]
    ds += [_d(t.result_date) for t in f.tests if t.result_date and not t.collection_date]
    if not ds:
        return None, None
    return min(ds), max(ds)


def _pick_first_visit(f: Facts, start: date | None, end: date | None) -> Event | None:
    visits = sorted(f.visits, key=lambda e: e.date)
    if not visits:
        return None
    if start is None or end is None:
        if len({v.date for v in visits}) == 1:
            f.warn(f"{ids.CLINICAL_FIRST_VISIT_DATE}: 診断・検査の記録がないため、唯一の外来受付日を初診日としました。確認してください")
            return visits[0]
        f.warn(f"{ids.CLINICAL_FIRST_VISIT_DATE}: 外来受付が複数あり、今回の受診を特定できないため転記しませんでした")
        return None
    cands = [v for v in visits if start - timedelta(days=EPISODE_LOOKBACK_DAYS) <= _d(v.date) <= end]
    if not cands:
        f.warn(f"{ids.CLINICAL_FIRST_VISIT_DATE}: 今回の発症時期の外来受付記録がないため転記しませんでした")
        return None
    # the contiguous chain of visits that leads up to the diagnosis
    chain = [cands[-1]]
    for v in reversed(cands[:-1]):
        if (_d(chain[-1].date) - _d(v.date)).days <= VISIT_CHAIN_GAP_DAYS:
            chain.append(v)
        else:
            break
    return chain[-1]


def _pick_admission(f: Facts, start: date | None) -> Event | None:
    adms = sorted(f.admissions, key=lambda e: e.date)
    if not adms:
        return None
    if f.admission_cancelled:
        f.warn(f"{ids.CARE_HOSPITALIZED}: 入院取消の記録があるため入院情報を転記しませんでした")
        return None
    if start is None:
        if len({a.date for a in adms}) == 1:
            f.warn(f"{ids.CARE_ADMISSION_DATE}: 診断・検査の記録がないため、唯一の入院記録を転記しました。確認してください")
            return adms[0]
        f.warn(f"{ids.CARE_HOSPITALIZED}: 入院記録が複数あり、今回の入院を特定できないため転記しませんでした")
        return None
    cands = [a for a in adms if _d(a.date) >= start - timedelta(days=EPISODE_LOOKBACK_DAYS)]
    if not cands:
        f.warn(f"{ids.CARE_HOSPITALIZED}: 今回の診断より前の入院記録のみのため転記しませんでした")
        return None
    return cands[0]


def _finish_tests(f: Facts) -> list[Test]:
    by_key: dict[str, Test] = {}
    cancels = [t for t in f.tests if t.cancelled]

    def cancelled(t: Test) -> bool:
        return any((c.key == t.key or (c.key.endswith("|*") and t.key.startswith(c.key[:-1]))) and t.stamp <= c.stamp
                   for c in cancels)
    for t in f.tests:
        if t.cancelled or (cancels and t.key and cancelled(t)):
            continue
        k = t.key or f"{t.method}|{t.specimen}|{t.collection_date}|{t.result}|{t.result_date}"
        if k not in by_key or t.stamp >= by_key[k].stamp:
            by_key[k] = t
    # a preliminary result is superseded by a final one of the same test (method, specimen, collection date)
    finals = {(t.method, t.specimen, t.collection_date) for t in by_key.values() if not t.preliminary}
    kept_tests = [t for t in by_key.values() if not (t.preliminary and (t.method, t.specimen, t.collection_date)
                                                     in finals)]
    tests: list[Test] = []
    seen: set[tuple[Any, ...]] = set()
    for t in sorted(kept_tests, key=lambda t: (t.collection_date or t.result_date or "9999", t.stamp)):
        tup = (t.method, t.specimen, t.collection_date, t.result, t.result_date)
        if tup in seen:
            continue
        seen.add(tup)
        tests.append(t)
    if len(tests) > MAX_TESTS:
        # keep the positive results (the basis of the notification), then the earliest others
        keep = [t for t in tests if t.result == ids.RESULT_POSITIVE][-MAX_TESTS:]
        for t in tests:
            if len(keep) >= MAX_TESTS:
                break
            if t not in keep:
                keep.append(t)
        f.warn(f"{ids.TESTS}: 検査が{len(tests)}件あり、届出できる4件（陽性を優先）のみ転記しました")
        tests = sorted(keep, key=lambda t: (t.collection_date or t.result_date or "9999", t.stamp))
    return tests


def _age(birth: date, on: date) -> int:
    return on.year - birth.year - ((on.month, on.day) < (birth.month, birth.day))


def _guardian_only_for_minors(f: Facts, ref: date | None) -> None:
    """保護者 is asked for minors only: a parent listed as an adult patient's contact is not filled in (the age of
    majority is 20, 18 from 2022-04-01). Without a birth date or an episode date it cannot be told: kept."""
    birth = f.items.get(ids.PATIENT_BIRTH_DATE)
    if not birth or ref is None or ids.PATIENT_GUARDIAN_NAME not in f.items:
        return
    adult_age = 18 if ref >= date(2022, 4, 1) else 20
    if _age(_d(birth), ref) < adult_age:
        return
    f.suggestions[ids.PATIENT_GUARDIAN_NAME] = {
        "value": f.items.pop(ids.PATIENT_GUARDIAN_NAME),
        "reason": "成人の患者のため保護者欄には転記していません（連絡先の続柄が親・保護者）"}
    f.provenance.pop(ids.PATIENT_GUARDIAN_NAME, None)
    if ids.PATIENT_GUARDIAN_ADDRESS in f.items:
        f.items.pop(ids.PATIENT_GUARDIAN_ADDRESS)
        f.provenance.pop(ids.PATIENT_GUARDIAN_ADDRESS, None)


def finalize(f: Facts) -> dict[str, Any]:
    items, prov = f.items, f.provenance
    # diagnosis date: confirmed U07.1 problems; several different dates → latest, with a warning
    confirmed = sorted((d for d in f.diagnoses if d.date and not d.suspected), key=lambda d: d.date)
    if confirmed:
        if len({d.date for d in confirmed}) > 1:
            f.warn(f"{ids.CLINICAL_DIAGNOSIS_DATE}: COVID-19の病名が複数の日付で登録されています。最新の日付を転記しました")
        items[ids.CLINICAL_DIAGNOSIS_DATE], prov[ids.CLINICAL_DIAGNOSIS_DATE] = confirmed[-1].date, confirmed[-1].prov
    elif any(d.suspected for d in f.diagnoses):
        f.warn(f"{ids.CLINICAL_DIAGNOSIS_DATE}: COVID-19は疑い病名のみのため診断日を転記しませんでした")

    start, end = _episode(f)
    diag = items.get(ids.CLINICAL_DIAGNOSIS_DATE)
    if diag:
        end = max(end, _d(diag)) if end else _d(diag)
        start = min(start, _d(diag)) if start else _d(diag)

    visit = _pick_first_visit(f, start, end)
    if visit:
        items[ids.CLINICAL_FIRST_VISIT_DATE], prov[ids.CLINICAL_FIRST_VISIT_DATE] = visit.date, visit.prov

    adm = _pick_admission(f, start)
    if adm:
        items[ids.CARE_HOSPITALIZED], prov[ids.CARE_HOSPITALIZED] = ids.YES, adm.prov
        items[ids.CARE_ADMISSION_DATE], prov[ids.CARE_ADMISSION_DATE] = adm.date, adm.prov
        dis = sorted((d for d in f.discharges if d.date >= adm.date and (not d.admit_date or d.admit_date == adm.date)),
                     key=lambda e: e.date)
        if dis:
            items[ids.CARE_DISCHARGE_DATE], prov[ids.CARE_DISCHARGE_DATE] = dis[0].date, dis[0].prov
    elif not f.admissions and not f.admission_cancelled and (f.visits or f.tests):
        f.suggestions[ids.CARE_HOSPITALIZED] = {"value": ids.NO, "reason": "抽出データに入院の記録がありません（入院の有無は確認してください）"}

    # physician: the outpatient physician closest before/at the diagnosis (else the admitting one, else an
    # ordering provider), falling back to the first visit's
    cands = [e for e in sorted(f.visits, key=lambda e: e.date) if e.physician]
    if not cands:
        cands = [e for e in sorted(f.admissions, key=lambda e: e.date) if e.physician]
    if not cands:
        cands = [e for e in sorted(f.physicians, key=lambda e: e.date) if e.physician]
    if cands:
        pick = None
        if diag:
            before = [e for e in cands if e.date <= diag]
            pick = before[-1] if before else None
        if pick is None and visit and visit.physician:
            pick = visit
        if pick is None:
            pick = cands[0]
        items[ids.REPORT_PHYSICIAN_NAME] = pick.physician
        prov[ids.REPORT_PHYSICIAN_NAME] = pick.physician_prov or pick.prov

    _guardian_only_for_minors(f, start or (_d(diag) if diag else None))

    # risk factors
    active = sorted({c.factor for c in f.conditions if not c.resolved})
    if active:
        items[ids.RISK_FACTORS] = active
        prov[ids.RISK_FACTORS] = "; ".join(sorted({c.prov for c in f.conditions if not c.resolved}))
    resolved = sorted({c.factor for c in f.conditions if c.resolved} - set(active))
    if resolved:
        f.suggestions[ids.RISK_FACTORS] = {"value": resolved,
                                         "reason": "治癒・終了済みの病名に基づくため事実としては転記していません"}

    tests = _finish_tests(f)
    if tests:
        items[ids.TESTS] = [{k: getattr(t, k) for k in ids.TEST_ROW_KEYS if getattr(t, k) is not None} for t in tests]
        for i, t in enumerate(tests):
            for k, p in t.prov.items():
                prov[f"{ids.TESTS}[{i}].{k}"] = p
            for k in ids.TEST_ROW_KEYS:
                if getattr(t, k) is None:
                    f.warn(f"{ids.TESTS}[{i}].{k}: 抽出データから判断できないため空欄です")

    # suggestion: diagnosis class (a medical judgement: never a fact)
    positive = [t for t in tests if t.result == ids.RESULT_POSITIVE]
    if confirmed and positive:
        f.suggestions[ids.REPORT_DIAGNOSIS_CLASS] = {
            "value": ids.CLASS_CONFIRMED_PATIENT,
            "reason": "COVID-19の確定病名（U07.1）と陽性の検査結果があります（症状の有無・死亡の有無は医師が確認してください）"}
    elif any(d.suspected for d in f.diagnoses) and not positive:
        f.suggestions[ids.REPORT_DIAGNOSIS_CLASS] = {"value": ids.CLASS_SUSPECTED_PATIENT,
                                                   "reason": "COVID-19の疑い病名のみで陽性の検査結果がありません"}

    items = {k: v for k, v in items.items() if v not in (None, "", [])}
    return {"items": items, "provenance": {k: v for k, v in prov.items() if k in items or k.startswith(f"{ids.TESTS}[")},
            "warnings": f.warnings, "suggestions": f.suggestions}


def empty_result(warning: str) -> dict[str, Any]:
    return {"items": {}, "provenance": {}, "warnings": [warning], "suggestions": {}}
