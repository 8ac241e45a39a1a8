package dev.meltemi.thriftpeer;

import com.google.gson.JsonArray;
import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import dev.meltemi.thrift.Calculator;
import dev.meltemi.thrift.GreetError;
import dev.meltemi.thrift.Greeter;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import org.apache.thrift.TApplicationException;
import org.apache.thrift.TConfiguration;
import org.apache.thrift.async.AsyncMethodCallback;
import org.apache.thrift.async.TAsyncClientManager;
import org.apache.thrift.protocol.TMultiplexedProtocol;
import org.apache.thrift.protocol.TProtocol;
import org.apache.thrift.protocol.TProtocolException;
import org.apache.thrift.protocol.TProtocolFactory;
import org.apache.thrift.transport.TNonblockingSocket;
import org.apache.thrift.transport.TSocket;
import org.apache.thrift.transport.TTransport;
import org.apache.thrift.transport.TTransportException;
import org.apache.thrift.transport.layered.TFramedTransport;

/**
 * Makes the calls of --calls in order on ONE connection and prints one JSON line per call:
 * {@code {"i", "service", "method", "ok", "result" | "error": {"type", "message", "kind"|"code"}}},
 * with --trace also the bytes the call wrote and read, as hex ("sent", "received"; sync only).
 *
 * <p>Sync (default): Greeter.Client and Calculator.Client (TServiceClient) over one TSocket, in a
 * TFramedTransport when framed; each client numbers its calls 1, 2, ... and refuses a reply whose
 * seqid is not its call's (BAD_SEQUENCE_ID).
 *
 * <p>--async: Greeter.AsyncClient and Calculator.AsyncClient on one TNonblockingSocket and one
 * TAsyncClientManager (its selector thread does the I/O). A TAsyncClient takes one call at a time
 * (a second one while one is outstanding is an IllegalStateException), so each call is started
 * when the previous one's callback has fired: back to back on the connection, never two at once.
 * The async calls always frame (TAsyncMethodCall writes the size word), write seqid 0 and expect 0
 * back. A call that ends in an exception, declared (GreetError) or TApplicationException, puts the
 * client in an error state and closes the connection (TAsyncClient.onError): later calls get
 * IllegalStateException "Client has an error!" (Greeter) or a closed channel (Calculator). That is
 * the library, and happens with no proxy too.
 */
final class PeerClient {
    private static final Set<String> FLAGS = Set.of("multiplexed", "async", "trace");
    private static final Set<String> OPTIONS = Set.of("port", "transport", "protocol", "calls", "timeout-ms");

    private PeerClient() {}

    static int run(String[] argv) throws Exception {
        Args a = new Args(argv, 1, FLAGS, OPTIONS);
        int port = a.getInt("port", 0);
        if (port == 0) throw new IllegalArgumentException("client: --port is required");
        String transport = a.choice("transport", "framed", "framed", "buffered");
        String protocol = a.choice("protocol", "binary", "binary", "compact");
        boolean multiplexed = a.flag("multiplexed");
        int timeoutMs = a.getInt("timeout-ms", 5000);
        JsonArray calls = JsonParser.parseString(a.get("calls", "[{\"method\":\"sayHello\",\"args\":[\"java\"]}]")).getAsJsonArray();
        TProtocolFactory pf = PeerServer.protocolFactory(protocol);
        if (a.flag("async")) {
            if (!transport.equals("framed")) throw new IllegalArgumentException("--async: TAsyncClient frames every call; use --transport framed");
            runAsync(port, pf, multiplexed, timeoutMs, calls);
        } else {
            runSync(port, transport, pf, multiplexed, timeoutMs, calls, a.flag("trace"));
        }
        return 0;
    }

    private static Map<String, Object> line(int i, JsonObject call) {
        Map<String, Object> l = new LinkedHashMap<>();
        l.put("i", i);
        l.put("service", service(call));
        l.put("method", call.get("method").getAsString());
        return l;
    }

    private static String service(JsonObject call) {
        return call.has("service") ? call.get("service").getAsString() : "Greeter";
    }

    private static JsonArray args(JsonObject call) {
        return call.has("args") ? call.getAsJsonArray("args") : new JsonArray();
    }

    private static String str(JsonArray args, int i) { return args.get(i).getAsString(); }

    private static int num(JsonArray args, int i) { return args.get(i).getAsInt(); }

    // --- sync -----------------------------------------------------------------------------------

    private static void runSync(int port, String transport, TProtocolFactory pf, boolean multiplexed, int timeoutMs,
                                JsonArray calls, boolean trace) throws TTransportException {
        TSocket socket = new TSocket(new TConfiguration(), "127.0.0.1", port, timeoutMs);
        Tracing tracing = new Tracing(socket);
        TTransport t = transport.equals("framed") ? new TFramedTransport(tracing) : tracing;
        t.open();
        TProtocol p = pf.getProtocol(t);
        Greeter.Client greeter = new Greeter.Client(multiplexed ? new TMultiplexedProtocol(p, "Greeter") : p);
        Calculator.Client calculator = new Calculator.Client(multiplexed ? new TMultiplexedProtocol(p, "Calculator") : p);
        for (int i = 0; i < calls.size(); i++) {
            JsonObject call = calls.get(i).getAsJsonObject();
            Map<String, Object> l = line(i, call);
            try {
                l.put("result", callSync(greeter, calculator, call));
                l.put("ok", true);
            } catch (Exception e) {
                l.put("ok", false);
                l.put("error", describe(e));
            }
            if (trace) {
                String[] bytes = tracing.take();
                l.put("sent", bytes[0]);
                l.put("received", bytes[1]);
            }
            Out.json(l);
        }
        t.close();
    }

    private static Object callSync(Greeter.Client g, Calculator.Client c, JsonObject call) throws Exception {
        String method = call.get("method").getAsString();
        JsonArray x = args(call);
        if (service(call).equals("Calculator")) {
            return switch (method) {
                case "multiply" -> c.multiply(num(x, 0), num(x, 1));
                case "whoami" -> c.whoami();
                default -> throw new IllegalArgumentException("Calculator has no method " + method);
            };
        }
        return switch (method) {
            case "sayHello" -> g.sayHello(str(x, 0));
            case "echo" -> g.echo(str(x, 0));
            case "add" -> g.add(num(x, 0), num(x, 1));
            case "ping" -> { g.ping(str(x, 0)); yield null; }
            default -> throw new IllegalArgumentException("Greeter has no method " + method);
        };
    }

    // --- async ----------------------------------------------------------------------------------

    /** A TProtocolFactory whose protocols prefix every call with "SERVICE:" (TMultiplexedProtocol). */
    private static TProtocolFactory muxed(TProtocolFactory pf, String service) {
        return trans -> new TMultiplexedProtocol(pf.getProtocol(trans), service);
    }

    private static void runAsync(int port, TProtocolFactory pf, boolean multiplexed, int timeoutMs, JsonArray calls)
            throws Exception {
        TAsyncClientManager manager = new TAsyncClientManager();
        TNonblockingSocket socket = new TNonblockingSocket("127.0.0.1", port, timeoutMs);
        Greeter.AsyncClient greeter = new Greeter.AsyncClient(multiplexed ? muxed(pf, "Greeter") : pf, manager, socket);
        Calculator.AsyncClient calculator = new Calculator.AsyncClient(multiplexed ? muxed(pf, "Calculator") : pf, manager, socket);
        greeter.setTimeout(timeoutMs);
        calculator.setTimeout(timeoutMs);
        for (int i = 0; i < calls.size(); i++) {
            JsonObject call = calls.get(i).getAsJsonObject();
            Map<String, Object> l = line(i, call);
            CompletableFuture<Object> done = new CompletableFuture<>();
            try {
                callAsync(greeter, calculator, call, done);
                // The manager's own timeout ends the call first; this only bounds a lost callback.
                l.put("result", done.get(timeoutMs + 5000L, TimeUnit.MILLISECONDS));
                l.put("ok", true);
            } catch (ExecutionException e) {
                l.put("ok", false);
                l.put("error", describe(e.getCause()));
            } catch (Exception e) {
                l.put("ok", false);
                l.put("error", describe(e));
            }
            Out.json(l);
        }
        socket.close();
        manager.stop();
    }

    private static <T> AsyncMethodCallback<T> to(CompletableFuture<Object> f) {
        return new AsyncMethodCallback<>() {
            @Override public void onComplete(T response) { f.complete(response); }
            @Override public void onError(Exception e) { f.completeExceptionally(e); }
        };
    }

    private static void callAsync(Greeter.AsyncClient g, Calculator.AsyncClient c, JsonObject call,
                                  CompletableFuture<Object> f) throws Exception {
        String method = call.get("method").getAsString();
        JsonArray x = args(call);
        if (service(call).equals("Calculator")) {
            switch (method) {
                case "multiply" -> c.multiply(num(x, 0), num(x, 1), to(f));
                case "whoami" -> c.whoami(to(f));
                default -> throw new IllegalArgumentException("Calculator has no method " + method);
            }
            return;
        }
        switch (method) {
            case "sayHello" -> g.sayHello(str(x, 0), to(f));
            case "echo" -> g.echo(str(x, 0), to(f));
            case "add" -> g.add(num(x, 0), num(x, 1), to(f));
            case "ping" -> g.ping(str(x, 0), to(f));
            default -> throw new IllegalArgumentException("Greeter has no method " + method);
        }
    }

    // --- errors ---------------------------------------------------------------------------------

    static Map<String, Object> describe(Throwable e) {
        Map<String, Object> d = new LinkedHashMap<>();
        d.put("type", e.getClass().getSimpleName());
        if (e instanceof GreetError g) {
            d.put("code", g.getCode());
            d.put("message", g.getMessage());
        } else if (e instanceof TApplicationException x) {
            d.put("kind", x.getType());
            d.put("message", x.getMessage());
        } else if (e instanceof TTransportException x) {
            d.put("kind", x.getType());
            d.put("message", String.valueOf(x.getMessage()));
        } else if (e instanceof TProtocolException x) {
            d.put("kind", x.getType());
            d.put("message", String.valueOf(x.getMessage()));
        } else if (e instanceof TimeoutException) {
            d.put("message", String.valueOf(e.getMessage()));
        } else {
            d.put("message", String.valueOf(e.getMessage()));
        }
        return d;
    }
}
