"""Apache Thrift's Python library (PyPI `thrift`, code generated into gen-py/ by gen.sh) as a test
peer for Meltemi: a third Thrift implementation beside npm thrift and the Go library, with its own
THeaderTransport. Start it through python.mjs; by hand:

  python_peer.py server --port 0 --name v1 [--transport framed|buffered|header]
                 [--protocol binary|compact] [--multiplexed] [--watch-stdin]
      Prints exactly `READY port=<port>` once listening, then one JSON line per event:
      {"connection": n} when a client connects, {"call": {...}} per call (service, method, args,
      conn, and under THeader the key/values, flags, header sequence id and the client type the
      library detected). --watch-stdin: exit when stdin closes.
      Greeter.sayHello(who)  -> "<name>: hello <who>"; "header:<key>" -> "<name>: <that THeader value>"
      Greeter.echo(payload)  -> payload; "header:<key>" -> that THeader value ("<none>" without it,
                                as the Go peer's Echo); "delay:<ms>:<rest>" answers after <ms> ms
      Greeter.add(a, b)      -> a + b; GreetError{code 1, "<name>: negative a"} when a < 0
      Greeter.ping(note)     oneway, recorded only
      Calculator.multiply(a, b) -> a * b; Calculator.whoami() -> "<name>:Calculator"
      Not multiplexed, the server is a Greeter server. A THeader server accepts every client type
      the library knows (THeader, framed and unframed binary and compact) and answers each in its own.

  python_peer.py client --port N [--transport ...] [--protocol ...] [--multiplexed]
                 [--headers '{"k": "v"}'] [--calls '[{"method": "sayHello", "args": ["a"]}, ...]']
                 [--timeout-ms 5000] [--trace]
      Makes the calls in order on ONE connection and prints one JSON line per call:
      {"i", "service", "method", "ok", "result" | "error": {"type", "message", "kind"|"code"}},
      under THeader also "replyHeaders" and "replyFlags"; --trace adds the hex bytes sent and
      received for that call ("sent", "received"). A call may carry "service" (Greeter or
      Calculator) and "headers" (THeader key/values for that call, over --headers). The library
      writes THeader key/values into the next frame only, so they are set again before every call.
      A THeader client accepts only THeader answers: a framed or unframed reply is an error.
"""
import argparse
import json
import os
import sys
import threading

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "gen-py"))

from thrift.Thrift import TApplicationException, TException  # noqa: E402
from thrift.TMultiplexedProcessor import TMultiplexedProcessor  # noqa: E402
from thrift.protocol import TBinaryProtocol, TCompactProtocol  # noqa: E402
from thrift.protocol.TMultiplexedProtocol import TMultiplexedProtocol  # noqa: E402
from thrift.protocol.THeaderProtocol import THeaderProtocol, THeaderProtocolFactory  # noqa: E402
from thrift.server.TServer import TThreadedServer  # noqa: E402
from thrift.transport import TSocket, TTransport  # noqa: E402
from thrift.transport.THeaderTransport import THeaderClientType, THeaderSubprotocolID  # noqa: E402

from meltemi_test import Calculator, Greeter  # noqa: E402
from meltemi_test.ttypes import GreetError  # noqa: E402

CLIENT_TYPES = {v: k for k, v in vars(THeaderClientType).items() if not k.startswith("_")}
HEADER_PROTOCOLS = {"binary": THeaderSubprotocolID.BINARY, "compact": THeaderSubprotocolID.COMPACT}
PROTOCOL_FACTORIES = {
    "binary": TBinaryProtocol.TBinaryProtocolAcceleratedFactory,
    "compact": TCompactProtocol.TCompactProtocolAcceleratedFactory,
}
TRANSPORT_FACTORIES = {"framed": TTransport.TFramedTransportFactory, "buffered": TTransport.TBufferedTransportFactory}

_out = threading.Lock()


def emit(obj):
    line = json.dumps(obj)
    with _out:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()


def text(b):
    return b.decode("utf-8", "backslashreplace") if isinstance(b, bytes) else str(b)


# --- server -------------------------------------------------------------------------------------

_current = threading.local()  # the connection's input protocol and id, for the handlers


def header_info():
    """What the THeader transport read with the call being handled (None under other transports)."""
    prot = getattr(_current, "iprot", None)
    trans = getattr(prot, "trans", None)
    if not hasattr(trans, "get_headers"):
        return None
    return {
        "headers": {text(k): text(v) for k, v in trans.get_headers().items()},
        "flags": trans.flags,
        "headerSeqId": trans.sequence_id,
        "clientType": CLIENT_TYPES.get(trans._client_type, trans._client_type),
    }


def record(service, method, args):
    call = {"service": service, "method": method, "args": list(args), "conn": getattr(_current, "conn", None)}
    info = header_info()
    if info is not None:
        call.update(info)
    emit({"call": call})


def header_value(key):
    info = header_info()
    return (info or {}).get("headers", {}).get(key, "<none>")


class GreeterHandler:
    def __init__(self, name):
        self.name = name

    def sayHello(self, who):
        record("Greeter", "sayHello", [who])
        if who.startswith("header:"):
            return "%s: %s" % (self.name, header_value(who[len("header:"):]))
        return "%s: hello %s" % (self.name, who)

    def ping(self, note):
        record("Greeter", "ping", [note])

    def echo(self, payload):
        record("Greeter", "echo", [payload])
        if payload.startswith("header:"):
            return header_value(payload[len("header:"):])
        if payload.startswith("delay:"):
            ms = payload.split(":")[1]
            threading.Event().wait(int(ms) / 1000)
        return payload

    def add(self, a, b):
        record("Greeter", "add", [a, b])
        if a < 0:
            raise GreetError(code=1, message="%s: negative a" % self.name)
        return a + b


class CalculatorHandler:
    def __init__(self, name):
        self.name = name

    def multiply(self, a, b):
        record("Calculator", "multiply", [a, b])
        return a * b

    def whoami(self):
        record("Calculator", "whoami", [])
        return "%s:Calculator" % self.name


class Remembering:
    """Processor wrapper: lets the handlers find the input protocol (and its THeader key/values)."""

    def __init__(self, inner):
        self.inner = inner

    def process(self, iprot, oprot):
        _current.iprot = iprot
        return self.inner.process(iprot, oprot)


class Server(TThreadedServer):
    _conns = 0
    _lock = threading.Lock()

    def handle(self, client):
        with Server._lock:
            Server._conns += 1
            _current.conn = Server._conns
        emit({"connection": _current.conn})
        super().handle(client)


def serve(o):
    if o.multiplexed:
        inner = TMultiplexedProcessor()
        inner.registerProcessor("Greeter", Greeter.Processor(GreeterHandler(o.name)))
        inner.registerProcessor("Calculator", Calculator.Processor(CalculatorHandler(o.name)))
    else:
        inner = Greeter.Processor(GreeterHandler(o.name))
    if o.transport == "header":
        # Every client type the library can detect; it answers each in its own kind.
        allowed = tuple(v for v in CLIENT_TYPES)
        tfactory = TTransport.TTransportFactoryBase()
        pfactory = THeaderProtocolFactory(allowed_client_types=allowed, default_protocol=HEADER_PROTOCOLS[o.protocol])
    else:
        tfactory = TRANSPORT_FACTORIES[o.transport]()
        pfactory = PROTOCOL_FACTORIES[o.protocol]()
    sock = TSocket.TServerSocket(host="127.0.0.1", port=o.port)
    sock.setBacklog(1024)
    sock.listen()
    port = sock.handle.getsockname()[1]
    sock.listen = lambda: None  # already listening; serve() would bind again
    server = Server(Remembering(inner), sock, tfactory, pfactory, daemon=True)
    if o.watch_stdin:
        def watch():
            if sys.stdin is not None:  # None: started with stdin already closed
                sys.stdin.buffer.read()
            os._exit(0)
        threading.Thread(target=watch, daemon=True).start()
    with _out:
        sys.stdout.write("READY port=%d\n" % port)
        sys.stdout.flush()
    server.serve()


# --- client -------------------------------------------------------------------------------------

class TracingSocket(TSocket.TSocket):
    """A TSocket that keeps the bytes it wrote and read since the last take()."""

    def __init__(self, *a, **kw):
        super().__init__(*a, **kw)
        self.sent = bytearray()
        self.received = bytearray()

    def write(self, buff):
        self.sent += buff
        return super().write(buff)

    def read(self, sz):
        b = super().read(sz)
        self.received += b
        return b

    def take(self):
        out = {"sent": self.sent.hex(), "received": self.received.hex()}
        self.sent, self.received = bytearray(), bytearray()
        return out


def describe(err):
    if isinstance(err, GreetError):
        return {"type": "GreetError", "code": err.code, "message": err.message}
    if isinstance(err, TApplicationException):
        return {"type": "TApplicationException", "kind": err.type, "message": err.message}
    if isinstance(err, TException):
        return {"type": type(err).__name__, "kind": getattr(err, "type", None), "message": str(err.message or err)}
    return {"type": type(err).__name__, "message": str(err)}


def run_client(o):
    sock = TracingSocket("127.0.0.1", o.port)
    sock.setTimeout(o.timeout_ms)
    if o.transport == "header":
        prot = THeaderProtocol(sock, (THeaderClientType.HEADERS,), HEADER_PROTOCOLS[o.protocol])
        trans = prot.trans
    else:
        trans = TRANSPORT_FACTORIES[o.transport]().getTransport(sock)
        prot = PROTOCOL_FACTORIES[o.protocol]().getProtocol(trans)
    trans.open()
    clients = {}
    for service, module in (("Greeter", Greeter), ("Calculator", Calculator)):
        clients[service] = module.Client(TMultiplexedProtocol(prot, service) if o.multiplexed else prot)
    base_headers = json.loads(o.headers) if o.headers else {}
    for i, call in enumerate(json.loads(o.calls)):
        service = call.get("service", "Greeter")
        method = call["method"]
        line = {"i": i, "service": service, "method": method}
        if o.transport == "header":
            for k, v in {**base_headers, **call.get("headers", {})}.items():
                prot.set_header(k.encode(), v.encode())
        try:
            line["result"] = getattr(clients[service], method)(*call.get("args", []))
            line["ok"] = True
        except Exception as err:  # noqa: BLE001  every failure is a result to report
            line["ok"] = False
            line["error"] = describe(err)
        if o.transport == "header" and method != "ping":
            line["replyHeaders"] = {text(k): text(v) for k, v in trans.get_headers().items()}
            line["replyFlags"] = trans.flags
        if o.trace:
            line.update(sock.take())
        emit(line)
    trans.close()


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("mode", choices=["server", "client"])
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--name", default="v1")
    p.add_argument("--transport", choices=["framed", "buffered", "header"], default="framed")
    p.add_argument("--protocol", choices=["binary", "compact"], default="binary")
    p.add_argument("--multiplexed", action="store_true")
    p.add_argument("--watch-stdin", action="store_true")
    p.add_argument("--headers", default="")
    p.add_argument("--calls", default='[{"method": "sayHello", "args": ["python"]}]')
    p.add_argument("--timeout-ms", type=int, default=5000)
    p.add_argument("--trace", action="store_true")
    o = p.parse_args()
    if o.mode == "server":
        serve(o)
    else:
        if not o.port:
            p.error("client: --port is required")
        run_client(o)


if __name__ == "__main__":
    main()
