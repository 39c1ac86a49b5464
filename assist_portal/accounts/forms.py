from django import forms


class LoginForm(forms.Form):
    username = forms.CharField(label="ユーザー名", max_length=150,
                               widget=forms.TextInput(attrs={"autocomplete": "username", "autofocus": True}))
    password = forms.CharField(label="パスワード", widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}))
    otp_token = forms.CharField(label="ワンタイムパスワード（6桁）", max_length=12,
                                widget=forms.TextInput(attrs={"autocomplete": "one-time-code", "inputmode": "numeric",
                                                              "pattern": "[0-9０-９ ]*"}))
