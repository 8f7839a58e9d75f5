"""Signing secrets in Standard Webhooks' `whsec_<base64>` form."""

import base64
import secrets


def new_whsec() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()
