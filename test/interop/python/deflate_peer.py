"""A permessage-deflate peer on Python's `websockets` (10.4) for test/e2e/deflate.test.ts.

  deflate_peer.py server PORT CONFIG_JSON     listens on 127.0.0.1:PORT (0: any free port)
  deflate_peer.py client URL CONFIG_JSON      connects to URL

CONFIG_JSON is {"server_no_context_takeover": bool, "client_no_context_takeover": bool,
"server_max_window_bits": int|null, "client_max_window_bits": int|true|null} or null for no
compression. It never echoes: the Node side sends commands on stdin (as in peer.py: send,
send_large, send_fragments, ping, close) and reads what this peer saw on stdout, one JSON object a
line; the "open" event carries the negotiated Sec-WebSocket-Extensions value.
"""
import asyncio
import json
import sys

import websockets
from websockets.extensions.permessage_deflate import (
    ClientPerMessageDeflateFactory,
    ServerPerMessageDeflateFactory,
)

from peer import emit, read_commands, describe


def factories(role, config):
    if config is None:
        return []
    options = {key: value for key, value in config.items() if value is not None}
    if role == "server":
        return [ServerPerMessageDeflateFactory(**options)]
    return [ClientPerMessageDeflateFactory(**options)]


async def run_connection(ws, extensions):
    emit(event="open", subprotocol=ws.subprotocol, extensions=extensions)
    commands = asyncio.ensure_future(read_commands(ws))
    try:
        async for message in ws:
            emit(event="message", **describe(message))
    except websockets.ConnectionClosed:
        pass
    await ws.wait_closed()
    emit(event="closed", code=ws.close_code, reason=ws.close_reason)
    commands.cancel()


async def serve(port, config):
    async def handler(ws, path=None):
        await run_connection(ws, ws.response_headers.get("Sec-WebSocket-Extensions"))

    async with websockets.serve(
        handler, "127.0.0.1", port, ping_interval=None, max_size=None, compression=None,
        extensions=factories("server", config),
    ) as server:
        emit(event="ready", port=server.sockets[0].getsockname()[1])
        await asyncio.Future()


async def connect(url, config):
    async with websockets.connect(
        url, ping_interval=None, max_size=None, compression=None,
        extensions=factories("client", config),
    ) as ws:
        await run_connection(ws, ws.response_headers.get("Sec-WebSocket-Extensions"))


def main():
    role, where, config = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
    if role == "server":
        asyncio.run(serve(int(where), config))
    else:
        asyncio.run(connect(where, config))


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        pass
