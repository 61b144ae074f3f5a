"""Jupyter server extension: send kernel websocket messages without Nagle's delay.

jupyter_server leaves Nagle's algorithm on for the kernel websockets. A kernel answers a widget
message with several small frames in a row (status busy, the reply, status idle); with Nagle on, the
second one waits for the browser to acknowledge the first, and browsers delay that acknowledgement
by up to 40 ms. Every widget round trip (a scrubber frame, an annotator click) then costs about 45 ms
instead of a few. Measured here through jupyter_server 2.x on localhost: a kernel_info round trip
over the websocket 43.9 ms with Nagle, 3.1 ms without (``benchmarks/scrubber_latency.py`` measures
it in the browser).

emonb's wheel enables the extension in ``etc/jupyter/jupyter_server_config.d/emonb.json``; it
must be installed in the environment the Jupyter *server* runs from (on JupyterHub, the server's
image). ``jupyter server extension disable emonb.jupyter_server_extension`` turns it off. It changes
nothing but the socket option: the connection class configured on the server (the default one or
a custom one) is kept and only wrapped.
"""

from __future__ import annotations

EXTENSION = "emonb.jupyter_server_extension"


def _jupyter_server_extension_points():
    return [{"module": EXTENSION}]


def nodelay_connection_class(base: type) -> type:
    """A subclass of the websocket connection class ``base`` that turns Nagle off when it connects."""
    if getattr(base, "_emonb_nodelay", False):
        return base

    class NoDelayConnection(base):
        _emonb_nodelay = True

        async def connect(self):
            handler = getattr(self, "websocket_handler", None)
            if handler is not None and getattr(handler, "ws_connection", None) is not None:
                try:
                    handler.set_nodelay(True)
                    self.log.debug("emonb: TCP_NODELAY set on the websocket of kernel %s", self.kernel_id)
                except Exception as e:  # noqa: BLE001  (a socket without the option: leave it as it is)
                    self.log.debug("emonb: TCP_NODELAY not set on the kernel websocket: %s", e)
            return await super().connect()

    NoDelayConnection.__name__ = NoDelayConnection.__qualname__ = f"NoDelay{base.__name__}"
    NoDelayConnection.__module__ = __name__
    return NoDelayConnection


def _load_jupyter_server_extension(serverapp):
    settings = serverapp.web_app.settings
    base = settings.get("kernel_websocket_connection_class")
    if base is None or not hasattr(base, "connect"):
        serverapp.log.info("emonb: no kernel websocket connection class to adjust; left as it is")
        return
    settings["kernel_websocket_connection_class"] = nodelay_connection_class(base)
    serverapp.log.info("emonb: kernel websockets send without Nagle's delay (TCP_NODELAY)")
