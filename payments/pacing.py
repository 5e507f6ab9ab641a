"""A token bucket in Redis that every settlement worker draws from before calling the payment
provider, so that the sum of all workers stays under the provider's rate limit (Stripe: 100
requests per second in live mode, 25 in test mode) however many workers run."""

from __future__ import annotations

import threading
import time

from django.conf import settings
from django.core.cache import caches
from django_redis import get_redis_connection

# Refill by elapsed time, then take up to the wanted tokens; answers [granted, wait_ms].
_TAKE = """
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local wanted = tonumber(ARGV[3])
local now = redis.call('TIME')
local now_ms = now[1] * 1000 + math.floor(now[2] / 1000)
local state = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = tonumber(state[1]) or burst
local at = tonumber(state[2]) or now_ms
tokens = math.min(burst, tokens + (now_ms - at) * rate / 1000)
local granted = math.min(wanted, math.floor(tokens))
tokens = tokens - granted
redis.call('HSET', KEYS[1], 'tokens', tokens, 'at', now_ms)
redis.call('PEXPIRE', KEYS[1], 60000)
if granted > 0 then return {granted, 0} end
return {0, math.ceil((1 - tokens) * 1000 / rate)}
"""


class ProviderPacer:
    """`take()` blocks until one provider call is allowed. Tokens are fetched from Redis a few
    at a time (at most a tenth of a second's worth), so pacing costs one round trip per
    several calls, not one per call."""

    def __init__(self, provider_name: str, rate_per_second: float | None = None) -> None:
        self.rate = float(rate_per_second or settings.SETTLEMENT_RATE_PER_SECOND[provider_name])
        self.burst = max(1, int(self.rate))  # at most a second's worth at once
        self.block = max(1, int(self.rate / 10))
        self.key = caches["default"].make_key(f"settlement:pace:{provider_name}")
        self._redis = get_redis_connection("default")
        self._script = self._redis.register_script(_TAKE)
        self._local = 0
        self._lock = threading.Lock()  # a provider's charging threads share one pacer

    def take(self) -> None:
        with self._lock:
            self._take()

    def _take(self) -> None:
        while self._local == 0:
            granted, wait_ms = self._script(
                keys=[self.key], args=[self.rate, self.burst, self.block]
            )
            if granted:
                self._local = int(granted)
            else:
                time.sleep(int(wait_ms) / 1000)
        self._local -= 1
