"""The private servers start, restart (fast and immediate), flush and always stop."""

from __future__ import annotations

from tests.private_servers import SHARED_PORTS, PrivatePostgres, PrivateRedis, port_open


def test_postgres_keeps_committed_data_across_fast_and_immediate_restarts() -> None:
    with PrivatePostgres() as pg:
        assert pg.port not in SHARED_PORTS
        pg.execute("CREATE DATABASE probe")
        pg.execute("CREATE TABLE t (n int)", dbname="probe")
        pg.execute("INSERT INTO t VALUES (1)", dbname="probe")

        pg.restart(mode="fast")
        pg.execute("INSERT INTO t VALUES (2)", dbname="probe")
        pg.restart(mode="immediate")

        assert pg.execute("SELECT n FROM t ORDER BY n", dbname="probe") == [(1,), (2,)]
        assert pg.url("probe") == f"postgres://postgres@127.0.0.1:{pg.port}/probe"
        port, data = pg.port, pg.dir
    assert not port_open(port)
    assert not data.exists()


def test_redis_flushall_and_restart_touch_only_the_private_server() -> None:
    with PrivateRedis() as rd:
        assert rd.port not in SHARED_PORTS
        client = rd.client(db=3)
        client.set("k", "v")
        assert rd.url(db=3) == f"redis://127.0.0.1:{rd.port}/3"

        rd.flushall()
        assert client.get("k") is None

        client.set("k", "v")
        rd.restart(mode="immediate")  # no persistence: a restart loses everything
        assert rd.client(db=3).get("k") is None
        port = rd.port
    assert not port_open(port)
