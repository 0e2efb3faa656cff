#!/usr/bin/python3
"""fork() through the Python binding (issue 8, item 3), against tests/mlflow_test_server.py.

The parent logs continuously from several threads (an explicit Client's run, the fluent
API's active run, a histogram) while multiprocessing forks workers, round after round,
as a DataLoader does.  Each worker:
  (a) finds every handle it inherited refused at once with MloClosedError (the library
      answers MLO_ERR_CLOSED for a client inherited across fork; the binding says why),
      and closing the inherited client neither hangs nor raises;
  (b) logs: through the fluent API, which re-attaches to the parent's active run by
      itself (as mlflow's would just work in a forked worker), and through a Client of
      its own to a run of its own.
Every worker must finish within a timeout.  Then the server's /_test/dump must hold
every point the parent and the workers logged exactly once, the parent's threads
complete (they were never disturbed), and nothing from an inherited handle.

The cases: a fork Pool (4 workers x 2 rounds, 8 tasks a round); fork Processes that
just return (a DataLoader's workers: no flush of their own); 24 bare os.fork()
children; a fork while a parent thread holds the fluent API's lock; `with Pool()`
(terminate() kills the workers: the store delivers their points through the next
client); a forkserver pool for contrast; and the C library's own answer for inherited
histograms (a library bug, skipped unless MLO_TEST_KNOWN_BUGS=1).

In a sanitizer build (ASan, TSan: the runtime is preloaded into python) a child of a
multi-threaded process cannot start threads (TSan refuses; ASan misreads the stacks the
child reclaims), so there the forked worker does (a) and runs (b) in a fresh
interpreter it starts (as tests/test_lifecycle.c re-executes itself).

Run by meson (suite "bindings"), or by hand from the repo:
    PYTHONPATH=bindings/python /usr/bin/python3 bindings/python/tests/test_fork.py
"""

import atexit
import collections
import ctypes
import json
import multiprocessing
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
if "mlo" not in sys.modules:
    sys.path.insert(0, os.path.dirname(HERE))

if __name__ == "__main__" and os.environ.get("MLO_BINDINGS_SKIP"):
    print("skipped: " + os.environ["MLO_BINDINGS_SKIP"])
    sys.exit(77)

if __name__ == "__main__" and "MLO_TEST_FORK_STORE" not in os.environ:
    # the library's durable store: one of our own (the children inherit it by the
    # environment: forked, forkserver and re-executed ones alike)
    _store = tempfile.mkdtemp(prefix="mlo-test-fork-store-")
    os.environ["MLO_STORE_DIR"] = os.environ["MLO_TEST_FORK_STORE"] = _store
    atexit.register(shutil.rmtree, _store, True)

import mlo  # noqa: E402
from mlo import _client as _mc  # noqa: E402
from mlo_testserver import PYTHON, TestServer  # noqa: E402

_preload = os.environ.get("LD_PRELOAD", "")
SANITIZED = any(rt in _preload for rt in ("libasan", "libtsan"))
SLOW = 4 if SANITIZED else 1

WORKERS = 4          # processes per pool
ROUNDS = 2           # pools, one after the other (epochs of a DataLoader)
TASKS = 8            # tasks per round (each worker takes about two)
N_FLUENT = 40        # points a task logs to the parent's active run (fluent API)
N_OWN = 40           # points a task logs to a run of its own client
TASK_TIMEOUT = 120 * SLOW   # a round's tasks, all of them
EXIT_TIMEOUT = 60 * SLOW    # the workers' exit once the pool is closed (their flush)
REFUSE_LIMIT = 5.0 * SLOW   # (a) must not wait for anything

# The parent's objects, as the forked workers see them (fork copies the module).
G = {}


# ---- in the workers ---------------------------------------------------------------


def _refusals():
    """(a): every inherited handle is refused at once with the binding's closed error.
    Returns (problems, seconds taken)."""
    t0 = time.monotonic()
    problems = []
    calls = [
        ("Run.log_metric", lambda: G["run"].log_metric("inherited", 1.0, step=0)),
        ("Run.log_metrics", lambda: G["run"].log_metrics({"inherited": 1.0})),
        ("Run.log_param", lambda: G["run"].log_param("inherited", 1)),
        ("Run.set_tag", lambda: G["run"].set_tag("inherited", "x")),
        ("Run.end", lambda: G["run"].end("KILLED")),
        ("Run.histogram", lambda: G["run"].histogram("inherited")),
        ("Histogram.record", lambda: G["hist"].record(1.0)),
        ("Client.start_run", lambda: G["client"].start_run(run_name="inherited")),
        ("Client.resume_run", lambda: G["client"].resume_run(G["run_id"])),
        ("Client.flush", lambda: G["client"].flush(5)),
        ("Client.stats", lambda: G["client"].stats()),
    ]
    for name, call in calls:
        try:
            call()
            problems.append("%s: not refused" % name)
        except mlo.MloClosedError as e:
            if "inherited across fork" not in str(e):
                problems.append("%s: refused without saying why: %s" % (name, e))
        except Exception as e:  # noqa: BLE001
            problems.append("%s: %r" % (name, e))
    if not G["client"].closed:
        problems.append("Client.closed is False for an inherited client")
    try:
        G["hist"].close()  # the binding never hands an inherited histogram to C
        G["client"].close()  # drops the handles; the parent's client is the parent's
    except Exception as e:  # noqa: BLE001
        problems.append("closing the inherited client: %r" % (e,))
    return problems, time.monotonic() - t0


def _log_here(task_id, url, fluent_run_id):
    """(b) in this process: the fluent API (re-attached to the parent's active run) and
    a client of our own.  The fluent points are not flushed here: the worker's normal
    end does it (the binding's multiprocessing finalizer)."""
    out = {}
    active = mlo.active_run()
    out["active"] = active.info.run_id if active is not None else None
    for i in range(N_FLUENT):
        mlo.log_metric("worker.fluent", float(i), step=task_id * N_FLUENT + i)
    with mlo.Client(url) as own:
        run = own.start_run(experiment_name="py-fork", run_name="worker-%d" % task_id)
        for i in range(N_OWN):
            run.log_metric("own", float(i), step=i)
        run.end()
        out["own_run"] = run.info.run_id
    return out


def _child_main(spec):
    """--child: (b) in a fresh interpreter (sanitizer builds): the same points, through
    a client of its own (resume_run joins the parent's active run)."""
    task_id, url, fluent_run_id = spec["task"], spec["url"], spec["fluent_run"]
    out = {"active": fluent_run_id}
    with mlo.Client(url) as own:
        fr = own.resume_run(fluent_run_id)
        for i in range(N_FLUENT):
            fr.log_metric("worker.fluent", float(i), step=task_id * N_FLUENT + i)
        run = own.start_run(experiment_name="py-fork", run_name="worker-%d" % task_id)
        for i in range(N_OWN):
            run.log_metric("own", float(i), step=i)
        run.end()
        out["own_run"] = run.info.run_id
    print("RESULT " + json.dumps(out), flush=True)


def _log_fresh(task_id, url, fluent_run_id):
    spec = {"task": task_id, "url": url, "fluent_run": fluent_run_id}
    p = subprocess.run([PYTHON, os.path.abspath(__file__), "--child", json.dumps(spec)],
                       capture_output=True, text=True, timeout=TASK_TIMEOUT)
    for line in p.stdout.splitlines():
        if line.startswith("RESULT ") and p.returncode == 0:
            return json.loads(line[len("RESULT "):])
    raise RuntimeError("the fresh interpreter failed (%d): %s" % (p.returncode, p.stderr[-2000:]))


def fork_task(task_id):
    """A task of a fork-mode Pool worker: (a), then (b)."""
    try:
        problems, took = _refusals()
        log = _log_fresh if SANITIZED else _log_here
        out = log(task_id, G["url"], G["fluent_run_id"])
        out.update(task=task_id, pid=os.getpid(), problems=problems, refuse_s=took)
        return out
    except BaseException:  # noqa: B902 - reported to the parent, which fails
        return {"task": task_id, "pid": os.getpid(), "error": traceback.format_exc()}


def loader_worker(worker_id, task_id, queue):
    """A fork-mode Process, as a DataLoader worker: (a), (b) through the fluent API
    only, then it simply returns (its finalizer flushes)."""
    try:
        problems, took = _refusals()
        if SANITIZED:
            out = _log_fresh(task_id, G["url"], G["fluent_run_id"])
        else:
            out = {"active": mlo.active_run().info.run_id}
            for i in range(N_FLUENT):
                mlo.log_metric("loader", float(i), step=task_id * N_FLUENT + i)
        out.update(task=task_id, worker=worker_id, problems=problems, refuse_s=took)
    except BaseException:  # noqa: B902
        out = {"task": task_id, "error": traceback.format_exc()}
    queue.put(out)


def spawned_task(args):
    """A forkserver/spawn worker: a fresh interpreter inherits nothing; the fluent API
    logs to the parent's run by id (resume, not made active: the worker never ends it)."""
    task_id, fluent_run_id = args
    try:
        out = {"task": task_id, "pid": os.getpid(),
               "active": None if mlo.active_run() is None else mlo.active_run().info.run_id}
        for i in range(N_FLUENT):
            mlo.log_metric("worker.spawned", float(i), step=task_id * N_FLUENT + i,
                           run_id=fluent_run_id)
        return out
    except BaseException:  # noqa: B902
        return {"task": task_id, "error": traceback.format_exc()}


# ---- the parent's load ----------------------------------------------------------------


class Load:
    """Threads logging continuously until stop(): two to an explicit client's run, one
    through the fluent API, one recording into a histogram (its intervals are cut under
    a lock of the library's thread while we fork)."""

    def __init__(self, run, hist):
        self.run = run
        self.hist = hist
        self.stop_ev = threading.Event()
        self.counts = collections.Counter()
        self.errors = []
        self.threads = [threading.Thread(target=self._explicit, args=("parent.t%d" % i,))
                        for i in range(2)]
        self.threads.append(threading.Thread(target=self._fluent))
        self.threads.append(threading.Thread(target=self._hist))
        for t in self.threads:
            t.start()

    def _loop(self, key, call):
        n = 0
        try:
            while not self.stop_ev.is_set():
                call(n)
                n += 1
                self.counts[key] = n
                time.sleep(0.0005)
        except BaseException:  # noqa: B902
            self.errors.append(traceback.format_exc())

    def _explicit(self, key):
        self._loop(key, lambda n: self.run.log_metric(key, float(n), step=n))

    def _fluent(self):
        self._loop("parent.fluent", lambda n: mlo.log_metric("parent.fluent", float(n), step=n))

    def _hist(self):
        self._loop("lat", lambda n: self.hist.record(float(n % 1000)))

    def snapshot(self):
        return dict(self.counts)

    def stop(self):
        self.stop_ev.set()
        for t in self.threads:
            t.join(60)


def points(run, key):
    return [m for m in run["metrics"] if m["key"] == key]


def steps(run, key):
    return sorted(m["step"] for m in points(run, key))


def join_pool(pool, timeout):
    """pool.close() and join(), bounded: False when a worker did not exit in time."""
    pool.close()
    t = threading.Thread(target=pool.join, daemon=True)
    t.start()
    t.join(timeout)
    return not t.is_alive()


# ---- the tests ---------------------------------------------------------------------------


class ForkTestCase(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.server = TestServer()
        mlo.set_tracking_uri(cls.server.url)
        G["url"] = cls.server.url

    @classmethod
    def tearDownClass(cls):
        while mlo.active_run():
            mlo.end_run()
        mlo.set_tracking_uri(None)
        cls.server.stop()

    def setUp(self):
        # the parent: an explicit client, its run and a histogram; the fluent active run
        self.client = mlo.Client(self.server.url)
        self.run = self.client.start_run(experiment_name="py-fork", run_name=self.id())
        self.hist = self.run.histogram("lat", interval_ms=100)
        self.fluent = mlo.start_run(experiment_name="py-fork", run_name=self.id() + ".fluent")
        G.update(client=self.client, run=self.run, run_id=self.run.info.run_id,
                 hist=self.hist, fluent_run_id=self.fluent.info.run_id)

    def tearDown(self):
        while mlo.active_run():
            mlo.end_run()
        if not self.client.closed:
            self.client.close()

    def start_load(self):
        self.load = Load(self.run, self.hist)
        self.addCleanup(self.load.stop)

    def check_parent(self, extra_fluent=()):
        """After the workers: the parent's threads were never disturbed: every point they
        logged is stored exactly once; nothing came through an inherited handle; the
        parent's runs are still RUNNING (no child ended them)."""
        self.load.stop()
        self.assertEqual(self.load.errors, [], "a parent thread failed")
        self.hist.close()
        self.client.flush(60 * SLOW)
        mlo.flush(60 * SLOW)
        st = self.client.stats()
        self.assertEqual((st["failed"], st["dropped"]), (0, 0), st)
        st = mlo.get_client().stats()
        self.assertEqual((st["failed"], st["dropped"]), (0, 0), st)
        counts = self.load.snapshot()
        run = self.server.run(self.run.info.run_id)
        fluent = self.server.run(self.fluent.info.run_id)
        for r in (run, fluent):
            self.assertEqual(r["info"]["status"], "RUNNING")
            self.assertEqual(points(r, "inherited"), [])
            self.assertNotIn("inherited", r["params"])
            self.assertNotIn("inherited", r["tags"])
        for key in ("parent.t0", "parent.t1"):
            self.assertGreater(counts[key], 0)
            self.assertEqual(steps(run, key), list(range(counts[key])), key)
        self.assertEqual(steps(fluent, "parent.fluent"), list(range(counts["parent.fluent"])))
        # every value recorded into the histogram counted once, in some interval
        self.assertEqual(sum(m["value"] for m in points(run, "lat.count")), counts["lat"])
        for key, expected in extra_fluent:
            self.assertEqual(steps(fluent, key), expected, key)
        sys.stderr.write("\n  parent points stored once each: %s; from the workers: %s\n"
                         % (", ".join("%s %d" % kv for kv in sorted(counts.items())),
                            ", ".join("%s %d" % (k, len(e)) for k, e in extra_fluent)))
        return run, fluent

    @staticmethod
    def expected_steps(first_task, ntasks):
        return [t * N_FLUENT + i for t in range(first_task, first_task + ntasks)
                for i in range(N_FLUENT)]

    def worker_steps(self, key, first_task, ntasks):
        """The steps of key stored in the fluent run for those tasks."""
        lo, hi = first_task * N_FLUENT, (first_task + ntasks) * N_FLUENT
        return [s for s in steps(self.server.run(self.fluent.info.run_id), key) if lo <= s < hi]

    def check_worker_outputs(self, outs):
        for o in outs:
            self.assertNotIn("error", o, o.get("error"))
            self.assertEqual(o["problems"], [], "task %s: inherited handles" % o["task"])
            self.assertLess(o["refuse_s"], REFUSE_LIMIT, "task %s: refusing took long" % o["task"])
            self.assertEqual(o["active"], self.fluent.info.run_id)


class TestForkPool(ForkTestCase):
    def test_pool_fork_rounds_under_load(self):
        """4 workers x 2 rounds (fork), 8 tasks a round, while the parent logs."""
        ctx = multiprocessing.get_context("fork")
        self.start_load()
        outs = []
        for rnd in range(ROUNDS):
            before = self.load.snapshot()
            pool = ctx.Pool(WORKERS)
            procs = list(pool._pool)  # the worker processes, to see how they end
            try:
                res = pool.map_async(fork_task, range(rnd * TASKS, (rnd + 1) * TASKS),
                                     chunksize=1)
                try:
                    got = res.get(TASK_TIMEOUT)
                except multiprocessing.TimeoutError:
                    self.fail("round %d: the tasks did not finish in %d s (a hang); worker "
                              "exit codes %s" % (rnd, TASK_TIMEOUT, [p.exitcode for p in procs]))
                self.assertTrue(join_pool(pool, EXIT_TIMEOUT),
                                "round %d: a worker did not exit in %d s" % (rnd, EXIT_TIMEOUT))
            finally:
                pool.terminate()
            self.assertEqual([p.exitcode for p in procs], [0] * WORKERS)
            self.check_worker_outputs(got)
            outs += got
            # delivered by the workers' own exit (before a next round's worker could
            # recover them from the store)
            self.assertEqual(self.worker_steps("worker.fluent", rnd * TASKS, TASKS),
                             self.expected_steps(rnd * TASKS, TASKS))
            # the parent kept logging while its workers came and went
            after = self.load.snapshot()
            for key in ("parent.t0", "parent.t1", "parent.fluent", "lat"):
                self.assertGreater(after.get(key, 0), before.get(key, 0), key)
        self.assertEqual(sorted(o["task"] for o in outs), list(range(ROUNDS * TASKS)))
        self.assertGreater(len({o["pid"] for o in outs}), WORKERS)  # several rounds of processes

        # the workers' fluent points reached the parent's run exactly once: sent at the
        # workers' normal end, nobody flushed them in the tasks
        expected = sorted(t * N_FLUENT + i for t in range(ROUNDS * TASKS) for i in range(N_FLUENT))
        self.check_parent(extra_fluent=[("worker.fluent", expected)])
        # each task's own run: all of its points, once, FINISHED
        dump = self.server.dump()
        runs = {r["info"]["run_id"]: r for r in dump["runs"]}
        for o in outs:
            r = runs[o["own_run"]]
            self.assertEqual(r["info"]["status"], "FINISHED")
            self.assertEqual(r["info"]["run_name"], "worker-%d" % o["task"])
            self.assertEqual(steps(r, "own"), list(range(N_OWN)))
        self.assertEqual(len({o["own_run"] for o in outs}), ROUNDS * TASKS)
        # nothing else anywhere: no run got a point through an inherited handle
        for r in dump["runs"]:
            self.assertEqual(points(r, "inherited"), [], r["info"]["run_id"])


class TestForkProcess(ForkTestCase):
    def test_processes_like_a_dataloader(self):
        """Fork-mode Process workers (4 x 3 epochs) logging with the fluent API only and
        simply returning: their points arrive without a flush of their own."""
        ctx = multiprocessing.get_context("fork")
        self.start_load()
        outs = []
        for rnd in range(ROUNDS):
            q = ctx.SimpleQueue()
            procs = [ctx.Process(target=loader_worker, args=(w, rnd * WORKERS + w, q))
                     for w in range(WORKERS)]
            for p in procs:
                p.start()
            deadline = time.monotonic() + TASK_TIMEOUT + EXIT_TIMEOUT
            for p in procs:
                p.join(max(0.1, deadline - time.monotonic()))
            hung = [p.pid for p in procs if p.is_alive()]
            for p in procs:
                if p.is_alive():
                    p.kill()
                    p.join()
            self.assertEqual(hung, [], "epoch %d: workers still running after %d s"
                             % (rnd, TASK_TIMEOUT + EXIT_TIMEOUT))
            self.assertEqual([p.exitcode for p in procs], [0] * WORKERS)
            got = [q.get() for _ in procs]
            self.check_worker_outputs(got)
            outs += got
            key = "worker.fluent" if SANITIZED else "loader"
            self.assertEqual(self.worker_steps(key, rnd * WORKERS, WORKERS),
                             self.expected_steps(rnd * WORKERS, WORKERS))
        key = "worker.fluent" if SANITIZED else "loader"
        n = ROUNDS * WORKERS
        self.check_parent(extra_fluent=[
            (key, sorted(t * N_FLUENT + i for t in range(n) for i in range(N_FLUENT)))])


def bare_fork_child(k):
    """A child of os.fork() (no multiprocessing): (a), (b) through the fluent API, a
    flush of its own (os._exit runs no exit handler), then os._exit."""
    code = 3
    try:
        signal.alarm(TASK_TIMEOUT)  # a hang ends as a failure
        problems, took = _refusals()
        if problems or took > REFUSE_LIMIT:
            sys.stderr.write("fork %d: %s (%.1f s)\n" % (k, problems, took))
            os._exit(4)
        if SANITIZED:
            _log_fresh(k, G["url"], G["fluent_run_id"])
        else:
            for i in range(N_FLUENT):
                mlo.log_metric("worker.fluent", float(i), step=k * N_FLUENT + i)
            mlo.flush(60 * SLOW)
        code = 0
    except BaseException:  # noqa: B902
        traceback.print_exc()
    finally:
        os._exit(code)


class TestBareFork(ForkTestCase):
    def test_many_forks_under_load(self):
        """os.fork() many times while the parent's threads log, up to 8 children alive at
        once; each child logs through the fluent API and flushes itself."""
        n = 10 if SANITIZED else 24
        self.start_load()
        alive, codes = {}, {}
        for k in range(n):
            while len(alive) >= 8:
                pid, status = os.wait()
                codes[alive.pop(pid)] = status
            pid = os.fork()
            if pid == 0:
                bare_fork_child(k)  # never returns
            alive[pid] = k
        while alive:
            pid, status = os.wait()
            codes[alive.pop(pid)] = status
        bad = {k: (("signal %d" % os.WTERMSIG(st)) if os.WIFSIGNALED(st) else
                   "exit %d" % os.WEXITSTATUS(st)) for k, st in codes.items()
               if not (os.WIFEXITED(st) and os.WEXITSTATUS(st) == 0)}
        self.assertEqual(bad, {}, "children that failed (SIGALRM: a hang)")
        self.check_parent(extra_fluent=[
            ("worker.fluent", sorted(k * N_FLUENT + i for k in range(n) for i in range(N_FLUENT)))])


class TestForkLocks(ForkTestCase):
    def test_fork_while_a_thread_holds_the_fluent_lock(self):
        """A parent thread inside the fluent API (as a start_run waiting for the server)
        while another thread forks: the child's fluent calls must not wait for it."""
        from mlo import _fluent
        held, release = threading.Event(), threading.Event()

        def holder():
            with _fluent._lock:
                held.set()
                release.wait(60)

        t = threading.Thread(target=holder)
        t.start()
        self.addCleanup(t.join)
        self.addCleanup(release.set)
        self.assertTrue(held.wait(30))
        pid = os.fork()
        if pid == 0:  # the child: never returns into unittest
            code = 3
            try:
                signal.alarm(60 * SLOW)
                if SANITIZED:  # no client (threads) here: end_run only takes the lock
                    mlo.end_run()
                else:
                    mlo.log_metric("after.fork", 1.0, step=7)  # re-attaches: takes the lock
                    mlo.flush(30 * SLOW)
                code = 0
            except BaseException:  # noqa: B902
                traceback.print_exc()
            finally:
                os._exit(code)
        _, status = os.waitpid(pid, 0)
        release.set()
        self.assertTrue(os.WIFEXITED(status), "the child was killed (a hang: signal %d)"
                        % (os.WTERMSIG(status) if os.WIFSIGNALED(status) else -1))
        self.assertEqual(os.WEXITSTATUS(status), 0)
        if not SANITIZED:
            self.assertEqual(steps(self.server.run(self.fluent.info.run_id), "after.fork"), [7])
        self.assertEqual(self.server.run(self.fluent.info.run_id)["info"]["status"], "RUNNING")

    def test_inherited_histogram_in_c(self):
        """The C library itself (the binding bypassed): an inherited histogram is refused
        with MLO_ERR_CLOSED, at once, whatever the parent's shipper was doing at fork."""
        if SANITIZED:
            self.skipTest("the child only calls C here, but the shipper's lock is the point")
        hs = []
        for i in range(50):  # a longer tick under hist_lock: forks land inside it
            h = ctypes.POINTER(_mc.ffi.mlo_histogram_t)()
            self.assertEqual(_mc.lib.mlo_histogram_new(self.run._h, b"raw%d" % i, 100,
                                                       ctypes.byref(h)), 0)
            hs.append(h)
        closed = _mc.ffi.mlo_status["MLO_ERR_CLOSED"]
        try:
            for k in range(20):
                pid = os.fork()
                if pid == 0:
                    code = 3
                    try:
                        signal.alarm(10)
                        h2 = ctypes.POINTER(_mc.ffi.mlo_histogram_t)()
                        got = (_mc.lib.mlo_histogram_record(hs[k], ctypes.c_double(1.0)),
                               _mc.lib.mlo_histogram_new(self.run._h, b"child", 100,
                                                         ctypes.byref(h2)),
                               _mc.lib.mlo_histogram_free(hs[k]))
                        code = 0 if got == (closed, closed, closed) else 4
                    finally:
                        os._exit(code)
                _, status = os.waitpid(pid, 0)
                self.assertFalse(os.WIFSIGNALED(status), "fork %d: the child hung" % k)
                self.assertEqual(os.WEXITSTATUS(status), 0, "fork %d: not refused" % k)
                time.sleep(0.01 * (k % 5))
        finally:
            for h in hs:
                _mc.lib.mlo_histogram_free(h)


def fluent_task(task_id):
    """A task logging through the fluent API only, without a flush."""
    for i in range(N_FLUENT):
        mlo.log_metric("worker.killed", float(i), step=task_id * N_FLUENT + i)
    return os.getpid()


class TestPoolTerminated(ForkTestCase):
    @unittest.skipIf(SANITIZED, "the workers would log in a fresh interpreter, which flushes")
    def test_with_pool_block_kills_the_workers(self):
        """`with Pool() as pool:` ends with terminate(): the workers die of SIGTERM
        before they could send.  What they logged waits in the store (its crash
        journal), and the next client that opens the store (here: a new Client; else
        the next process, or `mlo sync`) delivers it, exactly once."""
        ctx = multiprocessing.get_context("fork")
        self.start_load()
        with ctx.Pool(WORKERS) as pool:
            procs = list(pool._pool)
            try:
                pool.map_async(fluent_task, range(TASKS), chunksize=1).get(TASK_TIMEOUT)
            except multiprocessing.TimeoutError:
                self.fail("the tasks did not finish in %d s" % TASK_TIMEOUT)
        for p in procs:
            p.join(EXIT_TIMEOUT)
        self.assertTrue(all(p.exitcode is not None for p in procs))
        expected = self.expected_steps(0, TASKS)
        with mlo.Client(self.server.url) as recoverer:  # recovers the dead workers' queues
            deadline = time.monotonic() + 60 * SLOW
            while self.worker_steps("worker.killed", 0, TASKS) != expected and \
                    time.monotonic() < deadline:
                time.sleep(0.1)
            self.assertEqual(recoverer.stats()["failed"], 0)
        self.check_parent(extra_fluent=[("worker.killed", expected)])


class TestForkserverContrast(ForkTestCase):
    def test_forkserver_pool(self):
        """For contrast, a fresh interpreter per worker (forkserver, else spawn): nothing
        is inherited, no active run; logging by run id works and leaves the run RUNNING."""
        method = "forkserver" if "forkserver" in multiprocessing.get_all_start_methods() \
            else "spawn"
        ctx = multiprocessing.get_context(method)
        self.start_load()
        rid = self.fluent.info.run_id
        # as a user would: a fresh interpreter knows no tracking URI unless told
        pool = ctx.Pool(2, initializer=mlo.set_tracking_uri, initargs=(self.server.url,))
        procs = list(pool._pool)
        try:
            res = pool.map_async(spawned_task, [(t, rid) for t in range(4)], chunksize=1)
            try:
                outs = res.get(TASK_TIMEOUT)
            except multiprocessing.TimeoutError:
                self.fail("%s workers did not finish in %d s" % (method, TASK_TIMEOUT))
            self.assertTrue(join_pool(pool, EXIT_TIMEOUT), "a %s worker hung at exit" % method)
        finally:
            pool.terminate()
        self.assertEqual([p.exitcode for p in procs], [0, 0])
        for o in outs:
            self.assertNotIn("error", o, o.get("error"))
            self.assertIsNone(o["active"])
        self.check_parent(extra_fluent=[
            ("worker.spawned", sorted(t * N_FLUENT + i for t in range(4) for i in range(N_FLUENT)))])


if __name__ == "__main__":
    if sys.argv[1:2] == ["--child"]:
        _child_main(json.loads(sys.argv[2]))
        sys.exit(0)
    unittest.main(verbosity=2)
