"""The web dashboard: ``omniq-trio dashboard``, or ``serve_dashboard`` in a trio nursery.

Needs the ``dashboard`` extra (``pip install 'omniq-trio[dashboard]'``). An
ASGI app (Starlette) served by Hypercorn's trio worker, over the public
client only; behind a token, bound to 127.0.0.1 unless told otherwise.
"""

from omniq_trio._reexport import publish

from ._access import Access as Access
from ._app import create_app as create_app
from ._serve import serve_dashboard as serve_dashboard

__all__ = ["Access", "create_app", "serve_dashboard"]

publish(globals(), __all__)
