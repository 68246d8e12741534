// geckohost demo worker: primes. Send a number N (as text); the worker counts
// the primes up to N with a sieve of Eratosthenes, in the remote Gecko, and
// answers with a JSON summary. N is capped at 50,000,000.
"use strict";

const MAX = 50000000;

function sieve(n) {
  const composite = new Uint8Array(n + 1);
  let count = 0;
  let largest = 0;
  for (let i = 2; i <= n; i++) {
    if (composite[i]) continue;
    count++;
    largest = i;
    for (let j = i * i; j <= n; j += i) composite[j] = 1;
  }
  return { count, largest };
}

self.onmessage = (e) => {
  const text = typeof e.data === "string" ? e.data.trim() : "";
  const n = Number.parseInt(text.replace(/[_,\s]/g, ""), 10);
  if (!Number.isFinite(n) || n < 2) {
    self.postMessage(JSON.stringify({ error: "send a whole number N ≥ 2, e.g. 1000000" }));
    return;
  }
  const limit = Math.min(n, MAX);
  const t0 = performance.now();
  const { count, largest } = sieve(limit);
  const ms = performance.now() - t0;
  self.postMessage(JSON.stringify({
    n: limit,
    count,
    largest,
    ms: Math.round(ms * 100) / 100,
    engine: self.navigator ? self.navigator.userAgent : "",
  }));
};
