"""A remote-controlled WebSocket peer for the interop tests, on Python's `websockets` (10.4, asyncio API).

The Node test drives it through stdin and reads what it saw on stdout, one JSON object per line:

commands (stdin)                                   events (stdout)
  {"op": "send", "text": "..."}                      {"event": "ready", "port": N}        (server, listening)
  {"op": "send", "hex": "00ff"}                      {"event": "open", "subprotocol": ...}
  {"op": "send_large", "size": N}                    {"event": "message", "type": "text"|"binary",
  {"op": "send_fragments", "parts": [...],             "length": N, "sha256": "...", "text"/"hex": ...}
      "binary": false}                               {"event": "pong", "hex": "..."}
  {"op": "ping", "hex": "..."}                       {"event": "closed", "code": N, "reason": "..."}
  {"op": "close", "code": N, "reason": "..."}        {"event": "error", "message": "..."}

Large payloads are a fixed pattern (byte i is i mod 251) so both sides can check them by hash.
"""
import asyncio
import hashlib
import json
import sys

import websockets


def emit(**event):
    sys.stdout.write(json.dumps(event) + "\n")
    sys.stdout.flush()


def pattern(size):
    return bytes(i % 251 for i in range(size))


def describe(message):
    if isinstance(message, str):
        data = message.encode("utf-8")
        event = {"type": "text", "text": message if len(message) <= 256 else None}
    else:
        data = bytes(message)
        event = {"type": "binary", "hex": data.hex() if len(data) <= 256 else None}
    event.update(length=len(data), sha256=hashlib.sha256(data).hexdigest())
    return event


async def read_commands(ws):
    loop = asyncio.get_running_loop()
    while True:
        line = await loop.run_in_executor(None, sys.stdin.readline)
        if not line:
            return
        command = json.loads(line)
        op = command["op"]
        try:
            if op == "send":
                await ws.send(command["text"] if "text" in command else bytes.fromhex(command["hex"]))
            elif op == "send_large":
                await ws.send(pattern(command["size"]))
            elif op == "send_fragments":
                parts = command["parts"]
                # An iterable is sent as one fragmented message, one frame per element.
                await ws.send([bytes.fromhex(p) for p in parts] if command.get("binary") else parts)
            elif op == "ping":
                waiter = await ws.ping(bytes.fromhex(command["hex"]))
                data = command["hex"]

                async def report(waiter=waiter, data=data):
                    await waiter
                    emit(event="pong", hex=data)

                asyncio.ensure_future(report())
            elif op == "close":
                await ws.close(command["code"], command.get("reason", ""))
        except websockets.ConnectionClosed:
            pass
        except Exception as error:  # reported, never fatal: the test decides
            emit(event="error", message=repr(error))


async def run_connection(ws, echo):
    emit(event="open", subprotocol=ws.subprotocol)
    commands = asyncio.ensure_future(read_commands(ws))
    try:
        async for message in ws:
            emit(event="message", **describe(message))
            if echo:
                await ws.send(message)
    except websockets.ConnectionClosed:
        pass
    await ws.wait_closed()
    emit(event="closed", code=ws.close_code, reason=ws.close_reason)
    commands.cancel()


async def serve(port, max_size):
    async def handler(ws, path=None):
        await run_connection(ws, echo=True)

    async with websockets.serve(
        handler, "127.0.0.1", port, ping_interval=None, max_size=max_size, compression=None,
        subprotocols=["chat.v2", "chat.v1"],
    ) as server:
        emit(event="ready", port=server.sockets[0].getsockname()[1])
        await asyncio.Future()


async def connect(url, subprotocols):
    async with websockets.connect(
        url, ping_interval=None, max_size=None, compression=None, subprotocols=subprotocols or None,
    ) as ws:
        await run_connection(ws, echo=False)


def main():
    role = sys.argv[1]  # "server" or "client" (echo_server.py and client.py put it there)
    if role == "server":
        port = int(sys.argv[2])
        max_size = int(sys.argv[3]) if len(sys.argv) > 3 else None
        asyncio.run(serve(port, max_size or None))
    else:
        url = sys.argv[2]
        subprotocols = sys.argv[3].split(",") if len(sys.argv) > 3 and sys.argv[3] else []
        asyncio.run(connect(url, subprotocols))


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        pass
