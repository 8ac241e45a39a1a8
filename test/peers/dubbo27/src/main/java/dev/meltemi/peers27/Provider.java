package dev.meltemi.peers27;

import com.google.gson.Gson;
import com.google.gson.GsonBuilder;
import dev.meltemi.demo.GreetService;
import dev.meltemi.demo.OrderService;
import java.io.IOException;
import java.io.InputStream;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.concurrent.ThreadLocalRandom;
import org.apache.dubbo.common.Version;
import org.apache.dubbo.config.ApplicationConfig;
import org.apache.dubbo.config.ProtocolConfig;
import org.apache.dubbo.config.RegistryConfig;
import org.apache.dubbo.config.ServiceConfig;
import org.apache.dubbo.config.bootstrap.DubboBootstrap;
import org.apache.dubbo.rpc.Invocation;
import org.apache.dubbo.rpc.RpcContext;

/**
 * A plain Dubbo 2.7 provider: dubbo protocol, netty4, hessian2, no registry. 2.7's context API is
 * the single RpcContext (getContext() for the call, getServerContext() for response attachments);
 * 3.x split it into client/server attachment and service contexts.
 */
final class Provider {
    static final Gson GSON = new GsonBuilder().disableHtmlEscaping().serializeNulls().create();

    static void run(String[] argv) throws Exception {
        Args a = new Args(argv, 1,
            Set.of("watch-stdin"),
            Set.of("port", "name", "host", "group", "version", "reply-attachment", "jitter-ms", "threads", "heartbeat-ms"));
        String name = a.get("name", "v1");
        String host = a.get("host", "127.0.0.1");
        int port = a.getInt("port", 0);
        if (port == 0) port = freePort(host);
        // Comma lists: every service is exported once per (version, group); an empty group entry
        // (e.g. "--group ,canary") exports it without a group as well.
        String[] versions = a.get("version", "1.0.0").split(",");
        String[] groups = a.get("group", "").split(",", -1);
        Map<String, String> replyAttachments = a.pairs("reply-attachment");
        int jitterMs = a.getInt("jitter-ms", 0);

        if (a.flag("watch-stdin")) watchStdin();

        ApplicationConfig app = new ApplicationConfig("meltemi-provider-" + name);
        app.setQosEnable(false);
        app.setLogger("slf4j");

        ProtocolConfig proto = new ProtocolConfig("dubbo", port);
        proto.setHost(host);
        proto.setSerialization("hessian2");
        proto.setThreads(a.getInt("threads", 200));
        // 2.7's server sends no heartbeats of its own: the heartbeat sets its idle limit (3x), after
        // which it closes a connection that neither called nor sent a heartbeat.
        String hb = a.get("heartbeat-ms", null);
        if (hb != null) proto.setHeartbeat(Integer.parseInt(hb));

        DubboBootstrap bootstrap = DubboBootstrap.getInstance()
            .application(app)
            .registry(new RegistryConfig(RegistryConfig.NO_AVAILABLE))
            .protocol(proto);
        for (String version : versions) {
            for (String g : groups) {
                String group = g.isEmpty() ? null : g;
                Behaviour b = new Behaviour(name, group, version, replyAttachments, jitterMs);
                // 2.7's ConfigManager drops a ServiceConfig equal to one it has (and equality
                // ignores the interface): give each export its own id.
                String id = ":" + version + ":" + g;
                ServiceConfig<GreetService> greet = new ServiceConfig<>();
                greet.setId("greet" + id);
                greet.setInterface(GreetService.class);
                greet.setRef(new GreetImpl(b));
                greet.setVersion(version);
                if (group != null) greet.setGroup(group);
                ServiceConfig<OrderService> order = new ServiceConfig<>();
                order.setId("order" + id);
                order.setInterface(OrderService.class);
                order.setRef(new OrderImpl(b));
                order.setVersion(version);
                if (group != null) order.setGroup(group);
                bootstrap.service(greet).service(order);
            }
        }
        bootstrap.start();
        // On SIGTERM 2.7's shutdown hook sends the READONLY event to every client at once, waits
        // for calls in flight (dubbo.service.shutdown.wait, 500 ms here), then spends about 5 s in
        // netty's graceful shutdown. Hooks run side by side: this one ends the JVM after 1.5 s.
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            try {
                Thread.sleep(1500);
            } catch (InterruptedException ignored) {
                // halt now
            }
            Runtime.getRuntime().halt(0);
        }, "meltemi-halt"));

        waitAccepting(host, port);
        System.out.println("READY port=" + port);
        System.out.flush();
        Thread.currentThread().join(); // Dubbo's threads keep serving until SIGTERM
    }

    /** Ask the kernel for a free port (Dubbo itself would pick 20880 for port 0). */
    private static int freePort(String host) throws IOException {
        try (ServerSocket s = new ServerSocket()) {
            s.setReuseAddress(true);
            s.bind(new InetSocketAddress(host, 0));
            return s.getLocalPort();
        }
    }

    private static void waitAccepting(String host, int port) throws InterruptedException {
        String probe = host.equals("0.0.0.0") ? "127.0.0.1" : host;
        for (int i = 0; i < 200; i++) {
            try (Socket s = new Socket()) {
                s.connect(new InetSocketAddress(probe, port), 1000);
                return;
            } catch (IOException e) {
                Thread.sleep(50);
            }
        }
        throw new IllegalStateException("provider port " + port + " never accepted a connection");
    }

    /** Exit when the parent closes our stdin (or dies): no orphan JVMs after a crashed test run. */
    private static void watchStdin() {
        Thread t = new Thread(() -> {
            try {
                InputStream in = System.in;
                byte[] buf = new byte[256];
                while (in.read(buf) >= 0) { /* ignore input */ }
            } catch (IOException ignored) {
                // treat as EOF
            }
            Runtime.getRuntime().halt(0);
        }, "stdin-watch");
        t.setDaemon(true);
        t.start();
    }

    /** What every method does around its own reply. */
    static final class Behaviour {
        final String name;
        final String group;
        final String version;
        final Map<String, String> replyAttachments;
        final int jitterMs;

        Behaviour(String name, String group, String version, Map<String, String> replyAttachments, int jitterMs) {
            this.name = name;
            this.group = group;
            this.version = version;
            this.replyAttachments = replyAttachments;
            this.jitterMs = jitterMs;
        }

        void before() {
            if (jitterMs > 0) {
                try {
                    Thread.sleep(ThreadLocalRandom.current().nextInt(jitterMs + 1));
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                }
            }
            // 2.7's ContextFilter copies the server context's attachments into the response.
            for (Map.Entry<String, String> e : replyAttachments.entrySet()) {
                RpcContext.getServerContext().setAttachment(e.getKey(), e.getValue());
            }
        }

        String reply(String iface, String method, String reply) {
            RpcContext ctx = RpcContext.getContext();
            Map<String, Object> out = new LinkedHashMap<>();
            out.put("server", name);
            out.put("reply", reply);
            out.put("interface", iface);
            out.put("method", method);
            out.put("version", version);
            if (group != null) out.put("group", group);
            // The framework that answered (the 3.3.5 provider leaves this out).
            out.put("dubbo", Version.getVersion());
            // What the application sees: 2.7's ContextFilter leaves path/interface/version/timeout/... out.
            out.put("attachments", stringMap(ctx.getObjectAttachments()));
            // Everything that came in the request's attachment map, as decoded off the wire.
            Invocation inv = ctx.getInvocation();
            if (inv != null) out.put("invocationAttachments", stringMap(inv.getObjectAttachments()));
            out.put("remote", ctx.getRemoteAddressString());
            return GSON.toJson(out);
        }

        private static Map<String, String> stringMap(Map<String, Object> m) {
            Map<String, String> out = new TreeMap<>();
            if (m != null) m.forEach((k, v) -> out.put(k, String.valueOf(v)));
            return out;
        }
    }

    static final class GreetImpl implements GreetService {
        private final Behaviour b;

        GreetImpl(Behaviour b) { this.b = b; }

        @Override
        public String sayHello(String name) {
            b.before();
            return b.reply(GreetService.class.getName(), "sayHello", "hello " + name);
        }

        @Override
        public String echo(String payload) {
            b.before();
            return payload;
        }

        @Override
        public String fail(String message) {
            b.before();
            throw new IllegalStateException(message);
        }
    }

    static final class OrderImpl implements OrderService {
        private final Behaviour b;

        OrderImpl(Behaviour b) { this.b = b; }

        @Override
        public String getOrder(String id) {
            b.before();
            return b.reply(OrderService.class.getName(), "getOrder", "order " + id);
        }
    }
}
