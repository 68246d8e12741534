// geckohost demo worker: echo. Every message (text or binary) goes straight
// back to the client over the data channel.
self.onmessage = (e) => self.postMessage(e.data);
