package dev.meltemi.thriftpeer;

/**
 * {@code java -jar meltemi-thrift-java-peers.jar server|client [options]}: Apache Thrift's Java
 * library (libthrift) as a Greeter/Calculator server of any of its server kinds, or a client making
 * calls on one connection. stdout carries only READY and JSON lines; logs go to stderr at WARN.
 */
public final class Main {
    public static void main(String[] argv) throws Exception {
        setDefault("org.slf4j.simpleLogger.defaultLogLevel", "warn");
        setDefault("org.slf4j.simpleLogger.logFile", "System.err");
        if (argv.length == 0 || argv[0].equals("--help") || argv[0].equals("-h")) {
            usage();
            System.exit(argv.length == 0 ? 2 : 0);
        }
        try {
            switch (argv[0]) {
                case "server" -> PeerServer.run(argv);
                case "client" -> System.exit(PeerClient.run(argv));
                default -> { usage(); System.exit(2); }
            }
        } catch (IllegalArgumentException e) {
            System.err.println("error: " + e.getMessage());
            usage();
            System.exit(2);
        }
    }

    private static void setDefault(String k, String v) {
        if (System.getProperty(k) == null) System.setProperty(k, v);
    }

    static void usage() {
        System.err.println(String.join("\n",
            "usage:",
            "  server --port P (0: a free port) --name v1 --server threadpool|nonblocking|hsha|selector",
            "         --transport framed|buffered --protocol binary|compact [--multiplexed] [--watch-stdin]",
            "      prints 'READY port=<port>' once serving, then one JSON line per connection and per call",
            "      (nonblocking, hsha and selector read framed calls only)",
            "  client --port P --transport framed|buffered --protocol binary|compact [--multiplexed] [--async]",
            "         [--calls '[{\"method\":\"sayHello\",\"args\":[\"a\"]},{\"service\":\"Calculator\",\"method\":\"whoami\"}]']",
            "         [--timeout-ms 5000] [--trace]",
            "      the calls in order on ONE connection, one JSON line per call (--async: framed only)"));
    }
}
