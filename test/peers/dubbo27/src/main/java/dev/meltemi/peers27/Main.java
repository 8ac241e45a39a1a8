package dev.meltemi.peers27;

/**
 * Entry point: {@code java -jar meltemi-dubbo27-peers.jar provider|consumer [options]}, Apache
 * Dubbo 2.7 with the same command line and output as the 3.3.5 peers (test/peers/dubbo).
 * stdout carries only the READY line (provider) or JSON (consumer); logs go to stderr at WARN.
 */
public final class Main {
    public static void main(String[] argv) throws Exception {
        quietLogs();
        pinLoopback();
        if (argv.length == 0 || argv[0].equals("--help") || argv[0].equals("-h")) {
            usage();
            System.exit(argv.length == 0 ? 2 : 0);
        }
        try {
            switch (argv[0]) {
                case "provider" -> Provider.run(argv);
                case "consumer" -> Consumer.run(argv);
                default -> { usage(); System.exit(2); }
            }
        } catch (IllegalArgumentException e) {
            System.err.println("error: " + e.getMessage());
            usage();
            System.exit(2);
        }
    }

    static void quietLogs() {
        setDefault("org.slf4j.simpleLogger.defaultLogLevel", "warn");
        setDefault("org.slf4j.simpleLogger.logFile", "System.err");
        setDefault("dubbo.application.logger", "slf4j");
        // Don't let a graceful shutdown hold a test up for Dubbo's default 10 s.
        setDefault("dubbo.service.shutdown.wait", "500");
        // No QoS telnet port (22222).
        setDefault("dubbo.application.qos.enable", "false");
    }

    /**
     * Dubbo 2.7, like 3.x, replaces 127.0.0.1/localhost in a direct URL with the host's first LAN
     * address (NetUtils.filterLocalHost -> getLocalHost), so `--url dubbo://127.0.0.1:P` would dial
     * eth0's address and miss a proxy listening on loopback. Pin Dubbo's idea of "the local host"
     * to 127.0.0.1. -Dmeltemi.pinLoopback=false turns this off.
     */
    static void pinLoopback() {
        if ("false".equals(System.getProperty("meltemi.pinLoopback"))) return;
        try {
            java.lang.reflect.Field f = org.apache.dubbo.common.utils.NetUtils.class.getDeclaredField("HOST_ADDRESS");
            f.setAccessible(true);
            f.set(null, "127.0.0.1");
        } catch (ReflectiveOperationException | RuntimeException e) {
            System.err.println("warning: could not pin Dubbo's local host to 127.0.0.1: " + e);
        }
    }

    private static void setDefault(String k, String v) {
        if (System.getProperty(k) == null) System.setProperty(k, v);
    }

    static void usage() {
        System.err.println(String.join("\n",
            "usage (Apache Dubbo " + org.apache.dubbo.common.Version.getVersion() + "):",
            "  provider --port P (0: pick a free port) --name v1 [--host 127.0.0.1] [--group G[,G2]] [--version 1.0.0[,2.0.0]]",
            "           [--reply-attachment k=v]... [--jitter-ms N] [--threads N] [--heartbeat-ms N] [--watch-stdin]",
            "      prints 'READY port=<port>' once it accepts connections",
            "  consumer --url dubbo://127.0.0.1:PORT [--interface dev.meltemi.demo.GreetService] [--method sayHello[,echo...]]",
            "           [--arg 'call-{i}' | --arg '{null}'] [--payload BYTES] [--attachment k=v]... [--group G] [--version 1.0.0]",
            "           [--calls N | --duration 10s] [--warmup N] [--concurrency C] [--connections K] [--async] [--oneway]",
            "           [--timeout-ms 5000] [--heartbeat-ms N] [--rounds R --idle-ms N] [--hold-ms N] [--summary]",
            "      one JSON line per call, or with --summary one JSON summary line"));
    }
}
