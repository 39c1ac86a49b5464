from django import forms
from django.contrib.auth.forms import PasswordChangeForm

OTP_WIDGET_ATTRS = {"autocomplete": "one-time-code", "inputmode": "numeric", "pattern": "[0-9０-９ ]*"}


class LoginForm(forms.Form):
    username = forms.CharField(label="ユーザー名", max_length=150,
                               widget=forms.TextInput(attrs={"autocomplete": "username", "autofocus": True}))
    password = forms.CharField(label="パスワード", widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}))
    # Optional so that a first sign-in (no authenticator registered yet) can reach the enrolment step; an account
    # with a registered authenticator is refused without its code (accounts.services.login_verify).
    otp_token = forms.CharField(label="ワンタイムパスワード（6桁）", max_length=12, required=False,
                                help_text="初回ログイン（認証アプリ未登録）のとき、またはセキュリティキーを使うときは空欄のままにしてください。",
                                widget=forms.TextInput(attrs=OTP_WIDGET_ATTRS))


class EnrolForm(forms.Form):
    otp_token = forms.CharField(label="認証アプリに表示された6桁", max_length=12,
                                error_messages={"required": "認証アプリに表示された6桁を入力してください。"},
                                widget=forms.TextInput(attrs={**OTP_WIDGET_ATTRS, "autofocus": True}))


class PortalPasswordChangeForm(PasswordChangeForm):
    """Django's password change (current password, AUTH_PASSWORD_VALIDATORS) with Japanese labels and messages,
    and the new password must differ from the current one (the one-time password an administrator saw)."""

    error_messages = {
        "password_incorrect": "現在のパスワードが正しくありません。",
        "password_mismatch": "新しいパスワードが確認用と一致しません。",
        "password_unchanged": "現在と異なるパスワードを設定してください。",
    }

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["old_password"].label = "現在のパスワード"
        self.fields["new_password1"].label = "新しいパスワード"
        self.fields["new_password2"].label = "新しいパスワード（確認）"
        for name in ("old_password", "new_password1", "new_password2"):
            self.fields[name].error_messages["required"] = "入力してください。"

    def clean(self):
        cleaned = super().clean()
        new = cleaned.get("new_password1")
        if new and self.user.check_password(new):
            self.add_error("new_password2", forms.ValidationError(self.error_messages["password_unchanged"],
                                                                  code="password_unchanged"))
        return cleaned
