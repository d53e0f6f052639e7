"""Batch mode across processes: a worker SIGKILLed while polling a provider batch loses nothing, and the
worker that takes the run over polls the same batch instead of submitting (and paying for) it again."""

from __future__ import annotations

import httpx
import pytest

from tests.scale.servers import Cluster
from tests.scale.test_scale_out import finished, run_row, seed, wait_for, worker_of

pytestmark = pytest.mark.scale


def test_a_worker_killed_mid_poll_loses_nothing_and_submits_nothing_twice(make_cluster, sql):
    cluster: Cluster = make_cluster(GEN_BATCH_POLL_SECONDS="0.2")
    url = cluster.start_fake_provider()
    # Long enough for the kill to land while the batch is still in progress.
    httpx.post(f"{url}/_fake/config", json={"batch_delay_seconds": 8}).raise_for_status()
    workers, _ = cluster.start(workers=2)
    project = seed(cluster, "--projects", "1", "--scenes", "20")["projects"][0]
    run_id = seed(cluster, "--start", str(project), "--mode", "batch")["runs"][0]

    def submitted() -> bool:
        query = "SELECT count(*) FROM generation_providerbatch WHERE run_id = %s AND provider_id <> ''"
        return sql.execute(query, [run_id]).fetchone()[0] == 1

    wait_for(submitted, what="the batch to be submitted", cluster=cluster)
    cluster.kill(worker_of(run_row(sql, run_id)["owner"], workers))

    row = wait_for(lambda: finished(sql, run_id), what="the run to finish after the kill", cluster=cluster)
    assert (row["status"], row["succeeded"], row["failed"]) == ("completed", 20, 0)
    sent = httpx.get(f"{url}/_fake/requests").json()
    creates = [r for r in sent if r["method"] == "POST" and r["path"] == "/v1/batches"]
    assert len(creates) == 1
    assert not [r for r in sent if r["path"].startswith("/v1/images")]
    versions = sql.execute(
        "SELECT count(*), count(DISTINCT v.scene_id) FROM generation_sceneversion v "
        "JOIN generation_generationattempt a ON a.id = v.attempt_id WHERE a.run_id = %s",
        [run_id],
    ).fetchone()
    assert versions == (20, 20)
