"""localstripe (a fake Stripe server from PyPI) for the Stripe provider's tests: one process per
test session, emptied before each test, plus what a browser or Stripe itself would do (create a
payment method, pass 3-D Secure, sign a webhook)."""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from datetime import date
from pathlib import Path
from typing import Any

import stripe

SECRET_KEY = "sk_test_12345"
WEBHOOK_SECRET = "whsec_test"
EXP_YEAR = date.today().year + 3


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def signature_header(
    payload: bytes, secret: str = WEBHOOK_SECRET, timestamp: int | None = None
) -> str:
    """Stripe's signing scheme, written out here so the tests do not check the library
    against itself: t=<ts>,v1=<hex hmac_sha256(secret, "<ts>.<payload>")>."""
    timestamp = int(time.time()) if timestamp is None else timestamp
    signed = f"{timestamp}.".encode() + payload
    digest = hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def event_payload(event_type: str, obj: dict[str, Any]) -> bytes:
    """An event localstripe never sends (setup_intent.*, charge.refunded, a late failure)."""
    return json.dumps(
        {
            "id": f"evt_{secrets.token_hex(8)}",
            "object": "event",
            "type": event_type,
            "created": int(time.time()),
            "livemode": False,
            "data": {"object": obj},
        }
    ).encode()


class LocalStripe:
    """A running `localstripe --from-scratch` on a free port. It keeps its data in
    /tmp/localstripe.pickle, rewritten on every change, so tests keep it small."""

    def __init__(self, process: subprocess.Popen, base: str, log_dir: Path) -> None:
        self.process, self.base, self._log_dir = process, base, log_dir

    @classmethod
    def start(cls, timeout: float = 20.0) -> LocalStripe:
        port = _free_port()
        log_dir = Path(tempfile.mkdtemp(prefix="localstripe-"))
        # A file, not a pipe: nobody reads the access log, and a full pipe would block it.
        with (log_dir / "server.log").open("wb") as log:
            process = subprocess.Popen(
                [
                    str(Path(sys.executable).parent / "localstripe"),
                    "--from-scratch",
                    "--port",
                    str(port),
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        server = cls(process, f"http://127.0.0.1:{port}", log_dir)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if process.poll() is not None:
                break
            try:
                server.call("GET", "/v1/customers")
                return server
            except (urllib.error.URLError, ConnectionError):
                time.sleep(0.1)
        output = (log_dir / "server.log").read_text(errors="replace")
        server.stop()
        raise RuntimeError(f"localstripe did not start:\n{output}")

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        shutil.rmtree(self._log_dir, ignore_errors=True)

    def call(self, method: str, path: str, params: dict[str, str] | None = None) -> Any:
        """A raw request (localstripe's own endpoints); flat form parameters only."""
        body = urllib.parse.urlencode(params).encode() if params else None
        request = urllib.request.Request(
            self.base + path,
            data=body,
            method=method,
            headers={"Authorization": f"Bearer {SECRET_KEY}"},
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            text = response.read()
        return json.loads(text) if text.strip().startswith(b"{") else None

    def flush(self) -> None:
        self.call("DELETE", "/_config/data")

    def client(self) -> stripe.StripeClient:
        return stripe.StripeClient(api_key=SECRET_KEY, base_addresses={"api": self.base})

    def payment_method(self, number: str) -> str:
        """What Stripe.js does in the browser: raw card number in, pm_... out (localstripe
        accepts raw numbers; real Stripe only from Stripe.js)."""
        method = self.client().v1.payment_methods.create(
            params={
                "type": "card",
                "card": {"number": number, "exp_month": 12, "exp_year": EXP_YEAR, "cvc": "123"},
            }
        )
        return method.id

    def authenticate(self, intent_id: str, client_secret: str, *, success: bool) -> dict:
        """The shopper passing (or failing) 3-D Secure in the browser."""
        return self.call(
            "POST",
            f"/v1/payment_intents/{intent_id}/_authenticate",
            {"client_secret": client_secret, "success": str(success).lower()},
        )

    def events(self, event_type: str) -> list[dict]:
        return self.call("GET", "/v1/events?" + urllib.parse.urlencode({"type": event_type}))[
            "data"
        ]
