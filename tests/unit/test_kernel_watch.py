"""The kernel watch: OOM kills from cgroup counters and the kernel log, unexpected stops."""

from __future__ import annotations

from containervps.config import Settings
from containervps.db.engine import session_scope
from containervps.db.models import Action, Server, utcnow
from containervps.services import events
from containervps.services.metering.host_counters import Counters
from containervps.services.metering.kernel_log import KernelLog, OomKill, parse_record
from containervps.services.metering.watch import STOPPED_INSIDE, memcg_of, watch
from tests.unit.fakes import add_server, make_tenant

# Lines as this host's kernel (6.18, cgroup v1) logged them for a busybox and a Debian server.
BUSYBOX_TAIL = (
    b"6,41950,15342477885,-;oom-kill:constraint=CONSTRAINT_MEMCG,nodemask=(null),"
    b"cpuset=lxc.payload.p_a,mems_allowed=0,oom_memcg=/lxc.payload.p_a,"
    b"task_memcg=/lxc.payload.p_a,task=tail,pid=10060,uid=100000\n"
)
DEBIAN_SERVICE = (
    b"6,44200,16131675422,-;oom-kill:constraint=CONSTRAINT_MEMCG,nodemask=(null),"
    b"cpuset=lxc.payload.p_d1,mems_allowed=0,oom_memcg=/lxc.payload.p_d1,"
    b"task_memcg=/lxc.payload.p_d1/system.slice/run-u4.service,task=tail,pid=5792,uid=100000\n"
)


def _counters(*, status: str = "Running", oom_kills: int = 0) -> Counters:
    return Counters(0.0, 0, 0, 0, 0, status=status, oom_kills=oom_kills, memory_failcnt=3)


def _kill(seq: int, memcg: str, task: str = "tail", task_memcg: str | None = None) -> OomKill:
    return OomKill(seq=seq, memcg=memcg, task_memcg=task_memcg or memcg, task=task, pid=seq)


def test_kernel_log_records_parse_to_kills() -> None:
    kill = parse_record(BUSYBOX_TAIL)
    logged = OomKill(41950, "/lxc.payload.p_a", "/lxc.payload.p_a", "tail", 10060, 15342477885)
    assert kill == logged
    assert kill is not None and not kill.of_init
    deb = parse_record(DEBIAN_SERVICE)
    assert deb is not None and deb.memcg == "/lxc.payload.p_d1" and deb.task == "tail"
    assert parse_record(b"6,41408,12866776902,-;veth0: left promiscuous mode\n") is None
    assert parse_record(b"garbage") is None
    assert _kill(1, "/lxc.payload.p_a", "init").of_init
    assert _kill(1, "/m", "systemd", "/m/init.scope").of_init
    assert not _kill(1, "/m", "systemd", "/m/user.slice/user@0.service").of_init


def test_new_kills_become_one_event_each_pass(db: Settings) -> None:
    tenant = make_tenant(db)
    with session_scope(db) as session:
        a = add_server(session, tenant, "a")
        a.memory_mib = 256
        session.add(a)
    key = (a.lxd_project, a.lxd_name)
    assert memcg_of(a) == "/lxc.payload.p_a"

    # First look: the kills of the running cgroup count; older log lines may be a former
    # server's of that name and do not.
    old = KernelLog(kills=[_kill(5, memcg_of(a))], last_seq=9)
    first = watch(
        db, servers=[a], states={key: _counters(oom_kills=1)}, seen_at=utcnow(), kernel_log=old
    )
    assert first.oom_events == 1
    # Nothing new: no event.
    again = watch(
        db, servers=[a], states={key: _counters(oom_kills=1)}, seen_at=utcnow(), kernel_log=old
    )
    assert again.oom_events == 0
    # Two kills in a removed service cgroup (the counter did not move), one in another server.
    logged = KernelLog(
        kills=[
            _kill(10, memcg_of(a)),
            _kill(11, memcg_of(a), "php"),
            _kill(12, "/lxc.payload.p_b"),
        ],
        last_seq=20,
    )
    third = watch(
        db, servers=[a], states={key: _counters(oom_kills=1)}, seen_at=utcnow(), kernel_log=logged
    )
    assert third.oom_events == 1
    # The counter grew by 3 while the log (rate-limited) kept one line: the larger counts.
    fourth = watch(
        db,
        servers=[a],
        states={key: _counters(oom_kills=4)},
        seen_at=utcnow(),
        kernel_log=KernelLog(kills=[_kill(21, memcg_of(a))], last_seq=22),
    )
    assert fourth.oom_events == 1
    listed, total = events.list_events(db, tenant_id=tenant, server_id=a.id)
    assert total == 3
    assert [e.details["count"] for e in listed] == [3, 2, 1]  # newest first
    assert listed[1].details["killed"] == ["php", "tail"]
    assert listed[1].details["memory_mib"] == 256 and listed[1].details["failcnt"] == 3
    assert "(php, tail)" in listed[1].message and "256 MiB" in listed[1].message
    assert all(e.type == "server.oom_kill" and e.severity == "warning" for e in listed)


def test_a_server_stopped_from_inside_goes_off_with_why(db: Settings) -> None:
    tenant = make_tenant(db)
    with session_scope(db) as session:
        inside = add_server(session, tenant, "inside")
        oom = add_server(session, tenant, "oom")
        asked = add_server(session, tenant, "asked")
        off = add_server(session, tenant, "off")
        off.status = "off"
        session.add(off)
        session.add(Action(tenant_id=tenant, server_id=asked.id, command="poweroff"))  # running
    servers = [inside, oom, asked, off]
    running = {(s.lxd_project, s.lxd_name): _counters() for s in servers}
    empty = KernelLog(last_seq=1)
    watch(db, servers=servers, states=running, seen_at=utcnow(), kernel_log=empty)

    init_killed = KernelLog(
        kills=[_kill(2, memcg_of(oom), "sh"), _kill(3, memcg_of(oom), "init")], last_seq=3
    )
    stopped = {k: _counters(status="Stopped") for k in running}
    result = watch(db, servers=servers, states=stopped, seen_at=utcnow(), kernel_log=init_killed)
    assert result.stops == 2
    with session_scope(db) as session:
        rows = {s.name: session.get(Server, s.id) for s in servers}
    assert rows["inside"] is not None and rows["inside"].status == "off"
    assert rows["inside"].status_detail == STOPPED_INSIDE
    assert rows["oom"] is not None and rows["oom"].status == "off"
    assert rows["oom"].status_detail == "stopped after an OOM kill of its init (init)"
    assert rows["asked"] is not None and rows["asked"].status == "running"  # its action's
    assert rows["off"] is not None and rows["off"].status_detail is None

    on_oom, _ = events.list_events(db, tenant_id=tenant, server_id=oom.id)
    assert [e.type for e in on_oom] == ["server.stopped_unexpectedly", "server.oom_kill"]
    assert on_oom[0].details == {"cause": "oom_kill_of_init", "oom_kills": 2}
    assert on_oom[1].details["killed"] == ["init", "sh"]
    on_inside, _ = events.list_events(db, tenant_id=tenant, server_id=inside.id)
    assert [e.details["cause"] for e in on_inside] == ["inside"]
    assert events.list_events(db, tenant_id=tenant, server_id=asked.id)[1] == 0

    # A second pass sees them off already: nothing more.
    again = watch(db, servers=servers, states=stopped, seen_at=utcnow(), kernel_log=init_killed)
    assert again.stops == 0 and again.oom_events == 0
