#!/usr/bin/python3
"""aiortc against itself: the floor of the aiortc stack for the data
channel handshake (createOffer to open), for geckohost's measurements.
Needs a non-loopback interface (aioice gathers no loopback candidates).

usage: aiortc_floor.py RUNS   prints a JSON list of ms values."""

import asyncio
import json
import sys
import time

from aiortc import RTCConfiguration, RTCPeerConnection


async def once():
    a = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    b = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    try:
        t0 = time.monotonic()
        dc = a.createDataChannel("floor")
        opened = asyncio.Event()
        dc.on("open", lambda: opened.set())
        await a.setLocalDescription(await a.createOffer())
        await b.setRemoteDescription(a.localDescription)
        await b.setLocalDescription(await b.createAnswer())
        await a.setRemoteDescription(b.localDescription)
        await asyncio.wait_for(opened.wait(), 20)
        return (time.monotonic() - t0) * 1000
    finally:
        await a.close()
        await b.close()


async def main():
    out = [await once() for _ in range(int(sys.argv[1]))]
    print(json.dumps(out))


asyncio.run(main())
