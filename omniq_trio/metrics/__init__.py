"""Prometheus metrics (the ``metrics`` extra: ``pip install 'omniq-trio[metrics]'``).

* :class:`WorkerMetrics`: a worker pool's own counters, as a hook of the pool
  (``omniq-trio worker --metrics-port PORT`` serves them);
* :class:`StoreMetrics`: gauges of the whole store, read through a client at
  each scrape (``omniq-trio metrics --port PORT``, and the dashboard's ``/metrics``);
* :func:`serve_metrics`: a small trio HTTP server for either;
  :func:`store_metrics_app`: the store's gauges as an ASGI app.

Every name is listed in the metrics reference (docs/reference/metrics.md).
"""

from omniq_trio._reexport import publish

from ._http import Render as Render
from ._http import metrics_asgi_app as metrics_asgi_app
from ._http import serve_metrics as serve_metrics
from ._serve import serve_store_metrics as serve_store_metrics
from ._serve import store_metrics_app as store_metrics_app
from ._store import StoreMetrics as StoreMetrics
from ._worker import WorkerMetrics as WorkerMetrics

__all__ = [
    "Render",
    "StoreMetrics",
    "WorkerMetrics",
    "metrics_asgi_app",
    "serve_metrics",
    "serve_store_metrics",
    "store_metrics_app",
]

publish(globals(), __all__)
