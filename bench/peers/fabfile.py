"""Fabric 2 peer of the benchmark: the same recipe, written as a Fabric user would.

One paramiko Connection per site (reused for every command of the site),
one thread per site (Fabric 2's CLI runs hosts one after another, so
fan-out is done with threads, as ThreadingGroup does), host keys verified
against KNOWN_HOSTS (Fabric's default would auto-add them), only KEY offered.

    fab -r bench/peers commands --port P --key K --known KH --sites a,b --count 200
    fab -r bench/peers recipe   --port P --key K --known KH --sites a,b
    fab -r bench/peers deploy   --port P --key K --known KH --sites a,b --local-dir DIR
"""
import random
import threading
import time

from fabric import Connection, task
from paramiko import RejectPolicy


def connect(user, port, key, known):
    """Open a verified connection; retry the handshakes a stock sshd drops (MaxStartups)."""
    for attempt in range(8):
        conn = Connection(
            "127.0.0.1",
            user=user,
            port=int(port),
            connect_kwargs={"key_filename": key, "look_for_keys": False, "allow_agent": False},
        )
        conn.client.load_host_keys(known)
        conn.client.set_missing_host_key_policy(RejectPolicy())
        try:
            conn.open()
            return conn
        except Exception:
            conn.close()
            if attempt == 7:
                raise
            time.sleep(random.uniform(0.1, 1.0) * (attempt + 1))


def each_site(sites, work):
    """A thread per site; any site's failure fails the run (exit 1), after all have finished."""
    errors = []

    def run(user):
        try:
            work(user)
        except Exception as error:  # noqa: BLE001 - reported below
            errors.append(f"{user}: {error!r}")

    threads = [threading.Thread(target=run, args=(user,)) for user in sites.split(",")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise SystemExit("\n".join(errors))


def remote_recipe(conn, user, pip="pip install -q --no-index --disable-pip-version-check -r REQUIREMENTS"):
    with conn.cd(f"/home/{user}/Sites/{user}"):
        conn.run("mkdir -p static caches/django", hide=True)
        conn.run("git pull --ff-only", hide=True)
        conn.run("cp example_site/settings_production.py example_site/settings.py", hide=True)
        with conn.prefix(f". /home/{user}/virtualenvs/{user}/bin/activate"):
            conn.run(pip, hide=True)
            conn.run("./manage.py collectstatic --noinput", hide=True)
    conn.run(f"touch /etc/uwsgi/deployfile-bench.d/{user}.ini", hide=True)


@task
def commands(c, port, key, known, sites, count=200):
    """N sequential `true` per site, over one Connection per site."""

    def work(user):
        conn = connect(user, port, key, known)
        for _ in range(int(count)):
            conn.run("true", hide=True)
        conn.close()

    each_site(sites, work)


@task
def recipe(c, port, key, known, sites):
    """The remote part of the deploy recipe, every step, on every site at once."""

    def work(user):
        conn = connect(user, port, key, known)
        remote_recipe(conn, user)
        conn.close()

    each_site(sites, work)


@task
def deploy(c, port, key, known, sites, local_dir):
    """The seed recipe: test and push locally, then every remote step on every site, always."""
    with c.cd(local_dir):
        c.run("./manage.py test pages", hide=True)
        c.run("git push", hide=True)

    def work(user):
        conn = connect(user, port, key, known)
        remote_recipe(conn, user, pip="pip install -r REQUIREMENTS")
        conn.close()

    each_site(sites, work)
