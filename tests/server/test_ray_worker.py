"""``PLAYGROUND_WORKER=ray`` on a local Ray started by the server (2 CPU slots, 2 actors): the
API gives the answers of the embedded worker bit for bit, and an actor killed with SIGKILL
during a stream of saves and runs costs only 503s while Ray restarts it, no acknowledged
save, and then the requests succeed again. The jobs' direct connection to an actor refuses a
peer without the key before unpickling anything, and (without a cluster) a connection that
drops mid-job costs that job a 503 and the slot connects to the restarted actor."""

from __future__ import annotations

import contextlib
import os
import pickle
import socket
import struct
import threading
import time

import pytest
import torch
from safetensors.torch import load as st_load
from test_worker_faults import ONES, Killer, weights
from test_worker_processes import scenario

pytest.importorskip("ray")
pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore::DeprecationWarning")]


def test_ray_actors_answer_as_the_embedded_worker_and_survive_a_kill(make_api):
    embedded = scenario(make_api())
    api = make_api(worker="ray", workers=2)
    assert scenario(api) == embedded
    health = api.ok(api.get("/healthz"))["worker"]
    assert health["backend"] == "ray" and len(health["workers"]) == 2

    model = api.create(preset="linear_3_2")
    url = f"/api/models/{model['id']}"
    api.run(model["id"])
    victim = next(
        w
        for w in api.ok(api.get("/healthz"))["worker"]["workers"]
        if w.get("live_models", 0) >= 1 and w["jobs_done"] > 0
    )
    killer = Killer(victim["pid"], wait_s=120)
    statuses, lost, acked, i, after = [], [], [], 1, 0
    deadline = time.monotonic() + 180
    killer.thread.start()
    while after < 5:
        assert time.monotonic() < deadline, statuses
        r = api.put_weights(model["id"], weights(i))
        statuses.append(r.status_code)
        if r.status_code == 200:
            acked.append((i, r.json()["version"]))
            i += 1
            if len(acked) == 3:
                killer.go.set()
        else:
            assert r.status_code == 503 and int(r.headers["retry-after"]) >= 1, r.text
            lost.append(r.json()["error"]["code"])
            time.sleep(0.2)  # a client's back-off; the 503 says 2 s
        run = api.post(f"{url}/run", json=ONES)
        statuses.append(run.status_code)
        if run.status_code == 503:
            lost.append(run.json()["error"]["code"])
        if killer.killed.is_set() and r.status_code == 200 and run.status_code == 200:
            after += 1
    killer.thread.join()
    assert set(statuses) <= {200, 503} and 503 in statuses, statuses
    assert set(lost) == {"worker_lost"}, lost  # while Ray restarts the actor
    versions = [v for _, v in acked]
    assert versions == sorted(set(versions))  # each acknowledged save a newer version
    last, version = acked[-1]
    stored = st_load(api.weights(model["id"]))
    assert torch.equal(stored["linear.weight"], torch.full((2, 3), float(last)))
    assert torch.equal(stored["linear.bias"], torch.full((2,), float(-last)))
    assert api.ok(api.get(url))["version"] == version
    again = api.ok(api.get("/healthz"))["worker"]["workers"][victim["index"]]
    assert again["pid"] != victim["pid"]  # Ray started the actor again
    assert again["alive"] and again["restarts"] == 1


def test_an_upload_reaches_an_actor_as_bytes_not_as_a_path_on_the_servers_disk(tmp_path):
    from server.ops.messages import Read, WeightsIn
    from server.workers.ray_worker import inlined

    spooled = tmp_path / "upload.safetensors"
    spooled.write_bytes(weights(3))
    msg = inlined(WeightsIn("ws", "m", 1, path=str(spooled)))
    assert msg.path == "" and msg.data == weights(3)  # another machine has no such file
    assert inlined(msg) is msg
    other = Read("ws", "m", 1)
    assert inlined(other) is other


SPRUNG: list[str] = []


def spring(name: str) -> None:
    SPRUNG.append(name)


class Trap:
    """Unpickling it calls :func:`spring`: proof that a stranger's pickle was loaded."""

    def __reduce__(self):
        return spring, ("unpickled",)


def test_a_connection_without_the_key_is_refused_and_nothing_it_sent_is_unpickled():
    from multiprocessing import AuthenticationError
    from multiprocessing.connection import Connection, answer_challenge

    from server.workers.direct import JobListener, dial

    key = os.urandom(32)
    served = threading.Event()
    listener = JobListener("127.0.0.1", key, lambda conn: served.set())
    try:
        # the wrong key: refused, and the listener hangs up
        wrong = Connection(socket.create_connection(listener.address).detach())
        with pytest.raises(AuthenticationError):
            answer_challenge(wrong, os.urandom(32))
        with pytest.raises(EOFError):
            wrong.recv_bytes()
        wrong.close()
        # no handshake at all, a pickle straight away (short, and long): never loaded
        for pad in (0, 1000):
            trap = pickle.dumps((Trap(), "x" * pad))
            with socket.create_connection(listener.address) as raw:
                raw.sendall(struct.pack("!i", len(trap)) + trap)
                with contextlib.suppress(ConnectionResetError):  # unread bytes: a reset
                    while raw.recv(4096):  # the challenge, then the listener hangs up
                        pass
        assert not served.is_set()
        # with the key: served
        with dial(listener.address, key):
            assert served.wait(60)
    finally:
        listener.close()
    assert SPRUNG == []
    pickle.loads(pickle.dumps(Trap()))  # the trap works: it would have shown
    assert SPRUNG == ["unpickled"]


def test_a_dropped_connection_answers_503_then_the_slot_connects_to_the_restarted_actor(
    monkeypatch,
):
    """Without a cluster: a fake actor whose first connection takes a job and drops (the
    actor killed mid-job), whose address is asked again until "Ray" restarted it."""
    import asyncio
    from types import SimpleNamespace

    from ray.exceptions import GetTimeoutError

    from server.settings import Settings
    from server.worker import WorkerLost
    from server.workers import ray_worker
    from server.workers.direct import JobListener

    key = os.urandom(32)
    connections: list[int] = []
    took_job = threading.Event()

    def serve(conn) -> None:
        connections.append(len(connections) + 1)
        pid = connections[-1]
        conn.send((0, True, None, [], {"pid": pid}))  # hello
        while True:
            try:
                job_id, msg = conn.recv()
            except EOFError:
                return
            if job_id == "control":  # ("control", "stop"): the server closes
                return
            if pid == 1:
                took_job.set()
                return  # dies with the job in flight: the connection drops
            conn.send((job_id, True, msg.upper(), [], {"pid": pid}))

    restarted = threading.Event()  # "Ray" has the actor back once the test says so

    def get(ref, timeout=None):
        assert ref == "address-ref"
        if not restarted.wait(timeout):
            raise GetTimeoutError("still restarting")
        return listener.address

    monkeypatch.setattr(ray_worker.ray, "get", get)
    actor = SimpleNamespace(address=SimpleNamespace(remote=lambda: "address-ref"))
    listener = JobListener("127.0.0.1", key, serve)
    slot = ray_worker.ActorSlot(0, actor, key, Settings(), SimpleNamespace())

    async def scenario() -> None:
        with pytest.raises(WorkerLost) as in_flight:
            await slot.submit("first")
        assert took_job.is_set() and in_flight.value.code == "worker_lost"
        assert "Ray actor 0" in str(in_flight.value)
        with pytest.raises(WorkerLost):  # while the actor restarts: 503 at once
            await slot.submit("meanwhile")
        assert not slot.stats()["alive"]
        restarted.set()
        deadline = time.monotonic() + 60
        while not slot.stats()["alive"]:
            assert time.monotonic() < deadline
            await asyncio.sleep(0.01)
        assert await slot.submit("again") == "AGAIN"

    try:
        slot.connect(listener.address)
        asyncio.run(scenario())
        stats = slot.stats()
        assert stats["restarts"] == 1 and stats["pid"] == 2 and stats["jobs_lost"] == 1
    finally:
        slot.close()
        listener.close()
        slot.join()
    assert connections == [1, 2]
