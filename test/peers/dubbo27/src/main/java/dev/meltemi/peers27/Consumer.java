package dev.meltemi.peers27;

import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import java.io.BufferedOutputStream;
import java.io.FileDescriptor;
import java.io.FileOutputStream;
import java.io.PrintStream;
import java.lang.reflect.InvocationTargetException;
import java.lang.reflect.Method;
import java.lang.reflect.UndeclaredThrowableException;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.Semaphore;
import java.util.concurrent.atomic.AtomicLong;
import org.apache.dubbo.config.ApplicationConfig;
import org.apache.dubbo.config.MethodConfig;
import org.apache.dubbo.config.ReferenceConfig;
import org.apache.dubbo.config.RegistryConfig;
import org.apache.dubbo.config.bootstrap.DubboBootstrap;
import org.apache.dubbo.rpc.RpcContext;

/**
 * A Dubbo 2.7 consumer that calls a provider directly by URL (no registry), many times in one JVM,
 * with the 3.3.5 consumer's options and JSON lines. Sync mode: --concurrency threads in a closed
 * loop; --async: one thread keeps up to --concurrency calls in flight (2.7's RpcContext.asyncCall)
 * on the same connection(s). Every reply is checked against its own argument ("match").
 */
final class Consumer {
    private final PrintStream out =
        new PrintStream(new BufferedOutputStream(new FileOutputStream(FileDescriptor.out), 1 << 16), false, StandardCharsets.UTF_8);

    /** Call i invokes methods[i % methods.length]. */
    private Method[] methods;
    private Object service;
    private String template;
    private int payload;
    private Map<String, String> attachments;
    private boolean summaryOnly;
    private boolean oneway;
    private final Stats stats = new Stats();

    static void run(String[] argv) throws Exception {
        new Consumer().main(argv);
    }

    private void main(String[] argv) throws Exception {
        Args a = new Args(argv, 1,
            Set.of("summary", "json", "async", "oneway"),
            Set.of("url", "interface", "method", "arg", "payload", "attachment", "group", "version", "calls",
                "duration", "warmup", "concurrency", "connections", "timeout-ms", "heartbeat-ms", "hold-ms",
                "rounds", "idle-ms"));
        String url = a.get("url", null);
        if (url == null) throw new IllegalArgumentException("--url is required");
        Class<?> iface = Class.forName(a.get("interface", "dev.meltemi.demo.GreetService"));
        String[] names = a.get("method", "sayHello").split(",");
        methods = new Method[names.length];
        for (int k = 0; k < names.length; k++) methods[k] = iface.getMethod(names[k].trim(), String.class);
        template = a.get("arg", "call-{i}");
        payload = a.getInt("payload", 0);
        attachments = a.pairs("attachment");
        summaryOnly = a.flag("summary");
        oneway = a.flag("oneway");
        long calls = Long.parseLong(a.get("calls", "1"));
        String duration = a.get("duration", null);
        long durationMs = duration == null ? 0 : Args.parseDurationMs(duration);
        int warmup = a.getInt("warmup", 0);
        int concurrency = Math.max(1, a.getInt("concurrency", 1));
        int connections = Math.max(1, a.getInt("connections", 1));
        int rounds = Math.max(1, a.getInt("rounds", 1));
        long idleMs = a.getInt("idle-ms", 0);
        boolean async = a.flag("async");

        ApplicationConfig app = new ApplicationConfig("meltemi-consumer");
        app.setQosEnable(false);
        app.setLogger("slf4j");

        ReferenceConfig<Object> ref = new ReferenceConfig<>();
        ref.setInterface(iface);
        ref.setUrl(url);
        ref.setVersion(a.get("version", "1.0.0"));
        String group = a.get("group", null);
        if (group != null) ref.setGroup(group);
        ref.setTimeout(a.getInt("timeout-ms", 5000));
        ref.setRetries(0);                 // an error is an error: no silent failover retries
        ref.setConnections(connections);   // dedicated connections, calls spread round-robin over them
        ref.setCheck(false);
        ref.setFilter(ResponseAttachmentsFilter.NAME); // see there: response attachments on a direct URL
        Map<String, String> params = new HashMap<>();
        params.put("serialization", "hessian2");
        String hb = a.get("heartbeat-ms", null);
        if (hb != null) params.put("heartbeat", hb);
        ref.setParameters(params);
        if (oneway) {
            // return=false: the request goes out without the two-way flag and no response is awaited.
            List<MethodConfig> mcs = new ArrayList<>();
            for (Method m : methods) {
                MethodConfig mc = new MethodConfig();
                mc.setName(m.getName());
                mc.setReturn(false);
                // sent=true: the call returns once its frame is written to the socket. 2.7 returns
                // at once otherwise, and the consumer's halt() at the end could drop the last one.
                mc.setSent(true);
                mcs.add(mc);
            }
            ref.setMethods(mcs);
        }

        DubboBootstrap.getInstance()
            .application(app)
            .registry(new RegistryConfig(RegistryConfig.NO_AVAILABLE))
            .reference(ref)
            .start();
        service = ref.get();

        for (int i = 0; i < warmup; i++) callSync(-1 - i, false);

        long start = System.nanoTime();
        long idleNs = 0;
        long first = 0;
        for (int r = 0; r < rounds; r++) {
            if (r > 0 && idleMs > 0) {
                long t0 = System.nanoTime();
                Thread.sleep(idleMs);
                idleNs += System.nanoTime() - t0;
            }
            long roundStart = System.nanoTime();
            long deadline = durationMs > 0 ? roundStart + durationMs * 1_000_000L : Long.MAX_VALUE;
            long limit = durationMs > 0 ? Long.MAX_VALUE : calls;
            long done = async ? runAsync(first, limit, deadline, concurrency) : runSync(first, limit, deadline, concurrency);
            first += done;
        }
        long elapsed = System.nanoTime() - start - idleNs;

        if (summaryOnly) out.println(Provider.GSON.toJson(stats.summary(elapsed, async ? "async" : "sync",
            concurrency, connections, payload)));
        out.flush();

        long hold = a.getInt("hold-ms", 0);
        if (hold > 0) Thread.sleep(hold); // stay connected and idle: heartbeats flow
        System.err.flush();
        Runtime.getRuntime().halt(0);      // skip Dubbo's graceful shutdown; sockets close with FIN
    }

    /** "{i}" becomes the call index; "{null}" sends a null argument. */
    private String argFor(long i) {
        if (template.equals("{null}")) return null;
        String s = template.replace("{i}", Long.toString(i));
        if (payload > s.length()) {
            StringBuilder sb = new StringBuilder(payload).append(s).append('|');
            while (sb.length() < payload) sb.append('x');
            sb.setLength(payload);
            s = sb.toString();
        }
        return s;
    }

    private Method methodFor(long i) {
        return methods[(int) Math.floorMod(i, (long) methods.length)];
    }

    private long runSync(long first, long limit, long deadline, int concurrency) throws InterruptedException {
        AtomicLong next = new AtomicLong();
        List<Thread> workers = new ArrayList<>();
        for (int w = 0; w < concurrency; w++) {
            Thread t = new Thread(() -> {
                while (System.nanoTime() < deadline) {
                    long i = next.getAndIncrement();
                    if (i >= limit) break;
                    callSync(first + i, true);
                }
            }, "caller-" + w);
            t.start();
            workers.add(t);
        }
        for (Thread t : workers) t.join();
        return Math.min(next.get(), limit);
    }

    private void callSync(long i, boolean record) {
        String arg = argFor(i);
        Method method = methodFor(i);
        setAttachments();
        long t0 = System.nanoTime();
        Object result = null;
        Throwable error = null;
        try {
            result = method.invoke(service, arg);
        } catch (Throwable e) {
            error = e;
        }
        long ns = System.nanoTime() - t0;
        // 2.7: the response's attachments in the (thread-local) server context (ResponseAttachmentsFilter).
        Map<String, Object> responseAttachments = RpcContext.getServerContext().getObjectAttachments();
        if (record) complete(i, method, arg, result, error, ns, responseAttachments);
    }

    private long runAsync(long first, long limit, long deadline, int window) throws InterruptedException {
        Semaphore inFlight = new Semaphore(window);
        long n = 0;
        for (; n < limit && System.nanoTime() < deadline; n++) {
            inFlight.acquire();
            final long idx = first + n;
            String arg = argFor(idx);
            Method method = methodFor(idx);
            setAttachments();
            long t0 = System.nanoTime();
            CompletableFuture<Object> f;
            try {
                // 2.7: the proxy returns null at once and the call's future is left in RpcContext.
                f = RpcContext.getContext().asyncCall(() -> method.invoke(service, arg));
            } catch (Throwable e) {
                f = CompletableFuture.failedFuture(e);
            }
            f.whenComplete((result, error) -> {
                complete(idx, method, arg, result, error, System.nanoTime() - t0, null);
                inFlight.release();
            });
        }
        inFlight.acquire(window); // wait for the stragglers
        inFlight.release(window);
        return n;
    }

    private void setAttachments() {
        for (Map.Entry<String, String> e : attachments.entrySet()) {
            RpcContext.getContext().setAttachment(e.getKey(), e.getValue());
        }
    }

    private void complete(long i, Method method, String arg, Object result, Throwable error, long ns, Map<String, Object> respAtt) {
        Map<String, Object> line = new LinkedHashMap<>();
        line.put("i", i);
        line.put("method", method.getName());
        line.put("ok", error == null);
        line.put("latencyMs", ns / 1e6);
        String server = null;
        boolean match = true;
        if (error != null) {
            Throwable root = unwrap(error);
            line.put("error", root.getClass().getName() + ": " + root.getMessage());
        } else if (oneway) {
            line.put("oneway", true);
        } else {
            String text = String.valueOf(result);
            if (arg == null) {
                match = result == null;
                line.put("reply", result);
            } else if (method.getName().equals("echo")) {
                match = text.equals(arg);
                line.put("bytes", text.length());
            } else {
                JsonObject o = tryParse(text);
                if (o != null) {
                    server = o.has("server") ? o.get("server").getAsString() : null;
                    String reply = o.has("reply") ? o.get("reply").getAsString() : "";
                    match = reply.endsWith(" " + arg);
                    line.put("server", server);
                    line.put("reply", reply);
                    if (o.has("version")) line.put("version", o.get("version").getAsString());
                    if (o.has("group")) line.put("group", o.get("group").getAsString());
                    if (o.has("dubbo")) line.put("dubbo", o.get("dubbo").getAsString());
                    line.put("attachments", o.get("attachments"));
                    if (o.has("invocationAttachments")) line.put("invocationAttachments", o.get("invocationAttachments"));
                    if (o.has("remote")) line.put("remote", o.get("remote").getAsString());
                } else {
                    match = text.contains(arg);
                    line.put("reply", text);
                }
            }
            line.put("match", match);
            if (!match) line.put("arg", arg);
        }
        if (respAtt != null && !respAtt.isEmpty()) {
            Map<String, String> m = new TreeMap<>();
            respAtt.forEach((k, v) -> m.put(k, String.valueOf(v)));
            line.put("responseAttachments", m);
        }
        stats.record(ns, error == null, match, server, error == null ? null : (String) line.get("error"));
        if (!summaryOnly) {
            String json = Provider.GSON.toJson(line);
            synchronized (out) { out.println(json); }
        }
    }

    private static JsonObject tryParse(String text) {
        if (!text.startsWith("{")) return null;
        try {
            JsonElement e = JsonParser.parseString(text);
            return e.isJsonObject() ? e.getAsJsonObject() : null;
        } catch (RuntimeException e) {
            return null;
        }
    }

    /** The exception the application would see: past reflection's and the futures' wrappers. */
    private static Throwable unwrap(Throwable e) {
        while ((e instanceof InvocationTargetException || e instanceof CompletionException
                || e instanceof ExecutionException || e instanceof UndeclaredThrowableException) && e.getCause() != null) {
            e = e.getCause();
        }
        return e;
    }

    /** Thread-safe counters and latency samples. */
    static final class Stats {
        private long[] lat = new long[1 << 16];
        private int n;
        private long ok, errors, mismatches;
        private final Map<String, Long> servers = new TreeMap<>();
        private final List<String> errorSamples = new ArrayList<>();

        synchronized void record(long ns, boolean isOk, boolean match, String server, String error) {
            if (n == lat.length) lat = Arrays.copyOf(lat, n * 2);
            lat[n++] = ns;
            if (isOk) ok++; else errors++;
            if (isOk && !match) mismatches++;
            if (server != null) servers.merge(server, 1L, Long::sum);
            if (error != null && errorSamples.size() < 5) errorSamples.add(error);
        }

        synchronized Map<String, Object> summary(long elapsedNs, String mode, int concurrency, int connections, int payload) {
            long[] s = Arrays.copyOf(lat, n);
            Arrays.sort(s);
            double secs = elapsedNs / 1e9;
            Map<String, Object> m = new LinkedHashMap<>();
            m.put("mode", mode);
            m.put("concurrency", concurrency);
            m.put("connections", connections);
            m.put("payload", payload);
            m.put("calls", (long) n);
            m.put("ok", ok);
            m.put("errors", errors);
            m.put("mismatches", mismatches);
            m.put("durationMs", round(elapsedNs / 1e6));
            m.put("throughput", round(secs > 0 ? ok / secs : 0));
            m.put("p50Ms", pct(s, 0.50));
            m.put("p90Ms", pct(s, 0.90));
            m.put("p99Ms", pct(s, 0.99));
            m.put("maxMs", n == 0 ? 0 : round(s[n - 1] / 1e6));
            m.put("servers", servers);
            if (!errorSamples.isEmpty()) m.put("errorSamples", errorSamples);
            return m;
        }

        private static double pct(long[] s, double p) {
            if (s.length == 0) return 0;
            int idx = (int) Math.ceil(p * s.length) - 1;
            return round(s[Math.max(0, Math.min(s.length - 1, idx))] / 1e6);
        }

        private static double round(double v) {
            return Math.round(v * 1000) / 1000.0;
        }
    }
}
