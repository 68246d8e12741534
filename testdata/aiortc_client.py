#!/usr/bin/python3
"""An interop client for geckohost: aiortc (Debian's python3-aiortc), no
code of geckohost's. It speaks the protocol's frames exactly as
client-endpoint.txt has them, over a minimal WebSocket client of its own
(the standard library only), and connects to the server's echo worker.

usage: aiortc_client.py PAGE TOKEN RUNS [SOURCE]
Prints one JSON list, a result per run:
  {"echo", "workerId", "errno", "name", "reason", "timings": {"answer",
   "connected", "channelOpen"} (ms since the hello), "ms", "path",
   "workerCandidates": [...] (trickled), "endOfCandidates": {...} | null,
   "answerCandidates": [...] (a=candidate lines of the answer), "answerMid"}
"""

import asyncio
import base64
import json
import os
import struct
import sys
import time
import urllib.parse

from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.sdp import candidate_from_sdp

MESSAGE = "hello over the network"


class WebSocket:
    """A client WebSocket (RFC 6455): text frames, masked, no extensions."""

    def __init__(self, reader, writer):
        self.reader, self.writer = reader, writer

    @classmethod
    async def connect(cls, url):
        u = urllib.parse.urlsplit(url)
        reader, writer = await asyncio.open_connection(u.hostname, u.port or 80)
        key = base64.b64encode(os.urandom(16)).decode()
        writer.write(
            (
                f"GET {u.path or '/'} HTTP/1.1\r\nHost: {u.netloc}\r\nUpgrade: websocket\r\n"
                f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
            ).encode()
        )
        head = await reader.readuntil(b"\r\n\r\n")
        if not head.startswith(b"HTTP/1.1 101"):
            raise RuntimeError("handshake: " + head.decode(errors="replace").splitlines()[0])
        return cls(reader, writer)

    def send(self, obj):
        data = json.dumps(obj).encode()
        n = len(data)
        if n < 126:
            head = struct.pack("!BB", 0x81, 0x80 | n)
        elif n < 65536:
            head = struct.pack("!BBH", 0x81, 0x80 | 126, n)
        else:
            head = struct.pack("!BBQ", 0x81, 0x80 | 127, n)
        mask = os.urandom(4)
        self.writer.write(head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(data)))

    async def recv(self):
        """The next text frame's JSON object; None once the server closed."""
        while True:
            b0, b1 = await self.reader.readexactly(2)
            n = b1 & 0x7F
            if n == 126:
                (n,) = struct.unpack("!H", await self.reader.readexactly(2))
            elif n == 127:
                (n,) = struct.unpack("!Q", await self.reader.readexactly(8))
            payload = await self.reader.readexactly(n)
            op = b0 & 0x0F
            if op == 0x8:
                return None
            if op == 0x1:
                return json.loads(payload)

    def close(self):
        self.writer.close()


def selected_path(pc):
    try:
        conn = pc.sctp.transport.transport._connection  # aioice Connection
        pair = next(iter(conn._nominated.values()))
        lc, rc = pair.local_candidate, pair.remote_candidate
        return {"local": lc.type, "remote": rc.type, "protocol": lc.transport.lower(), "relayProtocol": "",
                "localAddress": lc.host, "remoteAddress": rc.host}
    except Exception:  # no pair: the path stays unknown
        return None


async def run_once(page, token, source):
    res = {"echo": "", "workerId": "", "errno": 0, "name": "", "reason": "", "path": None,
           "timings": {"answer": 0, "connected": 0, "channelOpen": 0}, "ms": 0,
           "workerCandidates": [], "endOfCandidates": None, "answerCandidates": [], "answerMid": None}
    t0 = time.monotonic()
    ms = lambda: (time.monotonic() - hello_at) * 1000  # noqa: E731
    # No ICE servers: aiortc would otherwise ask a public STUN server.
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    ws = None
    try:
        dc = pc.createDataChannel("geckohost")
        opened, echoed = asyncio.Event(), asyncio.get_running_loop().create_future()
        dc.on("open", lambda: opened.set())
        dc.on("message", lambda m: echoed.done() or echoed.set_result(m))
        await pc.setLocalDescription(await pc.createOffer())  # gathers: candidates in the offer
        ws = await WebSocket.connect(page.replace("http", "ws", 1))
        hello_at = time.monotonic()
        ws.send({"messageType": "hello", "action": "client-hello", "authorization": "Bearer " + token,
                 "source": source, "webrtcOffer": pc.localDescription.sdp})
        while True:
            f = await ws.recv()
            if f is None:
                raise RuntimeError("the server closed before connected")
            if f.get("messageType") == "worker-error":
                res.update(errno=f["errno"], reason=f["reason"], workerId=f.get("workerId") or "")
                return res
            if f.get("messageType") == "hello" and f.get("action") == "worker-hello":
                res["workerId"] = f["workerId"]
                res["timings"]["answer"] = ms()
                answer = f["webrtcAnswer"].splitlines()
                res["answerCandidates"] = [l[2:] for l in answer if l.startswith("a=candidate:")]
                res["answerMid"] = next((l[6:] for l in answer if l.startswith("a=mid:")), None)
                await pc.setRemoteDescription(RTCSessionDescription(f["webrtcAnswer"], "answer"))
            elif f.get("messageType") == "ice" and f.get("action") == "worker-candidate":
                c = f["candidate"]
                if c["candidate"] == "":
                    res["endOfCandidates"] = c  # aiortc takes no empty candidate
                    continue
                res["workerCandidates"].append(c)
                cand = candidate_from_sdp(c["candidate"].split(":", 1)[1])
                cand.sdpMid, cand.sdpMLineIndex = c.get("sdpMid"), c.get("sdpMLineIndex")
                await pc.addIceCandidate(cand)
            elif f.get("messageType") == "connected":
                res["timings"]["connected"] = ms()
                break
        await asyncio.wait_for(opened.wait(), 20)
        res["timings"]["channelOpen"] = ms()
        res["path"] = selected_path(pc)
        dc.send(MESSAGE)
        res["echo"] = await asyncio.wait_for(echoed, 10)
        return res
    finally:
        res["ms"] = (time.monotonic() - t0) * 1000
        if ws is not None:
            ws.close()
        await pc.close()


async def main():
    page, token, runs = sys.argv[1], sys.argv[2], int(sys.argv[3])
    source = sys.argv[4] if len(sys.argv) > 4 else page.rstrip("/") + "/workers/echo.js"
    out = []
    for _ in range(runs):
        try:
            out.append(await asyncio.wait_for(run_once(page, token, source), 40))
        except Exception as e:  # reported, not raised: the test says what failed
            out.append({"echo": "", "errno": -1, "reason": "client: %s: %s" % (type(e).__name__, e)})
    print(json.dumps(out))


asyncio.run(main())
