"""Every audit action, typed: an action that is not listed here cannot be recorded (no f-string names).

The values are what the log and its CSV export hold; they never change meaning once written."""
from __future__ import annotations

from enum import StrEnum


class AuditAction(StrEnum):
    # sign-in and accounts
    LOGIN_SUCCESS = "login.success"
    LOGIN_FAILURE = "login.failure"
    LOGIN_LOCKED = "login.locked"
    LOGIN_REFUSED_LOCKED = "login.refused_locked"
    LOGOUT = "logout"
    OTP_RECHECK = "otp.recheck"  # the second factor proven again (e.g. for the final click of a confirmation)
    OTP_RECHECK_FAILURE = "otp.recheck_failure"
    USER_CREATE = "user.create"
    USER_ENROL = "user.enrol"
    USER_PASSWORD_CHANGE = "user.password_change"
    USER_RESET = "user.reset"
    USER_UNLOCK = "user.unlock"
    USER_NOTICE = "user.notice"  # the holder was e-mailed (second factor enrolled, key added/removed, or reset)
    USER_KEY_ADD = "user.key_add"  # a security key / passkey registered by its holder (accounts.keys)
    USER_KEY_REMOVE = "user.key_remove"
    USER_KEY_REFUSED = "user.key_refused"  # a key registration the server refused
    USER_DENIED = "user.denied"  # an administrator tried to manage an account outside its remit
    HOSPITAL_MAPPING_EDIT = "hospital.mapping_edit"
    HOSPITAL_DEFAULT_FORM = "hospital.default_form"
    HOSPITAL_CREATE = "hospital.create"
    HOSPITAL_EDIT = "hospital.edit"
    HOSPITAL_DEACTIVATE = "hospital.deactivate"
    HOSPITAL_REACTIVATE = "hospital.reactivate"
    HOSPITAL_ASSIGN = "hospital.assign"  # a published definition assigned to one hospital
    HOSPITAL_RAW_PUSH = "hospital.raw_push"  # raw EMR extracts accepted from the connector: switched on/off
    CONNECTOR_KEY_CREATE = "connector_key.create"
    CONNECTOR_KEY_ROTATE = "connector_key.rotate"
    CONNECTOR_KEY_REVOKE = "connector_key.revoke"
    # form definitions
    FORMDEF_CREATE = "formdef.create"
    FORMDEF_EDIT = "formdef.edit"
    FORMDEF_RENAME = "formdef.rename"
    FORMDEF_PUBLISH = "formdef.publish"
    # extracts, launches, notifications
    EXTRACT_RECEIVE = "extract.receive"
    EXTRACT_REFUSED = "extract.refused"  # a raw extract from a hospital that has not switched raw pushes on
    LAUNCH_CONSUME = "launch.consume"
    LAUNCH_DENIED = "launch.denied"
    LAUNCH_CASE_CHOICE = "launch.case_choice"  # Q&A 7: a person chose the same case or a new one at an EMR launch
    NOTIFICATION_LIST = "notification.list"
    NOTIFICATION_VIEW = "notification.view"
    NOTIFICATION_STATUS = "notification.status"
    NOTIFICATION_REVIEW = "notification.review"  # the review step of a confirmation was shown
    NOTIFICATION_PRINT = "notification.print"
    NOTIFICATION_SAVE = "notification.save"
    NOTIFICATION_CONFIRM = "notification.confirm"
    NOTIFICATION_WITHDRAW = "notification.withdraw"
    NOTIFICATION_MIGRATE = "notification.migrate"
    NOTIFICATION_PURGE = "notification.purge"
    EMR_CHANGE_DETECT = "emr_change.detect"  # a newer extract differs from the notification: changes offered
    EMR_CHANGE_DECIDE = "emr_change.decide"  # a person accepted or dismissed offered EMR changes
    NOTIFICATION_HANDOFF = "notification.handoff"  # a draft handed to 医師確認待ち (optionally a named physician)
    NOTIFICATION_RETURN = "notification.return"  # a physician returned a handed-off draft with a note
    NOTIFICATION_START_MANUAL = "notification.start_manual"  # opened by hand, without an EMR extract
    NOTIFICATION_FAX_RECORD = "notification.fax_record"  # the paper form was faxed; electronic delivery held
    NOTIFICATION_FAX_DECIDE = "notification.fax_decide"  # after a FAX: send electronically as well, or FAX only
    NOTIFICATION_ALERT = "notification.alert"  # people were told a delivery needs them (e-mail; no patient data)
    NOTIFICATION_AUTOSAVE = "notification.autosave"  # unsaved typing kept (once per stretch, not per keystroke)
    SESSION_IDLE_END = "session.idle_end"  # a session ended after SESSION_IDLE_SECONDS without activity
    # delivery (one per attempt outcome) and operations
    DELIVERY_ACCEPTED = "delivery.accepted"
    DELIVERY_RETRYABLE = "delivery.retryable"
    DELIVERY_PERMANENT = "delivery.permanent"
    DELIVERY_STARTED = "delivery.started"
    DELIVERY_REDRIVE = "delivery.redrive"
    DELIVERY_RESUME = "delivery.resume"  # a central admin resumed a stuck delivery now
    DELIVERY_RECONCILED = "delivery.reconciled"  # HER-SYS, asked, already held the revision: accepted, no send
    NOTIFICATION_RECONCILE = "notification.reconcile"  # manage.py reconcile brought a notification in line
    # connector API and exports
    API_FEED = "api.feed"
    API_DOCUMENT = "api.document"
    API_PDF = "api.pdf"
    AUDIT_EXPORT = "audit.export"


class UnknownAuditAction(ValueError):
    pass


def audit_action(action: str) -> AuditAction:
    try:
        return AuditAction(action)
    except ValueError:
        raise UnknownAuditAction(f"unknown audit action {action!r}: add it to assist_portal.audit.events")
