"""`http_get` against a server that compresses although asked not to: what it decodes, what it
refuses, and that a decompression bomb never costs more than `max_bytes` of decoded body."""

import gzip
import tracemalloc
import zlib
from collections.abc import Iterator

import pytest
from fastapi import FastAPI
from fastapi.responses import Response
from langchain_core.tools import BaseTool, ToolException

from tests.support.server import serve_in_thread
from zerg.agents.tools import HttpGetPolicy, build_tools

pytestmark = pytest.mark.anyio

TEXT = b"The quick brown fox jumps over the lazy dog.\n" * 100
BOMB_BYTES = 50 * 1024 * 1024


def zstd_rle_frame(blocks: int) -> bytes:
    """A zstd frame of `blocks` RLE blocks, each 4 bytes that expand to 128 KiB of "A"."""
    frame = bytearray(b"\x28\xb5\x2f\xfd")  # magic number
    frame += bytes([0x00, 7 << 3])  # no content size, no checksum; a 128 KiB window
    for n in range(blocks):
        last = n == blocks - 1
        frame += ((128 * 1024) << 3 | 1 << 1 | last).to_bytes(3, "little") + b"A"
    return bytes(frame)


BODIES: dict[str, tuple[bytes, str]] = {
    "gzip": (gzip.compress(TEXT), "gzip"),
    "x-gzip": (gzip.compress(TEXT), "x-gzip"),
    "deflate": (zlib.compress(TEXT), "deflate"),
    "raw-deflate": (zlib.compress(TEXT, wbits=-zlib.MAX_WBITS), "deflate"),
    "identity": (TEXT, "identity"),
    "gzip-bomb": (gzip.compress(b"\0" * BOMB_BYTES, compresslevel=9), "gzip"),
    "zstd-bomb": (zstd_rle_frame(256), "zstd"),  # 1 KiB -> 32 MiB
    "br": (b"\x0b\x02\x80hello\x03", "br"),
    "stacked": (gzip.compress(gzip.compress(TEXT)), "gzip, gzip"),
    "corrupt": (b"\x1f\x8b\x08\x00not gzip at all", "gzip"),
}

app = FastAPI()


@app.get("/{name}")
def encoded(name: str) -> Response:
    body, encoding = BODIES[name]
    return Response(body, media_type="text/plain", headers={"content-encoding": encoding})


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    with serve_in_thread(app) as url:
        yield url


def http_get(max_bytes: int = 100_000) -> BaseTool:
    policy = HttpGetPolicy(allowed_networks=["127.0.0.1/32"], max_bytes=max_bytes)
    return build_tools(["http_get"], http_policy=policy)[0]


async def body_of(tool: BaseTool, url: str) -> str:
    result: str = await tool.ainvoke({"url": url})
    return result.split("\n\n", 1)[1]


@pytest.mark.parametrize("name", ["gzip", "x-gzip", "deflate", "raw-deflate", "identity"])
async def test_decodes_gzip_and_deflate(server: str, name: str) -> None:
    assert await body_of(http_get(), f"{server}/{name}") == TEXT.decode()


async def test_a_compressed_body_is_truncated_at_max_bytes_decoded(server: str) -> None:
    body = await body_of(http_get(max_bytes=1000), f"{server}/gzip")

    text, notice = body.rsplit("\n", 1)
    assert text == TEXT[:1000].decode()
    assert notice == "[Truncated: only the first 1000 bytes of the body were read]"


async def test_a_gzip_bomb_is_decoded_no_further_than_max_bytes(server: str) -> None:
    assert len(BODIES["gzip-bomb"][0]) < 100_000  # all of it fits under the wire limit
    tracemalloc.start()
    try:
        body = await body_of(http_get(), f"{server}/gzip-bomb")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    text, notice = body.rsplit("\n", 1)
    assert text == "\0" * 100_000
    assert notice == "[Truncated: only the first 100000 bytes of the body were read]"
    # Inflating a whole chunk at once, as httpx does, takes megabytes per wire chunk.
    assert peak < 5 * 1024 * 1024, f"peak {peak:,} bytes"


@pytest.mark.parametrize(
    ("name", "encoding"), [("zstd-bomb", "zstd"), ("br", "br"), ("stacked", "gzip, gzip")]
)
async def test_refuses_encodings_it_cannot_bound(server: str, name: str, encoding: str) -> None:
    with pytest.raises(ToolException) as refused:
        await body_of(http_get(), f"{server}/{name}")

    message = str(refused.value)
    assert f"{server}/{name}" in message
    assert f"Content-Encoding {encoding!r}" in message
    assert "decodes only gzip, x-gzip, deflate" in message


async def test_a_corrupt_compressed_body_is_a_tool_error(server: str) -> None:
    with pytest.raises(ToolException, match=r"Could not decode the gzip body of .*/corrupt: "):
        await body_of(http_get(), f"{server}/corrupt")
