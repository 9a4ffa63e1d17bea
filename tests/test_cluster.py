"""The test servers themselves (--spark-mode=standalone|connect-server): loopback only, workers that
come and go."""

from __future__ import annotations

import _cluster


def test_every_server_process_listens_on_loopback_only(cluster, spark):
    import psutil

    assert spark.range(4, numPartitions=4).count() == 4  # executors and their Python workers are up
    procs = _cluster.marked_processes(cluster.marker)
    assert set(procs) >= {p.pid for p in cluster.processes()}
    # executors carry the marker too, so the sweep after stop() would find any that outlived their worker
    running = {cls for cls in _cluster.JVM_CLASSES if any(cls in cmd for cmd in procs.values())}
    connect_server = "org.apache.spark.sql.connect.service.SparkConnectServer"
    assert running == set(_cluster.JVM_CLASSES) - (set() if cluster.connect_url else {connect_server})
    listening = set()
    for pid in procs:
        for conn in psutil.Process(pid).net_connections(kind="inet"):
            if conn.status == psutil.CONN_LISTEN:
                listening.add((pid, conn.laddr.ip, conn.laddr.port))
    assert listening, "no listening socket found at all"
    assert {ip for _, ip, _ in listening} <= {"127.0.0.1", "::ffff:127.0.0.1"}, listening


def test_a_worker_added_later_gets_an_executor(cluster, spark):
    before = {w.address for w in cluster.workers}
    worker = cluster.add_worker(cores=1, memory="1g")
    try:
        assert worker.address not in before
        assert len(cluster.alive_workers()) == 3
        cluster.wait_for_executors(3, session=spark)  # the running application takes the new worker's core
    finally:
        cluster.stop_worker(worker)
    assert len(cluster.alive_workers()) == 2
    assert worker.process.exited()
    assert spark.range(10, numPartitions=4).count() == 10
