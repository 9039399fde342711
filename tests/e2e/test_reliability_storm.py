# SPDX-License-Identifier: Apache-2.0
"""Exec storms: many thousands of execs from parallel shells on santad's
tmpfs while rules change, the cache is flushed, and santad is killed.

What must hold: every exec gets the decision its rule says (a program with
an allow rule always runs, one with a block rule never does, in LOCKDOWN);
a rule change applies to the very next exec once santactl returned; no
permission event goes unanswered (no shell loop hangs, and santad answered
as many events as it received); santad's memory stays bounded; a santad
killed with SIGKILL lets every pending exec go, and the one started after it
serves the same rules and still has every event it had stored.
"""
import errno
import json
import time

from rellib import (Storm, event_ids, exec_status, integrity, metric_sum,  # noqa: F401
                    programs, rel_santad, rel_summary, rules_table, storm_runner,
                    tiny_program, wait_until)

LOCKDOWN = {"ClientMode": 2}
SHELLS = 4
# Per program per shell; with 8 allowed and 8 blocked programs and a toggled
# one, SHELLS * ROUNDS * 17 execs.
ROUNDS = 300
RSS_LIMIT_KB = 96 * 1024
RSS_GROWTH_LIMIT_KB = 24 * 1024


def import_rules(d, tmp_path, rules, name="rules.json"):
    path = tmp_path / name
    path.write_text(json.dumps({"rules": [
        {"policy": policy, "identifier": sha, "rule_type": "BINARY"}
        for sha, policy in rules]}))
    d.ctl_ok("rule", "--import", str(path))


def fleet(d, tiny, tmp_path):
    allowed = programs(d.watch_dir, "allowed", 8, tiny)
    blocked = programs(d.watch_dir, "blocked", 8, tiny)
    (toggled,) = programs(d.watch_dir, "toggled", 1, tiny)
    import_rules(d, tmp_path, [(sha, "ALLOWLIST") for _, sha in allowed] +
                 [(sha, "BLOCKLIST") for _, sha in blocked] +
                 [(toggled[1], "ALLOWLIST")])
    loops = []
    for i in range(SHELLS):
        progs = [p for p, _ in allowed] + [p for p, _ in blocked] + [toggled[0]]
        # Each shell starts at another place in the list.
        loops.append(progs[i * 3:] + progs[:i * 3])
    return allowed, blocked, toggled, loops


def check_decisions(storm, allowed, blocked, toggled):
    for p, _ in allowed:
        st = storm.statuses(p)
        assert set(st) == {0}, f"allowed {p.name} got {dict(st)}"
        assert st[0] == SHELLS * ROUNDS
    for p, _ in blocked:
        st = storm.statuses(p)
        assert set(st) == {126}, f"blocked {p.name} got {dict(st)}"
    assert set(storm.statuses(toggled[0])) <= {0, 126}


def answered_all(d):
    """(received, answered) permission events once they are equal, None if
    they never are."""
    def settled():
        m = d.metrics()
        got, answered = metric_sum(m, "/santa/cache_lookups"), \
            metric_sum(m, "/santa/executions")
        return (got, answered) if got == answered else None
    return wait_until(settled, 5, 0.2)


def mutate(d, tmp_path, toggled, storm, rss, stats):
    """While STORM runs: flip the toggled program's rule and check the next
    exec obeys it at once, add and remove batches of unrelated rules, and
    flush the cache. Counts go into STATS; RSS samples into RSS."""
    path, sha = toggled
    i = 0
    while storm.running():
        d.ctl_ok("rule", "--block", "--identifier", sha)
        assert exec_status(path) == errno.EPERM, "a new block rule did not apply at once"
        d.ctl_ok("rule", "--allow", "--identifier", sha)
        assert exec_status(path) == 0, "a new allow rule did not apply at once"
        stats["flips"] += 2
        junk = [(f"{(i << 8) + k:064x}", "BLOCKLIST") for k in range(50)]
        import_rules(d, tmp_path, junk, "junk.json")
        import_rules(d, tmp_path, [(s, "REMOVE") for s, _ in junk], "junk.json")
        stats["rules_churned"] += 100
        if i % 2 == 0:
            d.ctl_ok("flushcache")
            stats["flushes"] += 1
        rss.append(d.rss_kb())
        i += 1


def test_exec_storm_while_rules_change(rel_santad, tiny_program, storm_runner, tmp_path,
                                       rel_summary):
    d = rel_santad(LOCKDOWN)
    allowed, blocked, toggled, loops = fleet(d, tiny_program, tmp_path)
    # Warm up, so that the RSS baseline has the caches and threads.
    for p, _ in allowed:
        assert exec_status(p) == 0
    rss0 = d.rss_kb()

    stats = {"flips": 0, "rules_churned": 0, "flushes": 0}
    rss = []
    storm = storm_runner(loops, ROUNDS, timeout=180)
    try:
        mutate(d, tmp_path, toggled, storm, rss, stats)
    finally:
        storm.join()

    assert storm.hung == 0, f"{storm.hung} shell loops hung (an exec never answered)"
    check_decisions(storm, allowed, blocked, toggled)
    counts = answered_all(d)
    assert counts, "santad received permission events it did not answer"
    assert metric_sum(d.metrics(), "/santa/fanotify_overflows") == 0
    rss.append(d.rss_kb())
    peak = max(rss)
    assert peak < RSS_LIMIT_KB and peak - rss0 < RSS_GROWTH_LIMIT_KB, (rss0, rss)
    assert integrity(d.db_path("rules.db")) == "ok"
    rel_summary("exec storm", f"{storm.total()} execs from {SHELLS} shells in "
                f"{storm.elapsed:.1f} s while {stats['flips']} rule flips (each checked on "
                f"the next exec), {stats['rules_churned']} rules added/removed and "
                f"{stats['flushes']} cache flushes; wrong decisions 0, hung loops 0, "
                f"events received/answered {counts[0]}/{counts[1]}; "
                f"santad RSS {rss0} -> peak {peak} KiB")


def kill_restart_case(d, allowed, blocked, loops, storm_runner):
    rules_before = rules_table(d)

    storm = storm_runner(loops, ROUNDS // 2, timeout=120)
    time.sleep(1.0)
    assert storm.running(), "the storm ended before santad could be killed"
    ids_before = event_ids(d)
    d.kill()
    killed_at = time.monotonic()
    # Without a listener the kernel lets every exec go; restart while the
    # storm still runs.
    time.sleep(0.3)
    d.start()
    restarted_in = time.monotonic() - killed_at
    storm.join()

    assert storm.hung == 0, f"{storm.hung} shell loops hung across the kill"
    # Blocked programs ran only while no santad was there; allowed ones always.
    for p, _ in allowed:
        assert set(storm.statuses(p)) == {0}, f"{p.name}: {dict(storm.statuses(p))}"
    assert rules_table(d) == rules_before
    for p, _ in allowed:
        assert exec_status(p) == 0
    for p, _ in blocked:
        assert exec_status(p) == errno.EPERM
    assert integrity(d.db_path("rules.db")) == "ok"
    return d, storm, ids_before, restarted_in


def test_kill_9_during_storm(rel_santad, tiny_program, storm_runner, tmp_path, rel_summary):
    d = rel_santad(LOCKDOWN)
    allowed, blocked, _, loops = fleet(d, tiny_program, tmp_path)
    d, storm, _, restarted_in = kill_restart_case(d, allowed, blocked, loops, storm_runner)
    ran_blocked = sum(storm.statuses(p)[0] for p in
                      (x for x in storm.counts if "blocked" in x))
    rel_summary("kill -9 during storm", f"{storm.total()} execs from {SHELLS} shells, "
                f"santad killed with SIGKILL and restarted in {restarted_in:.2f} s "
                f"mid-storm; hung loops 0, blocked execs that ran while no santad was "
                f"there {ran_blocked}, rules identical after restart "
                f"({len(rules_table(d))}), every allowed/blocked program decided as its rule "
                f"says afterwards")


def test_kill_9_keeps_stored_events(rel_santad, tiny_program, storm_runner, tmp_path,
                                    rel_summary):
    # Rules first (santactl may not change them once a sync server is
    # set), then a sync server (unreachable), so that santad stores an
    # event for every blocked exec.
    d = rel_santad(LOCKDOWN)
    allowed, blocked, _, loops = fleet(d, tiny_program, tmp_path)
    d.stop()
    d.rewrite_config(SyncBaseURL="http://127.0.0.1:9/")
    d.start()
    for _ in range(3):
        assert exec_status(blocked[0][0]) == errno.EPERM
    assert d.alive(), "santad died storing events:\n" + d.stderr()[-2000:]
    assert wait_until(lambda: len(event_ids(d)) >= 3, 5), d.stderr()[-2000:]
    d, storm, ids_before, restarted_in = kill_restart_case(d, allowed, blocked, loops,
                                                           storm_runner)
    ids_after = event_ids(d)
    lost = ids_before - ids_after
    assert not lost, f"{len(lost)} stored events lost across kill -9"
    assert integrity(d.db_path("events.db")) == "ok"
    rel_summary("kill -9 keeps events", f"{len(ids_before)} events stored before "
                f"SIGKILL mid-storm, {len(ids_after)} after restart, lost 0")
