"""Scenarios of the real redis-py client (8.x: opens each connection with HELLO 3) for Meltemi's
end-to-end tests. Usage: redis_py.py PORT SCENARIO; prints one JSON object on stdout."""
import json
import sys

import redis


def basic(port):
    r = redis.Redis(port=port, db=0, single_connection_client=True)
    out = {"protocol": r.connection.protocol if r.connection else None}
    out["set"] = r.set("py:a", "1")
    out["get"] = r.get("py:a").decode()
    r.hset("py:h", mapping={"f": "v", "g": "w"})
    out["hgetall"] = {k.decode(): v.decode() for k, v in r.hgetall("py:h").items()}
    p = r.pipeline(transaction=True)
    p.set("py:tx", "5")
    p.incr("py:tx")
    out["transaction"] = p.execute()
    p = r.pipeline(transaction=False)
    for i in range(200):
        p.incr("py:n")
    out["pipeline_last"] = p.execute()[-1]
    # What the server connection that ran this call says of itself (resp=3 after HELLO 3).
    info = r.execute_command("CLIENT", "INFO")
    out["client_info"] = info.decode() if isinstance(info, bytes) else str(info)
    return out


def selected(port):
    r = redis.Redis(port=port, db=3, single_connection_client=True)
    r.set("py:indb3", "yes")
    return {"get": r.get("py:indb3").decode()}


def main():
    port, scenario = int(sys.argv[1]), sys.argv[2]
    result = {"basic": basic, "selected": selected}[scenario](port)
    print(json.dumps(result, default=str))


if __name__ == "__main__":
    main()
