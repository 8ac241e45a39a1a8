package dev.meltemi.thriftpeer;

import dev.meltemi.thrift.Calculator;
import dev.meltemi.thrift.GreetError;
import dev.meltemi.thrift.Greeter;
import java.io.InputStream;
import java.net.InetSocketAddress;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.atomic.AtomicInteger;
import org.apache.thrift.TMultiplexedProcessor;
import org.apache.thrift.TProcessor;
import org.apache.thrift.protocol.TBinaryProtocol;
import org.apache.thrift.protocol.TCompactProtocol;
import org.apache.thrift.protocol.TProtocol;
import org.apache.thrift.protocol.TProtocolFactory;
import org.apache.thrift.server.AbstractNonblockingServer;
import org.apache.thrift.server.ServerContext;
import org.apache.thrift.server.THsHaServer;
import org.apache.thrift.server.TNonblockingServer;
import org.apache.thrift.server.TServer;
import org.apache.thrift.server.TServerEventHandler;
import org.apache.thrift.server.TThreadPoolServer;
import org.apache.thrift.server.TThreadedSelectorServer;
import org.apache.thrift.transport.TNonblockingServerSocket;
import org.apache.thrift.transport.TServerSocket;
import org.apache.thrift.transport.TTransport;
import org.apache.thrift.transport.TTransportFactory;
import org.apache.thrift.transport.layered.TFramedTransport;

/**
 * The Greeter server (Greeter and Calculator under TMultiplexedProcessor with --multiplexed) on one
 * of libthrift's servers:
 * <ul>
 *   <li>threadpool: TThreadPoolServer over TServerSocket, a thread per connection, framed
 *       (TFramedTransport) or buffered (the bare TSocket stream, unframed);</li>
 *   <li>nonblocking: TNonblockingServer, one selector thread that also runs the calls;</li>
 *   <li>hsha: THsHaServer, one selector thread and a worker pool;</li>
 *   <li>selector: TThreadedSelectorServer, an accept thread, two selector threads, a worker pool.</li>
 * </ul>
 * The three non-blocking servers read length-prefixed frames only (their FrameBuffer reads the
 * 4-byte size first), so they take --transport framed only. Binary is TBinaryProtocol with strict
 * read and strict write (a message without the version word is refused), compact TCompactProtocol.
 *
 * <p>stdout: {@code READY port=N} once serving, then {@code {"connection": n}} per accepted
 * connection, {@code {"closed": n}} when it ends, and per call
 * {@code {"call": {"name", "service", "method", "args", "conn"}}}.
 */
final class PeerServer {
    private static final Set<String> FLAGS = Set.of("multiplexed", "watch-stdin");
    private static final Set<String> OPTIONS = Set.of("port", "name", "server", "transport", "protocol");

    private static final AtomicInteger CONNS = new AtomicInteger();
    /** The connection whose call this thread runs (set by the event handler before each call). */
    private static final ThreadLocal<Integer> CURRENT = new ThreadLocal<>();

    private PeerServer() {}

    static TProtocolFactory protocolFactory(String protocol) {
        return protocol.equals("compact") ? new TCompactProtocol.Factory() : new TBinaryProtocol.Factory(true, true);
    }

    static void run(String[] argv) throws Exception {
        Args a = new Args(argv, 1, FLAGS, OPTIONS);
        String name = a.get("name", "v1");
        String kind = a.choice("server", "threadpool", "threadpool", "nonblocking", "hsha", "selector");
        String transport = a.choice("transport", "framed", "framed", "buffered");
        String protocol = a.choice("protocol", "binary", "binary", "compact");
        boolean multiplexed = a.flag("multiplexed");
        if (!kind.equals("threadpool") && !transport.equals("framed")) {
            throw new IllegalArgumentException("--server " + kind + " reads framed calls only (libthrift's FrameBuffer); use --transport framed");
        }
        InetSocketAddress bind = new InetSocketAddress("127.0.0.1", a.getInt("port", 0));

        TProcessor processor;
        if (multiplexed) {
            TMultiplexedProcessor mux = new TMultiplexedProcessor();
            mux.registerProcessor("Greeter", new Greeter.Processor<>(new GreeterHandler(name)));
            mux.registerProcessor("Calculator", new Calculator.Processor<>(new CalculatorHandler(name)));
            processor = mux;
        } else {
            processor = new Greeter.Processor<>(new GreeterHandler(name));
        }
        TProtocolFactory pf = protocolFactory(protocol);

        TServer server;
        int port;
        if (kind.equals("threadpool")) {
            TServerSocket sock = new TServerSocket(new TServerSocket.ServerSocketTransportArgs().bindAddr(bind).backlog(1024));
            port = sock.getServerSocket().getLocalPort();
            TTransportFactory tf = transport.equals("framed") ? new TFramedTransport.Factory() : new TTransportFactory();
            server = new TThreadPoolServer(new TThreadPoolServer.Args(sock).processor(processor)
                .transportFactory(tf).protocolFactory(pf).minWorkerThreads(2).maxWorkerThreads(256));
        } else {
            TNonblockingServerSocket sock = new TNonblockingServerSocket(
                new TNonblockingServerSocket.NonblockingAbstractServerSocketArgs().bindAddr(bind).backlog(1024));
            port = sock.getPort();
            // The Args' default transport factory is TFramedTransport.Factory: the FrameBuffer keeps
            // the size word in front of each frame it read, and the framed transport reads it again.
            AbstractNonblockingServer.AbstractNonblockingServerArgs<?> args = switch (kind) {
                case "nonblocking" -> new TNonblockingServer.Args(sock);
                case "hsha" -> new THsHaServer.Args(sock).workerThreads(4);
                default -> new TThreadedSelectorServer.Args(sock).selectorThreads(2).workerThreads(4);
            };
            args.processor(processor).protocolFactory(pf);
            server = switch (kind) {
                case "nonblocking" -> new TNonblockingServer((TNonblockingServer.Args) args);
                case "hsha" -> new THsHaServer((THsHaServer.Args) args);
                default -> new TThreadedSelectorServer((TThreadedSelectorServer.Args) args);
            };
        }
        server.setServerEventHandler(new Events());

        if (a.flag("watch-stdin")) {
            Thread w = new Thread(() -> {
                try (InputStream in = System.in) {
                    while (in.read() >= 0) { /* until EOF */ }
                } catch (Exception ignored) {
                    // stdin gone: same as EOF
                }
                Runtime.getRuntime().halt(0);
            }, "watch-stdin");
            w.setDaemon(true);
            w.start();
        }

        final TServer s = server;
        Thread serving = new Thread(s::serve, "serve");
        serving.start();
        // The sockets listen from their constructors; READY once the server says it is serving (it
        // sets that after its threads and the accept loop are up). Polled: TThreadedSelectorServer
        // does not call the event handler's preServe().
        while (!s.isServing()) {
            if (!serving.isAlive()) {
                System.err.println("server " + kind + " stopped before serving");
                System.exit(1);
            }
            Thread.sleep(2);
        }
        Out.line("READY port=" + port);
        serving.join();
    }

    /** Connection numbers, and which connection each call belongs to. */
    static final class Events implements TServerEventHandler {
        static final class Conn implements ServerContext {
            final int id = CONNS.incrementAndGet();

            @Override public <T> T unwrap(Class<T> iface) { return iface.cast(this); }
            @Override public boolean isWrapperFor(Class<?> iface) { return iface.isInstance(this); }
        }

        @Override public void preServe() {}

        @Override
        public ServerContext createContext(TProtocol input, TProtocol output) {
            Conn c = new Conn();
            Out.json(Map.of("connection", c.id));
            return c;
        }

        @Override
        public void deleteContext(ServerContext ctx, TProtocol input, TProtocol output) {
            Out.json(Map.of("closed", ((Conn) ctx).id));
        }

        @Override
        public void processContext(ServerContext ctx, TTransport in, TTransport out) {
            CURRENT.set(((Conn) ctx).id);
        }
    }

    static void record(String name, String service, String method, List<Object> args) {
        Map<String, Object> call = new LinkedHashMap<>();
        call.put("name", name);
        call.put("service", service);
        call.put("method", method);
        call.put("args", args);
        call.put("conn", CURRENT.get());
        Out.json(Map.of("call", call));
    }

    /**
     * The other peers' Greeter (python_peer.py, index.mjs): sayHello answers "NAME: hello WHO", echo
     * its payload ("delay:MS:..." after MS ms), add a + b or GreetError{1, "NAME: negative a"} when
     * a &lt; 0, ping (oneway) is recorded only.
     */
    static final class GreeterHandler implements Greeter.Iface {
        private final String name;

        GreeterHandler(String name) { this.name = name; }

        @Override
        public String sayHello(String who) {
            record(name, "Greeter", "sayHello", List.of(who));
            return name + ": hello " + who;
        }

        @Override
        public void ping(String note) {
            record(name, "Greeter", "ping", List.of(note));
        }

        @Override
        public String echo(String payload) {
            record(name, "Greeter", "echo", List.of(payload));
            if (payload.startsWith("delay:")) {
                try {
                    Thread.sleep(Long.parseLong(payload.split(":")[1]));
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                }
            }
            return payload;
        }

        @Override
        public int add(int x, int y) throws GreetError {
            record(name, "Greeter", "add", List.of(x, y));
            if (x < 0) throw new GreetError(1, name + ": negative a");
            return x + y;
        }
    }

    /** multiply(a, b) = a * b; whoami() = "NAME:Calculator". */
    static final class CalculatorHandler implements Calculator.Iface {
        private final String name;

        CalculatorHandler(String name) { this.name = name; }

        @Override
        public int multiply(int x, int y) {
            record(name, "Calculator", "multiply", List.of(x, y));
            return x * y;
        }

        @Override
        public String whoami() {
            record(name, "Calculator", "whoami", List.of());
            return name + ":Calculator";
        }
    }
}
