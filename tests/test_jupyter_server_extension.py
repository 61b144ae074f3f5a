"""emonb's Jupyter server extension (TCP_NODELAY on kernel websockets), in a real jupyter_server."""

from __future__ import annotations

import asyncio
import json
import time
import urllib.request
import uuid
from pathlib import Path

import lab_browser
import pytest

pytest.importorskip("jupyter_server")

from emonb.jupyter_server_extension import (
    EXTENSION,
    _jupyter_server_extension_points,
    nodelay_connection_class,
)

ROOT = Path(__file__).resolve().parents[1]


def test_wraps_the_configured_connection_class_once():
    from jupyter_server.services.kernels.connection.channels import ZMQChannelsWebsocketConnection

    cls = nodelay_connection_class(ZMQChannelsWebsocketConnection)
    assert issubclass(cls, ZMQChannelsWebsocketConnection) and cls is not ZMQChannelsWebsocketConnection
    assert nodelay_connection_class(cls) is cls  # loading twice does not stack wrappers
    assert cls.__name__ == "NoDelayZMQChannelsWebsocketConnection"
    assert _jupyter_server_extension_points() == [{"module": EXTENSION}]


def test_config_file_enables_the_extension():
    cfg = json.loads((ROOT / "jupyter-config" / "jupyter_server_config.d" / "emonb.json").read_text())
    assert cfg["ServerApp"]["jpserver_extensions"] == {EXTENSION: True}


@pytest.mark.slow
def test_kernel_websocket_with_the_extension(tmp_path):
    """A real server with the extension loaded: the log says so and kernel messages go through."""
    from tornado.websocket import websocket_connect

    args = [f"--ServerApp.jpserver_extensions={{'{EXTENSION}': True}}", "--ServerApp.log_level=DEBUG"]
    with lab_browser.jupyter_server(tmp_path, "jupyter_server", args, log_name="server.log") as server:
        base, token, log = server["base"], server["token"], server["log"]
        port = base.rsplit(":", 1)[1]
        req = urllib.request.Request(f"{base}/api/kernels?token={token}", data=b"{}", method="POST")
        kernel = json.load(urllib.request.urlopen(req, timeout=30))["id"]

        async def kernel_info():
            ws = await websocket_connect(f"ws://127.0.0.1:{port}/api/kernels/{kernel}/channels"
                                         f"?token={token}&session_id=test")
            msg_id = uuid.uuid4().hex
            await ws.write_message(json.dumps({
                "header": {"msg_id": msg_id, "msg_type": "kernel_info_request", "username": "", "session": "test",
                           "date": "", "version": "5.3"},
                "parent_header": {}, "metadata": {}, "content": {}, "channel": "shell", "buffers": []}))
            deadline = time.time() + 60
            while time.time() < deadline:
                reply = json.loads(await asyncio.wait_for(ws.read_message(), timeout=60))
                if reply["parent_header"].get("msg_id") == msg_id and reply["msg_type"] == "kernel_info_reply":
                    ws.close()
                    return reply
            raise AssertionError("no kernel_info_reply")

        reply = asyncio.run(kernel_info())
        assert reply["content"]["status"] == "ok"
        text = log.read_text()
        assert "kernel websockets send without Nagle" in text, text[-2000:]
        assert f"TCP_NODELAY set on the websocket of kernel {kernel}" in text, text[-2000:]
