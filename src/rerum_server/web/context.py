"""What every handler receives: the worker's services and settings."""

from __future__ import annotations

from dataclasses import dataclass

from rerum_server import errors
from rerum_server.auth.oidc_client import OidcClient
from rerum_server.auth.verify import TokenVerifier
from rerum_server.cache.client import CacheClient
from rerum_server.reads import Reads
from rerum_server.settings import Settings
from rerum_server.web.http import Request
from rerum_server.writes import Writes

READ_ONLY_MESSAGE = (
    "RERUM v1 is read only at this time.  We apologize for the inconvenience.  Try again later."
)


@dataclass(frozen=True)
class Services:
    settings: Settings
    reads: Reads
    writes: Writes
    verifier: TokenVerifier
    cache: CacheClient | None = None
    oidc: OidcClient | None = None  # the /client/* helpers' client of the issuer

    async def agent(self, request: Request) -> str:
        """The authenticated agent of a write request (READONLY gate first, as the reference does)."""
        if self.settings.read_only:
            raise errors.ServiceUnavailable(READ_ONLY_MESSAGE)
        request.agent = await self.verifier.agent_for(request.header("authorization"))
        return request.agent
