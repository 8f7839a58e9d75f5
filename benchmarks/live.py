"""Live updates through a real `zerg serve`: WebSocket fan-out, server CPU per streamed chat
token, and the time to first token that Zerg adds.

1. Fan-out: `--clients` WebSocket clients follow `agents`; each `PATCH /api/agents/{id}` (a
   new name) must reach every one of them as `agent_updated`. Prints p50/p99 of the delay
   from just before the PATCH is sent to each client's receipt, over clients x repeats, and
   the server's RSS and CPU with the clients connected. One process holds every client and
   takes its own time to read 1,000 frames, so the delay is given twice: until the frame's
   bytes reach the client's connection, and until the client's code has read it.
2. CPU per streamed token: chat turns of an `openai:` agent whose model, a fake
   OpenAI-compatible server in this process, streams `--tokens` tokens (one SSE chunk each,
   `--token-interval-ms` apart); the server's CPU over the turns divided by their tokens,
   with nobody following the tokens, with a WebSocket client on the thread's topic, and with
   an SSE client on the run's events; and the same answer as task runs (not streamed).
3. Time to first token added by Zerg: the model sends its first token `--first-token-ms`
   after it got the request; from just before `POST /api/threads/{id}/messages` to the first
   `assistant_token` on the WebSocket, minus that wait (one clock: the model runs here).

    .venv/bin/python benchmarks/live.py [--clients 1000] [--repeats 20] [--turns 20]
        [--tokens 500] [--token-interval-ms 1] [--ttft-turns 50] [--first-token-ms 50]

Scaled down, e.g. `--clients 100 --repeats 5 --turns 5 --ttft-turns 10`; 0 clients, turns or
ttft-turns skips that part.
"""

import argparse
import asyncio
import json
import os
import resource
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from task_runs import free_port, percentile, server_cpu, start_server
from websockets.asyncio.client import ClientConnection, connect

FINAL_STATUSES = frozenset({"succeeded", "failed", "cancelled", "timed_out"})
CONNECT_BATCH = 100


# -- the fake model ---------------------------------------------------------------------------


@dataclass
class ModelCall:
    """One `POST /v1/chat/completions`, in `time.perf_counter()` seconds."""

    received: float
    first_token: float | None = None


@dataclass
class FakeModel:
    """A minimal OpenAI-compatible chat completions endpoint on raw asyncio streams, with
    every chunk encoded in advance, so that it costs far less than the server it feeds.
    Answers `tokens` tokens: streamed one chunk each (the first `first_token_s` after the
    request, then one every `interval_s`, usage in the last chunk), or as one completion."""

    tokens: int = 500
    first_token_s: float = 0.0
    interval_s: float = 0.001
    calls: list[ModelCall] = field(default_factory=list)
    _encoded: dict[int, list[bytes]] = field(default_factory=dict)

    async def start(self) -> str:
        """Listen on a free loopback port; returns the OpenAI base URL."""
        server = await asyncio.start_server(self._connection, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}/v1"

    def words(self) -> list[str]:
        return [f" w{index}" for index in range(self.tokens)]

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:  # keep-alive: the model client reuses its connections
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.decode("latin-1").split("\r\n")[1:]:
                    name, _, value = line.partition(":")
                    if name.strip().lower() == "content-length":
                        length = int(value)
                body = json.loads(await reader.readexactly(length)) if length else {}
                call = ModelCall(time.perf_counter())
                self.calls.append(call)
                if not head.startswith(b"POST /v1/chat/completions "):
                    writer.write(b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n")
                elif body.get("stream"):
                    await self._stream(writer, call)
                else:
                    writer.write(self._completion(body))
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    async def _stream(self, writer: asyncio.StreamWriter, call: ModelCall) -> None:
        chunks = self._chunks()
        writer.write(
            b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n"
            b"transfer-encoding: chunked\r\n\r\n" + chunks[0]
        )
        await writer.drain()
        if self.first_token_s:
            await asyncio.sleep(self.first_token_s)
        for index, chunk in enumerate(chunks[1 : self.tokens + 1]):
            if index and self.interval_s:
                await asyncio.sleep(self.interval_s)
            writer.write(chunk)
            if index == 0:
                call.first_token = time.perf_counter()
            await writer.drain()
        writer.write(b"".join(chunks[self.tokens + 1 :]))

    def _chunks(self) -> list[bytes]:
        """The role chunk, one chunk per token, the finish and usage chunks and the end, each
        framed for chunked transfer encoding."""
        encoded = self._encoded.get(self.tokens)
        if encoded is None:
            head = {"id": "chatcmpl-bench", "object": "chat.completion.chunk", "created": 0}
            head["model"] = "gpt-4o-mini"

            def event(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
                choice = {"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}
                return {**head, "choices": [choice], "usage": None}

            events = [event({"role": "assistant", "content": ""})]
            events += [event({"content": word}) for word in self.words()]
            events += [event({}, "stop"), {**head, "choices": [], "usage": self._usage()}]
            texts = [f"data: {json.dumps(e, separators=(',', ':'))}\n\n" for e in events]
            encoded = [_http_chunk(text.encode()) for text in [*texts, "data: [DONE]\n\n"]]
            encoded.append(b"0\r\n\r\n")
            self._encoded[self.tokens] = encoded
        return encoded

    def _completion(self, body: dict[str, Any]) -> bytes:
        message = {"role": "assistant", "content": "".join(self.words())}
        choice = {"index": 0, "message": message, "finish_reason": "stop", "logprobs": None}
        completion = {
            "id": "chatcmpl-bench",
            "object": "chat.completion",
            "created": 0,
            "model": body.get("model", "gpt-4o-mini"),
            "choices": [choice],
            "usage": self._usage(),
        }
        data = json.dumps(completion).encode()
        head = f"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {len(data)}"
        return head.encode() + b"\r\n\r\n" + data

    def _usage(self) -> dict[str, int]:
        return {
            "prompt_tokens": 20,
            "completion_tokens": self.tokens,
            "total_tokens": 20 + self.tokens,
        }


def _http_chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


# -- the server and its clients ---------------------------------------------------------------


def server_rss_mb(pid: int) -> float | None:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    kilobytes = next(int(line.split()[1]) for line in status.splitlines() if line[:6] == "VmRSS:")
    return kilobytes / 1024


def load_average() -> str:
    """The 1-minute load average: other work on the machine skews every wall-clock figure."""
    try:
        return Path("/proc/loadavg").read_text().split()[0]
    except OSError:
        return "unknown"


def raise_open_file_limit(wanted: int) -> int:
    """Raise this process's open-file limit (inherited by the server) towards `wanted`;
    returns the limit in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < wanted:
        target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        soft = target
    return soft


class TimedConnection(ClientConnection):
    """Notes when bytes last reached it, before the client library parses them: a frame's
    arrival at this process, whatever the process then takes to read 1,000 of them."""

    data_at = 0.0

    def data_received(self, data: bytes) -> None:
        self.data_at = time.perf_counter()
        super().data_received(data)


async def open_socket(ws_url: str, topics: list[str], deflate: bool = True) -> TimedConnection:
    """A WebSocket subscribed to `topics` (like a browser, it offers permessage-deflate unless
    `deflate` is false)."""
    websocket = await connect(
        ws_url,
        ping_interval=None,
        max_queue=None,
        compression="deflate" if deflate else None,
        create_connection=TimedConnection,
    )
    assert isinstance(websocket, TimedConnection)
    await websocket.send(json.dumps({"type": "subscribe", "topics": topics}))
    while json.loads(await websocket.recv())["type"] != "subscribed":
        pass
    return websocket


class Listener:
    """One WebSocket whose frames are queued with the time each arrived."""

    def __init__(self, websocket: ClientConnection) -> None:
        self.websocket = websocket
        self.frames: asyncio.Queue[tuple[float, dict[str, Any]]] = asyncio.Queue()
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        async for raw in self.websocket:
            arrived = time.perf_counter()
            self.frames.put_nowait((arrived, json.loads(raw)))

    async def change(self, kind: str, topic: str) -> None:
        """Subscribe or unsubscribe, and wait for the answer (dropping what comes before)."""
        await self.websocket.send(json.dumps({"type": kind, "topics": [topic]}))
        while (await self.frames.get())[1]["type"] != f"{kind}d":
            pass

    async def until(self, done: Callable[[dict[str, Any]], bool]) -> tuple[float | None, int]:
        """Read frames until `done(frame)`; returns when the first `assistant_token` came and
        how many came."""
        first, tokens = None, 0
        while True:
            arrived, frame = await asyncio.wait_for(self.frames.get(), 60)
            data = frame.get("data") or {}
            if frame["type"] == "stream_chunk" and data.get("chunk_type") == "assistant_token":
                first = first or arrived
                tokens += 1
            if done(frame):
                return first, tokens

    async def close(self) -> None:
        await self.websocket.close()
        self._reader.cancel()


def run_ended(run_id: int) -> Callable[[dict[str, Any]], bool]:
    def done(frame: dict[str, Any]) -> bool:
        data = frame.get("data") or {}
        if frame["type"] != "run_updated" or data.get("id") != run_id:
            return False
        if data["status"] not in FINAL_STATUSES:
            return False
        if data["status"] != "succeeded":
            raise SystemExit(f"run {run_id} did not succeed: {data.get('error')}")
        return True

    return done


def stream_ended(thread_id: int) -> Callable[[dict[str, Any]], bool]:
    def done(frame: dict[str, Any]) -> bool:
        if frame["type"] != "stream_end" or frame["topic"] != f"thread:{thread_id}":
            return False
        if frame["data"]["status"] != "succeeded":
            raise SystemExit(f"turn in thread {thread_id} failed: {frame['data']['error']}")
        return True

    return done


async def count_deltas(client: httpx.AsyncClient, run_id: int) -> int:
    """Follow the run's SSE stream to its end; the `message.delta` events it carried."""
    deltas = 0
    async with client.stream("GET", f"/api/runs/{run_id}/events") as response:
        async for line in response.aiter_lines():
            deltas += line == "event: message.delta"
    return deltas


async def create_agent(
    client: httpx.AsyncClient, name: str, model: str, config: dict[str, Any]
) -> dict[str, Any]:
    agent = {
        "name": name,
        "model": model,
        "system_instructions": "You are a benchmark.",
        "task_instructions": "Write a long answer.",
        "config": config,
    }
    response = await client.post("/api/agents", json=agent)
    response.raise_for_status()
    return dict(response.json())


async def new_threads(client: httpx.AsyncClient, agent_id: int, count: int) -> list[int]:
    ids = []
    for _ in range(count):
        response = await client.post("/api/threads", json={"agent_id": agent_id})
        response.raise_for_status()
        ids.append(response.json()["id"])
    return ids


# -- 1. fan-out -------------------------------------------------------------------------------


@dataclass
class FanOut:
    read_ms: list[float] = field(default_factory=list)  # until the client's code read it
    arrived_ms: list[float] = field(default_factory=list)  # until its bytes reached us
    rss_before_mb: float | None = None
    rss_mb: float | None = None
    cpu_ms_per_event: float | None = None
    client_cpu_ms_per_event: float = 0.0


async def fan_out(
    client: httpx.AsyncClient, ws_url: str, pid: int, clients: int, repeats: int, deflate: bool
) -> FanOut:
    agent_id = (await create_agent(client, "fan-out", "scripted:demo", {}))["id"]
    result = FanOut(rss_before_mb=server_rss_mb(pid))
    sockets: list[TimedConnection] = []
    for start in range(0, clients, CONNECT_BATCH):
        batch = (
            open_socket(ws_url, ["agents"], deflate) for _ in range(start, clients)[:CONNECT_BATCH]
        )
        sockets += await asyncio.gather(*batch)
    arrivals: dict[str, list[tuple[float, float]]] = defaultdict(list)
    everyone = asyncio.Event()

    async def follow(websocket: TimedConnection) -> None:
        async for raw in websocket:
            read = time.perf_counter()
            frame = json.loads(raw)
            if frame["type"] == "agent_updated" and frame["data"]["id"] == agent_id:
                names = arrivals[frame["data"]["name"]]
                names.append((websocket.data_at, read))
                if len(names) == len(sockets):
                    everyone.set()

    readers = [asyncio.create_task(follow(websocket)) for websocket in sockets]
    await asyncio.sleep(1)  # let the server settle after the connection storm
    result.rss_mb = server_rss_mb(pid)
    cpu_before, client_before = server_cpu(pid), time.process_time()
    for repeat in range(repeats):
        everyone.clear()
        name = f"fan-out {repeat}"
        sent = time.perf_counter()
        response = await client.patch(f"/api/agents/{agent_id}", json={"name": name})
        response.raise_for_status()
        await asyncio.wait_for(everyone.wait(), 30)
        result.arrived_ms += [(arrived - sent) * 1000 for arrived, _ in arrivals[name]]
        result.read_ms += [(read - sent) * 1000 for _, read in arrivals[name]]
        await asyncio.sleep(0.05)
    cpu_after = server_cpu(pid)
    result.client_cpu_ms_per_event = (time.process_time() - client_before) * 1000 / repeats
    for start in range(0, len(sockets), CONNECT_BATCH):
        await asyncio.gather(*(ws.close() for ws in sockets[start : start + CONNECT_BATCH]))
    for reader in readers:
        reader.cancel()
    if cpu_before and cpu_after:
        result.cpu_ms_per_event = (cpu_after[0] - cpu_before[0]) * 1000 / repeats
    return result


# -- 2. server CPU per streamed token ---------------------------------------------------------


async def chat_turn(
    client: httpx.AsyncClient, listener: Listener, thread_id: int, follow: str
) -> tuple[float, float | None, int]:
    """One turn on a fresh thread; `follow` is `none`, `ws` (the thread's topic) or `sse`
    (the run's events). Returns when the message was sent, when the first token arrived on
    the WebSocket, and how many tokens the follower got."""
    topic = f"thread:{thread_id}"
    if follow == "ws":
        await listener.change("subscribe", topic)
    sent = time.perf_counter()
    response = await client.post(f"/api/threads/{thread_id}/messages", json={"content": "Go."})
    response.raise_for_status()
    run_id = response.json()["id"]
    if follow == "sse":
        deltas = asyncio.create_task(count_deltas(client, run_id))
    done = stream_ended(thread_id) if follow == "ws" else run_ended(run_id)
    first, tokens = await listener.until(done)
    if follow == "sse":
        tokens = await deltas
    if follow == "ws":
        await listener.change("unsubscribe", topic)
    return sent, first, tokens


async def chat_cpu(
    client: httpx.AsyncClient, listener: Listener, agent_id: int, pid: int, turns: int, follow: str
) -> tuple[float, int] | None:
    """Server CPU (ms) over `turns` chat turns (after 2 for warm-up), and the tokens that
    reached the follower."""
    threads = await new_threads(client, agent_id, turns + 2)
    for thread_id in threads[:2]:
        await chat_turn(client, listener, thread_id, follow)
    before = server_cpu(pid)
    delivered = 0
    for thread_id in threads[2:]:
        delivered += (await chat_turn(client, listener, thread_id, follow))[2]
    after = server_cpu(pid)
    if before is None or after is None:
        return None
    return (after[0] - before[0]) * 1000, delivered


async def task_run_cpu(
    client: httpx.AsyncClient, agent_id: int, pid: int, runs: int
) -> float | None:
    """Server CPU (ms) per task run (its answer is not streamed)."""

    async def run() -> None:
        response = await client.post(f"/api/agents/{agent_id}/task", params={"wait": "true"})
        if response.json()["status"] != "succeeded":
            raise SystemExit(f"task run did not succeed: {response.text}")

    for _ in range(2):
        await run()
    before = server_cpu(pid)
    for _ in range(runs):
        await run()
    after = server_cpu(pid)
    if before is None or after is None:
        return None
    return (after[0] - before[0]) * 1000 / runs


# -- 3. time to first token -------------------------------------------------------------------


@dataclass
class FirstToken:
    added_ms: list[float] = field(default_factory=list)
    before_model_ms: list[float] = field(default_factory=list)
    after_model_ms: list[float] = field(default_factory=list)


async def first_token(
    client: httpx.AsyncClient, listener: Listener, agent_id: int, model: FakeModel, turns: int
) -> FirstToken:
    result = FirstToken()
    threads = await new_threads(client, agent_id, turns + 3)
    for index, thread_id in enumerate(threads):
        sent, first, _ = await chat_turn(client, listener, thread_id, "ws")
        call = model.calls[-1]
        if index < 3 or first is None or call.first_token is None:  # warm-up
            continue
        result.added_ms.append((first - sent - (call.first_token - call.received)) * 1000)
        result.before_model_ms.append((call.received - sent) * 1000)
        result.after_model_ms.append((first - call.first_token) * 1000)
    return result


# -- the whole benchmark ----------------------------------------------------------------------


def pct(values: list[float], q: float) -> str:
    return f"{percentile(values, q):.1f} ms"


def report_fan_out(result: FanOut, clients: int, repeats: int, deflate: bool) -> None:
    compression = "offering permessage-deflate" if deflate else "offering no compression"
    print(
        f"\n1. fan-out: {clients} WebSocket clients on `agents` ({compression}), "
        f"{repeats} agent_updated events, {len(result.read_ms)} deliveries"
    )
    for label, delays in (
        ("PATCH sent → frame's bytes reach the client", result.arrived_ms),
        ("PATCH sent → client's code reads the event", result.read_ms),
    ):
        print(
            f"   {label}: p50 {pct(delays, 0.5)}, p99 {pct(delays, 0.99)}, "
            f"max {max(delays):.1f} ms   (target p99 < 100 ms)"
        )
    if result.rss_mb is not None and result.rss_before_mb is not None:
        per_client = (result.rss_mb - result.rss_before_mb) * 1024 / clients
        print(
            f"   server RSS: {result.rss_before_mb:.0f} MB before, {result.rss_mb:.0f} MB with "
            f"{clients} connections ({per_client:.0f} KB each)"
        )
    if result.cpu_ms_per_event is not None:
        print(
            f"   CPU per event delivered to all: server {result.cpu_ms_per_event:.1f} ms, "
            f"this client process {result.client_cpu_ms_per_event:.1f} ms"
        )


def report_first_token(result: FirstToken, first_token_ms: float) -> None:
    added = result.added_ms
    print(
        f"\n3. time to first token added by Zerg ({len(added)} turns, model waits "
        f"{first_token_ms:.0f} ms before its first token):"
    )
    print(f"   added: p50 {pct(added, 0.5)}, p95 {pct(added, 0.95)}   (target < 5 ms)")
    print(
        f"   of which message POST → model request: p50 {pct(result.before_model_ms, 0.5)}, "
        f"p95 {pct(result.before_model_ms, 0.95)}; model's first token → WebSocket: "
        f"p50 {pct(result.after_model_ms, 0.5)}, p95 {pct(result.after_model_ms, 0.95)}"
    )


async def streamed_token_cpu(
    client: httpx.AsyncClient, listener: Listener, agent_id: int, pid: int, args: argparse.Namespace
) -> None:
    turns, tokens = args.turns, args.tokens
    print(
        f"\n2. server CPU per streamed token: {turns} chat turns of {tokens} tokens (one SSE "
        f"chunk each, {args.token_interval_ms:g} ms apart), a fresh thread each; every turn "
        "is followed on `agents` to see it end"
    )
    followers = {
        "none": "nobody following the tokens",
        "ws": "WebSocket on thread:{id}",
        "sse": "SSE of the run",
    }
    rss_before, unfollowed = server_rss_mb(pid), None
    for follow, label in followers.items():
        figures = await chat_cpu(client, listener, agent_id, pid, turns, follow)
        if figures is None:
            print("   no /proc here: server CPU not measured")
            return
        cpu_ms, delivered = figures
        per_token = cpu_ms / (turns * tokens)
        if unfollowed is None:
            unfollowed, extra = per_token, "tokens produced, none delivered"
        else:
            extra = f"{delivered} tokens delivered, +{per_token - unfollowed:.3f} ms/token"
        print(f"   {label:<28} {per_token:.3f} ms/token ({cpu_ms / turns:.0f} ms/turn; {extra})")
    per_run = await task_run_cpu(client, agent_id, pid, turns)
    if per_run is not None:
        print(
            f"   {'task runs, not streamed':<28} {per_run / tokens:.3f} ms/token of the answer "
            f"({per_run:.0f} ms/run)   (target < 0.2 ms/token streamed)"
        )
    rss_after = server_rss_mb(pid)
    if rss_before is not None and rss_after is not None:
        chats, tasks = len(followers) * (turns + 2), turns + 2
        print(
            f"   server RSS: {rss_before:.0f} MB before these {chats} chat turns and {tasks} "
            f"task runs, {rss_after:.0f} MB after"
        )


async def chat_phases(
    client: httpx.AsyncClient, ws_url: str, pid: int, model: FakeModel, args: argparse.Namespace
) -> None:
    config = {"base_url": args.model_url, "max_retries": 0}
    agent = await create_agent(client, "chat", "openai:gpt-4o-mini", config)
    listener = Listener(await open_socket(ws_url, ["agents"]))
    if args.turns and args.tokens:
        model.tokens, model.interval_s = args.tokens, args.token_interval_ms / 1000
        await streamed_token_cpu(client, listener, agent["id"], pid, args)
    if args.ttft_turns:
        model.tokens, model.interval_s = 20, 0.0
        model.first_token_s = args.first_token_ms / 1000
        report_first_token(
            await first_token(client, listener, agent["id"], model, args.ttft_turns),
            args.first_token_ms,
        )
    await listener.close()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clients", type=int, default=1000, help="fan-out WebSocket clients")
    parser.add_argument("--repeats", type=int, default=20, help="fan-out events")
    parser.add_argument("--turns", type=int, default=20, help="chat turns per CPU measurement")
    parser.add_argument("--tokens", type=int, default=500, help="tokens per streamed answer")
    parser.add_argument("--token-interval-ms", type=float, default=1.0, help="between tokens")
    parser.add_argument("--ttft-turns", type=int, default=50, help="time-to-first-token turns")
    parser.add_argument("--first-token-ms", type=float, default=50.0, help="model's first wait")
    parser.add_argument(
        "--deflate",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="fan-out clients offer permessage-deflate, as browsers do",
    )
    args = parser.parse_args()

    limit = raise_open_file_limit(args.clients + 200)
    clients = max(0, min(args.clients, limit - 200))
    if clients < args.clients:
        print(f"open-file limit {limit}: fan-out with {clients} clients, not {args.clients}")
    model = FakeModel()
    args.model_url = await model.start()
    port = free_port()
    env = {"ZERG_MODEL_BASE_URLS": args.model_url, "OPENAI_API_KEY": "sk-benchmark"}
    base = f"http://127.0.0.1:{port}"
    ws_url = f"ws://127.0.0.1:{port}/api/ws"
    load = load_average()
    print(f"zerg serve (embedded, SQLite), {os.cpu_count()} cores; fake model at {args.model_url}")
    with tempfile.TemporaryDirectory(prefix="zerg-bench-") as data_dir:
        server = start_server(Path(data_dir), port, env)
        try:
            async with httpx.AsyncClient(base_url=base, timeout=60) as client:
                if clients and args.repeats:
                    fan = await fan_out(
                        client, ws_url, server.pid, clients, args.repeats, args.deflate
                    )
                    report_fan_out(fan, clients, args.repeats, args.deflate)
                await chat_phases(client, ws_url, server.pid, model, args)
        finally:
            server.terminate()
            server.wait(timeout=30)
    print(f"\nload average over 1 minute: {load} at the start, {load_average()} at the end")


if __name__ == "__main__":
    asyncio.run(main())
