"""A Flask view creates a row and enqueues its follow-up in the same transaction.

``POST /signups`` inserts a signup (SQLAlchemy) and enqueues ``send_welcome`` for it
with ``connection=session``: both are written in the session's transaction on
PostgreSQL, so the task exists if and only if the signup does. A signup that
fails (the email is taken) rolls back and leaves no task behind; a worker never
sees a task whose row is missing.

    pip install 'omniq-trio[postgres,frameworks]'
    python examples/flask_signups.py postgresql://postgres@127.0.0.1:5432/test

Run as a script, it starts a worker pool in a thread, signs two people up
through Flask's test client (one twice), waits for the welcome mails and
prints what happened. In a real deployment the app runs under a WSGI server and
``omniq-trio worker`` (same ``OMNIQ_*`` settings) runs the tasks.
"""

from __future__ import annotations

import sys
import threading

import sqlalchemy as sa
from flask import Flask, jsonify, request
from flask.typing import ResponseReturnValue
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from omniq_trio import OmniQ, Settings

SCHEMA = "flask_example"  # the app's table and omniq_trio's, side by side


class Base(DeclarativeBase):
    pass


class Signup(Base):
    __tablename__ = "signups"
    __table_args__ = {"schema": SCHEMA}
    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(unique=True)
    welcomed: Mapped[bool] = mapped_column(default=False)


engine: sa.Engine
omniq: OmniQ


def send_welcome(signup_id: int) -> str:
    """The follow-up task: its row is there, since both were committed together."""
    with Session(engine) as session, session.begin():
        signup = session.get_one(Signup, signup_id)
        signup.welcomed = True
        return f"welcome mail sent to {signup.email}"


app = Flask(__name__)


# --8<-- [start:view]
@app.post("/signups")
def create_signup() -> ResponseReturnValue:
    email = request.get_json()["email"]
    try:
        with Session(engine) as session, session.begin():
            signup = Signup(email=email)
            session.add(signup)
            session.flush()  # the row gets its id, in the transaction
            signup_id = signup.id
            task_id = omniq.enqueue(send_welcome, signup_id, connection=session)
    except IntegrityError:  # rolled back: neither the row nor the task exists
        return jsonify(error=f"{email} has signed up already"), 409
    return jsonify(signup_id=signup_id, task_id=task_id), 201


# --8<-- [end:view]


@app.get("/tasks/<task_id>")
def task_result(task_id: str) -> ResponseReturnValue:
    result = omniq.get_result(task_id, wait=True, timeout=float(request.args.get("wait", 0)))
    assert result is not None
    return jsonify(status=result.status, value=result.value)


def main(dsn: str) -> None:
    global engine, omniq
    engine = sa.create_engine(dsn.replace("postgresql://", "postgresql+psycopg://", 1))
    with engine.begin() as conn:
        conn.execute(sa.text(f"CREATE SCHEMA IF NOT EXISTS {SCHEMA}"))
    Base.metadata.create_all(engine)
    settings = Settings(backend="postgres", dsn=dsn, postgres_schema=SCHEMA, poll_interval=0.1)
    with OmniQ(settings) as omniq:
        workers = omniq.worker(concurrency=2)
        thread = threading.Thread(target=workers.start)
        thread.start()
        client = app.test_client()
        ids = []
        for email in ("ada@example.com", "alan@example.com", "ada@example.com"):
            reply = client.post("/signups", json={"email": email})
            print(f"POST /signups {email}: {reply.status_code} {reply.get_json()}")
            if reply.status_code == 201:
                ids.append(reply.get_json()["task_id"])
        for task_id in ids:
            print(client.get(f"/tasks/{task_id}?wait=30").get_json()["value"])
        workers.stop()
        thread.join()
        print(f"tasks: {omniq.stats().total}, signups welcomed: {_welcomed()}")


def _welcomed() -> int:
    with Session(engine) as session:
        query = sa.select(sa.func.count()).where(Signup.welcomed)
        return session.execute(query).scalar_one()


if __name__ == "__main__":
    main(sys.argv[1])
